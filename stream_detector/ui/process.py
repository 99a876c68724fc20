"""``stream-detector ui`` as a child process (the demo's explorer), stopped on the way out."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from stream_detector.exceptions import StreamDetectorError
from stream_detector.services.process import die_with_parent

__all__ = ["start_explorer", "URL_PREFIX"]

URL_PREFIX = "explorer: "


@contextlib.contextmanager
def start_explorer(
    models: Sequence[Path], topics: dict[str, str], env: dict[str, str], log: Path,
    timeout: float = 30.0,
) -> Iterator[str]:
    """Run the explorer on ``topics["input"]`` and ``topics["output"]`` on any free port
    of the settings' ui_host; yield its URL once it listens.

    Raises :class:`~stream_detector.exceptions.StreamDetectorError` (with the log's tail)
    when it exits or prints no URL within ``timeout`` seconds.
    """
    args = [sys.executable, "-m", "stream_detector", "ui", "--port", "0",
            "--events", topics["output"], "--records", topics["input"]]
    for model in models:
        args += ["--model", str(model)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            args, env={**os.environ, **env}, stdout=sink, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent)
    try:
        yield _wait_url(proc, log, timeout)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_url(proc: subprocess.Popen[bytes], log: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith(URL_PREFIX):
                return line.removeprefix(URL_PREFIX).strip()
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-1500:]
    raise StreamDetectorError(f"the explorer did not start (log: {log}):\n{tail}")
