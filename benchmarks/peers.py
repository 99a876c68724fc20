"""Peers for the throughput table: their own virtual environment, built on demand, and runs.

``benchmarks/requirements-peers.txt`` (quixstreams and what the peer apps import) is
installed into ``benchmarks/.peers-venv`` with uv the first time a benchmark needs it;
none of it is a dependency of stream-detector. A peer that cannot be installed or run
is reported as not run (with the reason), and the other parts go on.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from benchmarks.counting import counted_rate
from benchmarks.e2e_support import child, wait_for

__all__ = ["PEERS", "peer_python", "peer_rate"]

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements-peers.txt"
VENV = HERE / ".peers-venv"
PEERS = ("plain", "quix_state", "quix_dict")


def peer_python() -> Path:
    """The peers' interpreter; creates or refreshes their venv when the file changed."""
    python = VENV / "bin" / "python"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = VENV / ".requirements-sha256"
    if python.exists() and stamp.exists() and stamp.read_text() == digest:
        return python
    found = shutil.which("uv")  # deploy/setup-venv.sh installs it for python3 otherwise
    uv = [found] if found else ["python3", "-m", "uv"]
    print("  installing the benchmark's peers (benchmarks/requirements-peers.txt)", flush=True)
    if not python.exists():
        subprocess.run([*uv, "venv", "-q", "--python", sys.executable, str(VENV)],  # noqa: S603
                       check=True, timeout=300)
    subprocess.run([*uv, "pip", "install", "-q", "--python", str(python), "-r",  # noqa: S603
                    str(REQUIREMENTS)], check=True, timeout=900)
    stamp.write_text(digest)
    return python


def peer_rate(kafka_url: str, tmp: Path, topic: str, records: int, mode: str,
              model: Path, window: int, threshold: float, timeout: float) -> dict[str, Any]:
    """Records/s of one peer between its first and its ``records``-th record."""
    out = tmp / f"peer-{mode}-{uuid.uuid4().hex[:6]}.json"
    env = {**os.environ, "BENCH_KAFKA_URL": kafka_url.split("://", 1)[1], "BENCH_TOPIC": topic,
           "BENCH_MODE": mode, "BENCH_EXPECT": str(records), "BENCH_OUT": str(out),
           "BENCH_DATADIR": str(tmp / out.stem), "BENCH_MODEL": str(model / "model.onnx"),
           "BENCH_WINDOW": str(window), "BENCH_THRESHOLD": repr(threshold),
           "PYTHONPATH": str(HERE.parent)}
    with child([str(peer_python()), "-m", "benchmarks.peer_apps"], env,
               tmp / f"{out.stem}.log") as c:
        wait_for(out.exists, timeout, f"peer {mode}", c.check, 0.05)
    return counted_rate(out, mode)
