"""What the services share: ports, process groups, knowing a recorded pid again."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from sleepers import sleeper

from stream_detector.services.process import (
    ServiceHandle,
    free_port,
    is_alive,
    owns,
    start_ticks,
    stop_handle,
)


def test_free_port_is_bindable_and_honours_a_free_preference() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        taken = s.getsockname()[1]
        s.listen()
        assert free_port(taken) != taken  # busy preference -> another port


def test_stop_handle_ends_the_whole_process_group() -> None:
    # A JVM-like parent with a child of its own: both must go.
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], start_new_session=True, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    grandchild = int(proc.stdout.readline())
    assert is_alive(grandchild)
    stop_handle(ServiceHandle("x", "x://", proc.pid, 0, "", ""), timeout=5)
    deadline = time.monotonic() + 5
    while is_alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not is_alive(proc.pid)
    assert not is_alive(grandchild)
    proc.stdout.close()


def test_owns_needs_the_same_start_time_and_a_matching_command_line(tmp_path: Path) -> None:
    proc = sleeper(tmp_path)
    try:
        ticks = start_ticks(proc.pid)
        mine = ServiceHandle("redis", "", proc.pid, 0, str(tmp_path), "", ticks)
        assert owns(mine)
        assert not owns(ServiceHandle("redis", "", proc.pid, 0, "/elsewhere", "", ticks))
        assert not owns(ServiceHandle("redis", "", proc.pid, 0, str(tmp_path), "",
                                               (ticks or 0) + 1))
    finally:
        proc.kill()
        proc.wait()
