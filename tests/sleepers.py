"""Sleeping processes that stand in for a service's (tests of services stop and owns)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def sleeper(tmp_path: Path) -> subprocess.Popen[bytes]:
    """A process whose command line names ``tmp_path`` (as a service's names its data dir)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time, sys; time.sleep(60)",
                             str(tmp_path)], start_new_session=True)
    deadline = time.monotonic() + 10  # until exec has replaced the forked command line
    while str(tmp_path).encode() not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return proc
