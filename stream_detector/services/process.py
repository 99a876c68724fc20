"""What the local services share: starting a child process, waiting until it answers,
knowing it again later, and stopping it with its children.

Two lifetimes:

* attached (test fixtures): the child dies with the Python process that started it
  (``PR_SET_PDEATHSIG``), so a crashed test run leaves no orphan JVM;
* detached (``stream-detector services start``): the children outlive the command; their pids
  and URLs live in a state file (:mod:`stream_detector.services.local`) so ``status`` and
  ``stop`` can find them, and :func:`owns` tells whether a recorded pid is still theirs.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stream_detector.exceptions import ServiceError, ServiceStartError

__all__ = [
    "ServiceHandle",
    "die_with_parent",
    "free_port",
    "is_alive",
    "owns",
    "port_open",
    "spawn",
    "start_ticks",
    "stop_handle",
    "wait_ready",
]

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ServiceHandle:
    """A running local service: enough to reach it and to stop it."""

    name: str
    url: str
    pid: int
    port: int
    data_dir: str
    log_path: str
    started: int | None = None  # the process's start time (clock ticks after boot)


def free_port(preferred: int | None = None) -> int:
    """A free TCP port on 127.0.0.1 (``preferred`` when it is free)."""
    candidates = [preferred, 0] if preferred else [0]
    for candidate in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # servers bind with SO_REUSEADDR: a port in TIME_WAIT is free for them too
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", candidate or 0))
            except OSError:
                continue
            port: int = sock.getsockname()[1]
            return port
    raise ServiceError("no free TCP port on 127.0.0.1")  # pragma: no cover


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask the kernel to SIGTERM this process when its parent dies (Linux ``prctl``); for
    ``preexec_fn`` of a child that must not outlive the command that started it."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    args: list[str], log_path: Path, attached: bool, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``args`` in a new session (its own process group), output appended to
    ``log_path``; ``attached`` children get SIGTERM when this process dies."""
    log = log_path.open("ab")
    try:
        return subprocess.Popen(  # noqa: S603 - argv built here from resolved executables
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent if attached else None,  # noqa: PLW1509
            env=env,
        )
    finally:
        log.close()


def is_alive(pid: int) -> bool:
    """Whether ``pid`` runs (zombies count as dead)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks after boot, /proc/PID/stat field 22), or None.

    With the pid it identifies one process: a pid reused after a reboot or a crash starts
    at another time.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def owns(handle: ServiceHandle) -> bool:
    """Whether ``handle.pid`` is still the process that was started for it: same start
    time, and its command line names the service's data folder or port."""
    try:
        cmdline = Path(f"/proc/{handle.pid}/cmdline").read_bytes()
    except OSError:
        return False
    if handle.started is not None and start_ticks(handle.pid) != handle.started:
        return False
    marks = [m.encode() for m in (handle.data_dir, f":{handle.port}") if m and m != ":0"]
    return any(m in cmdline for m in marks) or (not marks and handle.started is not None)


def stop_handle(handle: ServiceHandle, timeout: float = 20.0) -> None:
    """SIGTERM the service's process group, then SIGKILL what is left after ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(handle.pid, sig)
        deadline = time.monotonic() + (timeout if sig == signal.SIGTERM else 5.0)
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(handle.pid, os.WNOHANG)
            if not is_alive(handle.pid):
                return
            time.sleep(0.1)


def wait_ready(
    name: str,
    proc: subprocess.Popen[bytes],
    probe: Callable[[], bool],
    log_path: Path,
    timeout: float,
) -> None:
    """Return once ``probe()`` is true (a real request answered); exceptions count as "not
    yet".

    Raises
    ------
    ServiceStartError
        ``proc`` exited (the message holds its log's tail), or ``timeout`` seconds passed
        (``proc`` is terminated).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise ServiceStartError(f"{name} exited with code {proc.returncode}; log tail:\n{tail}")
        with contextlib.suppress(Exception):
            if probe():
                return
        time.sleep(0.2)
    proc.terminate()
    raise ServiceStartError(f"{name} not ready after {timeout:.0f}s; see {log_path}")


def port_open(host: str, port: int) -> bool:
    """Whether a TCP connection to ``host:port`` is accepted within 0.5 s."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
