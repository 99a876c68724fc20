"""Checks the CLI runs before any heavy import or work, so a user error costs < 1 s.

Two kinds: typer callbacks for paths (an input that must exist, an output whose folder must
exist), which click turns into one ``error: Invalid value for '--out': ...`` line; and
service probes (:func:`require_kafka`, :func:`require_redis`) that the long-running commands
call before training or consuming, instead of letting client libraries retry for half a
minute and print hundreds of lines.

Nothing here imports torch, faust or onnxruntime.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from stream_detector.connectivity import safe_url
from stream_detector.exceptions import ConfigurationError, ServiceError

if TYPE_CHECKING:
    from stream_detector.settings import Settings

__all__ = [
    "existing_input",
    "fraction",
    "model_path",
    "new_file",
    "new_folder",
    "require_kafka",
    "require_redis",
    "require_worker_host",
    "safe_url",
    "writable_folder",
]



def existing_input(path: Path | None) -> Path | None:
    """Typer callback: ``path`` must exist and be readable.

    Raises
    ------
    typer.BadParameter
        ``path`` is missing or unreadable (click prints it as one line, exit code 2).
    """
    if path is None:
        return None
    if not path.exists():
        raise typer.BadParameter(f"{path} does not exist")
    if not os.access(path, os.R_OK):
        raise typer.BadParameter(f"{path} is not readable")
    return path


def model_path(path: Path | None) -> Path | None:
    """Typer callback: a model directory, one model's versions or a registry root holding a
    ``card.json`` within two levels (the registry then picks the newest version)."""
    if path is None:
        return None
    existing_input(path)
    if path.is_file() and path.name == "card.json":
        return path.parent
    if not path.is_dir():
        raise typer.BadParameter(f"{path} is not a model folder")
    if not any(path.glob("card.json")) and not any(path.glob("*/card.json")) \
            and not any(path.glob("*/*/card.json")):
        raise typer.BadParameter(
            f"no model in {path}: expected {path}/<name>/<version>/{{model.onnx,card.json}}; "
            "train one with `stream-detector train --data FILE --out registry`")
    return path


def fraction(value: float | None) -> float | None:
    """Typer callback: a fraction in (0, 1]."""
    if value is not None and not 0.0 < value <= 1.0:
        raise typer.BadParameter(f"{value:g} is not in (0, 1]; e.g. 0.15 for the first 15%")
    return value


def new_file(path: Path | None) -> Path | None:
    """Typer callback for an output file: its folder must already exist and be writable.

    Nothing is created here, and nothing is created for a rejected path.
    """
    if path is None:
        return None
    if path.is_dir():
        raise typer.BadParameter(f"{path} is a folder; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise typer.BadParameter(f"folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK):
        raise typer.BadParameter(f"folder {parent} is not writable")
    return path


def new_folder(path: Path | None) -> Path | None:
    """Typer callback for an output folder: it may be missing, but its nearest existing
    ancestor must be a writable folder (the command creates it only when it writes)."""
    if path is None:
        return None
    if path.exists() and not path.is_dir():
        raise typer.BadParameter(f"{path} is a file, not a folder")
    probe = path.absolute()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise typer.BadParameter(f"{probe} is a file, so {path} cannot be created under it")
    if not os.access(probe, os.W_OK):
        raise typer.BadParameter(f"folder {probe} is not writable")
    return path


def require_kafka(settings: Settings, timeout: float = 5.0) -> None:
    """Return once the broker answers a metadata request; else one clear error.

    A closed port is reported at once; otherwise :func:`connectivity.check_kafka` names
    rejected credentials, an untrusted certificate or a protocol mismatch within a second.

    Raises
    ------
    ServiceError
        No answer within ``timeout`` seconds, or (as :class:`ConnectionFailed`) a refusal
        (the message says which setting to change).
    """
    from stream_detector.connectivity import check_kafka

    refused = _refused(settings.bootstrap_servers, min(timeout, 2.0))
    if refused is not None:  # nothing listens: say so now, not after the client's retries
        raise ServiceError(
            f"cannot reach Kafka at {settings.bootstrap_servers} ({refused}); start it with "
            "`stream-detector services start` or pass --kafka kafka://HOST:PORT")
    check_kafka(settings, timeout)


def _refused(servers: str, timeout: float) -> str | None:
    """Why no bootstrap server accepts a TCP connection, or None when one does."""
    import socket

    from stream_detector.settings import broker_addresses

    reason = "no servers"
    for (host, port), server in zip(broker_addresses(servers), servers.split(","),
                                    strict=True):
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return None
        except OSError as exc:
            reason = f"{server}: {exc.strerror or exc}"
    return reason


def require_worker_host(settings: Settings) -> None:
    """What a worker needs of its own machine: a state folder it can write and a web port
    free on ``web_host`` (metrics, health). Run after the broker check: it creates the
    state folder.

    Raises
    ------
    ConfigurationError
        Either is missing; the message names the setting to change.
    """
    import errno
    import socket

    writable_folder(settings.state_dir, "STREAM_DETECTOR_STATE_DIR")
    if settings.web_port == 0:  # any free port
        return
    where = f"{settings.web_host}:{settings.web_port}"
    try:
        family = socket.getaddrinfo(settings.web_host, settings.web_port,
                                    type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp binds
            sock.bind((settings.web_host, settings.web_port))
    except OSError as exc:  # in use, not an address of this machine, or no such host
        hint = ("another worker on this machine? set STREAM_DETECTOR_WEB_PORT (0: any free "
                "port)" if exc.errno == errno.EADDRINUSE else "set STREAM_DETECTOR_WEB_HOST to "
                "an address of this machine (127.0.0.1, or 0.0.0.0 for all)")
        raise ConfigurationError(
            f"the worker cannot listen on {where} ({exc.strerror or exc}): {hint}") from None


def writable_folder(path: Path, setting: str) -> None:
    """Create ``path`` if absent and check that files can be written in it.

    Raises
    ------
    ConfigurationError
        It is a file, or cannot be created or written (names ``setting``).
    """
    import tempfile

    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigurationError(f"{setting}: cannot write in {path} ({exc.strerror or exc}); "
                                 "give a folder this user can write") from None


def require_redis(settings: Settings, timeout: float = 3.0) -> None:
    """Return once Redis answers PING; else one clear error (:func:`connectivity.check_redis`).

    Raises
    ------
    ServiceError
        Redis refused, timed out, or rejected the credentials or the TLS set-up.
    """
    from stream_detector.connectivity import check_redis

    check_redis(settings, timeout)
