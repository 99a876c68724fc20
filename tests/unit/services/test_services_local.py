"""Service management without starting services: errors, state, ports, process handling."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stream_detector.exceptions import MissingToolError
from stream_detector.services import local as services
from stream_detector.services.local import ServiceHandle


def test_free_port_is_bindable_and_honours_a_free_preference() -> None:
    port = services.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        taken = s.getsockname()[1]
        s.listen()
        assert services.free_port(taken) != taken  # busy preference -> another port


def test_missing_tools_name_the_package_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(services.Path, "exists", lambda self: False)
    with pytest.raises(MissingToolError, match="apt-get install openjdk-17-jre-headless"):
        services.KafkaBroker(tmp_path)._java()
    with pytest.raises(MissingToolError, match="apt-get install maven"):
        services.KafkaBroker(tmp_path).ensure_jars()
    with pytest.raises(MissingToolError, match="apt-get install redis-server"):
        services.RedisServer().start()


def test_cached_jars_skip_maven(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    broker = services.KafkaBroker(tmp_path)
    broker.libs_dir.mkdir(parents=True)
    (broker.libs_dir / ".complete").write_text(services.KAFKA_VERSION)
    monkeypatch.setenv("PATH", str(tmp_path))  # no mvn reachable: must not be needed
    assert broker.ensure_jars() == broker.libs_dir


def test_rendered_config_is_loopback_kraft(tmp_path: Path) -> None:
    config = services.KafkaBroker(tmp_path)._render_config(tmp_path, 19092, 19093)
    text = config.read_text()
    assert "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093" in text
    assert "controller.quorum.voters=1@127.0.0.1:19093" in text
    assert "process.roles=broker,controller" in text
    assert f"log.dirs={tmp_path / 'data'}" in text
    assert "${" not in text


def test_state_round_trip_and_dead_pids_are_not_ready(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    handle = ServiceHandle("redis", "redis://127.0.0.1:1/0", dead.pid, 1, "/x", "/x/log")
    services.save_state(tmp_path, {"redis": handle})
    assert services.load_state(tmp_path) == {"redis": handle}
    assert not services.is_alive(dead.pid)
    assert not services.handle_ready(handle)
    services.clear_state(tmp_path)
    assert services.load_state(tmp_path) == {}


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
    assert services.is_alive(grandchild)
    services.stop_handle(ServiceHandle("x", "x://", proc.pid, 0, "", ""), timeout=5)
    deadline = time.monotonic() + 5
    while services.is_alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not services.is_alive(proc.pid)
    assert not services.is_alive(grandchild)
    proc.stdout.close()


def _sleeper(tmp_path: Path) -> subprocess.Popen[bytes]:
    """A process whose command line names ``tmp_path`` (as a service's names its data dir)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time, sys; time.sleep(60)",
                             str(tmp_path)], start_new_session=True)
    deadline = time.monotonic() + 10  # until exec has replaced the forked command line
    while str(tmp_path).encode() not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return proc


def test_services_stop_stops_only_what_services_start_started(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from stream_detector.cli.main import app

    ours, theirs = _sleeper(tmp_path / "ours"), _sleeper(tmp_path / "theirs")
    try:
        services.save_state(tmp_path, {
            "redis": ServiceHandle("redis", "redis://127.0.0.1:1/0", ours.pid, 1,
                                   str(tmp_path / "ours"), "", services.start_ticks(ours.pid)),
            # a stale state file: this pid now runs someone else's process (other start time)
            "kafka": ServiceHandle("kafka", "kafka://127.0.0.1:2", theirs.pid, 2,
                                   str(tmp_path / "theirs"), "",
                                   (services.start_ticks(theirs.pid) or 0) - 1),
        })
        result = CliRunner().invoke(app, ["services", "stop", "--cache-dir", str(tmp_path)])
        assert result.exit_code == 0, result.output
        assert f"redis: stopped (pid {ours.pid})" in result.output
        assert "kafka: left alone" in result.output
        assert ours.wait(timeout=10) is not None
        assert theirs.poll() is None  # still running
        assert services.load_state(tmp_path) == {}
    finally:
        for proc in (ours, theirs):
            proc.kill()
            proc.wait()


def test_owns_needs_the_same_start_time_and_a_matching_command_line(tmp_path: Path) -> None:
    proc = _sleeper(tmp_path)
    try:
        ticks = services.start_ticks(proc.pid)
        mine = ServiceHandle("redis", "", proc.pid, 0, str(tmp_path), "", ticks)
        assert services.owns(mine)
        assert not services.owns(ServiceHandle("redis", "", proc.pid, 0, "/elsewhere", "", ticks))
        assert not services.owns(ServiceHandle("redis", "", proc.pid, 0, str(tmp_path), "",
                                               (ticks or 0) + 1))
    finally:
        proc.kill()
        proc.wait()
