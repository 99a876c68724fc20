"""The state file of ``services start``, and ``services stop`` stopping only what it started."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sleepers import sleeper
from typer.testing import Result

from stream_detector.services.local import clear_state, handle_ready, load_state, save_state
from stream_detector.services.process import ServiceHandle, is_alive, start_ticks


def test_state_round_trip_and_dead_pids_are_not_ready(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    handle = ServiceHandle("redis", "redis://127.0.0.1:1/0", dead.pid, 1, "/x", "/x/log")
    save_state(tmp_path, {"redis": handle})
    assert load_state(tmp_path) == {"redis": handle}
    assert not is_alive(dead.pid)
    assert not handle_ready(handle)
    clear_state(tmp_path)
    assert load_state(tmp_path) == {}


def test_services_stop_stops_only_what_services_start_started(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from stream_detector.cli.main import app

    ours, theirs = sleeper(tmp_path / "ours"), sleeper(tmp_path / "theirs")
    try:
        save_state(tmp_path, {
            "redis": ServiceHandle("redis", "redis://127.0.0.1:1/0", ours.pid, 1,
                                   str(tmp_path / "ours"), "", start_ticks(ours.pid)),
            # a stale state file: this pid now runs someone else's process (other start time)
            "kafka": ServiceHandle("kafka", "kafka://127.0.0.1:2", theirs.pid, 2,
                                   str(tmp_path / "theirs"), "",
                                   (start_ticks(theirs.pid) or 0) - 1),
        })
        result = CliRunner().invoke(app, ["services", "stop", "--cache-dir", str(tmp_path)])
        assert result.exit_code == 0, result.output
        assert f"redis: stopped (pid {ours.pid})" in result.output
        assert "kafka: left alone" in result.output
        assert ours.wait(timeout=10) is not None
        assert theirs.poll() is None  # still running
        assert load_state(tmp_path) == {}
    finally:
        for proc in (ours, theirs):
            proc.kill()
            proc.wait()


def _data(root: Path) -> list[Path]:
    folders = [root / "services" / "kafka" / "data", root / "services" / "redis" / "appendonlydir"]
    for folder in folders:
        folder.mkdir(parents=True)
        (folder / "kept").write_text("x")
    return folders


def _stop_wipe(root: Path, name: str, pid: int) -> Result:
    """``services stop --wipe`` with ``name`` recorded as the process ``pid``."""
    from typer.testing import CliRunner

    from stream_detector.cli.main import app

    save_state(root, {name: ServiceHandle(name, f"{name}://127.0.0.1:1", pid, 1,
                                          str(root / "ours"), "", start_ticks(pid))})
    return CliRunner().invoke(app, ["services", "stop", "--wipe", "--cache-dir", str(root)])


def test_services_stop_wipe_deletes_the_data_of_what_it_stopped(tmp_path: Path) -> None:
    folders, ours = _data(tmp_path), sleeper(tmp_path / "ours")
    try:
        result = _stop_wipe(tmp_path, "redis", ours.pid)
        assert result.exit_code == 0, result.output
        assert "redis: stopped" in result.output and "wiped" in result.output
        assert not any(f.exists() for f in folders) and ours.wait(timeout=10) is not None
        again = _stop_wipe(tmp_path, "redis", ours.pid)  # not running: wiping is enough
        assert again.exit_code == 0 and "wiped" in again.output
    finally:
        ours.kill()
        ours.wait()


def test_services_stop_wipe_keeps_the_data_of_a_service_still_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stream_detector.services import process

    folders, ours = _data(tmp_path), sleeper(tmp_path / "ours")
    monkeypatch.setattr(process, "stop_handle", lambda handle: None)  # a stop that failed
    try:
        result = _stop_wipe(tmp_path, "kafka", ours.pid)
        assert result.exit_code == 1
        assert "not wiped: kafka still running" in result.output
        assert all(f.exists() for f in folders) and ours.poll() is None
    finally:
        ours.kill()
        ours.wait()


def test_a_stopped_services_ports_are_kept_for_the_next_start(tmp_path: Path) -> None:
    """Each start took whatever port was free: after a stop and a start the URLs a shell
    had exported, and a running worker's, pointed at nothing."""
    from stream_detector.services.local import clear_state, last_ports, save_state
    from stream_detector.services.process import ServiceHandle

    assert last_ports(tmp_path) == {"kafka": 9092, "redis": 6379}
    handles = {name: ServiceHandle(name, f"{name}://127.0.0.1:{port}", 1, port, "d", "l")
               for name, port in (("kafka", 37339), ("redis", 40001))}
    save_state(tmp_path, handles)
    assert last_ports(tmp_path) == {"kafka": 37339, "redis": 40001}
    clear_state(tmp_path)
    assert last_ports(tmp_path) == {"kafka": 37339, "redis": 40001}
    (tmp_path / "services" / "ports.json").write_text("{not json")
    assert last_ports(tmp_path) == {"kafka": 9092, "redis": 6379}
