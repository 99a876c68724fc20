"""Start ``stream-detector ui`` in its own process and drive it with headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from stream_detector.services.process import ServiceHandle

START = datetime(2026, 1, 1)
STEP = timedelta(minutes=5)


def chromium() -> str:
    """Debian's chromium (deploy/system-deps.sh installs it)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is missing: run `bash deploy/system-deps.sh`"
    return path


def series_messages(key: str, values: list[float], first: int = 0) -> list[tuple[bytes, bytes]]:
    """One series record per message, 5 minutes apart from 2026-01-01 (+``first`` steps)."""
    return [(key.encode(), json.dumps({
        "kind": "series", "series": key, "value": v,
        "timestamp": (START + (first + i) * STEP).isoformat()}).encode())
        for i, v in enumerate(values)]


@dataclass
class Ui:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path


@contextmanager
def run_ui(kafka: ServiceHandle, redis: ServiceHandle, topics: dict[str, str], models: list[Path],
           tmp: Path, *extra: str) -> Iterator[Ui]:
    repo = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "STREAM_DETECTOR_KAFKA_URL": kafka.url,
           "STREAM_DETECTOR_REDIS_URL": redis.url,
           "PYTHONPATH": os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p)}
    args = [sys.executable, "-m", "stream_detector", "ui", "--port", "0",
            "--events", topics["output"], "--records", topics["input"], *extra]
    for m in models:
        args += ["--model", str(m)]
    log = tmp / "ui.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=tmp)
    try:
        yield Ui(proc, _wait_url(proc, log), log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_url(proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("explorer: "):
                return line.split(" ", 1)[1].strip()
        if proc.poll() is not None:
            raise RuntimeError(f"ui exited: {log.read_text()[-3000:]}")
        time.sleep(0.1)
    raise TimeoutError(f"ui printed no URL: {log.read_text()[-3000:]}")


# Records, in the page, when each anomaly row first appears and when the swim lane's count
# of anomalies grows (milliseconds since the epoch, the same clock as Kafka timestamps).
WATCH_JS = """
() => {
  window.__rows = {}; window.__lane = [];
  new MutationObserver(() => {
    for (const tr of document.querySelectorAll('#table tbody tr')) {
      if (!(tr.dataset.eventId in window.__rows)) window.__rows[tr.dataset.eventId] = Date.now();
    }
  }).observe(document.body, {subtree: true, childList: true});
  new MutationObserver(() => {
    window.__lane.push([Date.now(), Number(document.getElementById('swimlane').dataset.events)]);
  }).observe(document.getElementById('swimlane'), {attributes: true,
    attributeFilter: ['data-events']});
}
"""


def first_time_at_least(lane: list[list[Any]], count: int) -> float | None:
    """When (ms) the swim lane first showed at least ``count`` anomalies."""
    return next((t for t, n in lane if n >= count), None)
