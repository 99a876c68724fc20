"""What a worker needs of its machine, checked before it starts: tracebacks from Faust before."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from stream_detector.cli import checks
from stream_detector.exceptions import ConfigurationError
from stream_detector.settings import Settings


def test_a_state_folder_that_cannot_be_written_names_the_setting(tmp_path: Path) -> None:
    a_file = tmp_path / "passwd"
    a_file.write_text("x")
    for state in (a_file, a_file / "state", Path("/proc/nope")):
        with pytest.raises(ConfigurationError, match=rf"STREAM_DETECTOR_STATE_DIR: cannot "
                                                     rf"write in {state}"):
            checks.require_worker_host(Settings(state_dir=state, web_port=0))
    checks.require_worker_host(Settings(state_dir=tmp_path / "new" / "state", web_port=0))
    assert (tmp_path / "new" / "state").is_dir()


def test_a_web_port_in_use_or_a_host_that_is_not_here_names_the_settings(
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigurationError, match=rf"cannot listen on 127.0.0.1:{port} "
                                                     r"\(.*\): another worker on this machine\? "
                                                     r"set STREAM_DETECTOR_WEB_PORT"):
            checks.require_worker_host(Settings(state_dir=tmp_path, web_port=port))
    checks.require_worker_host(Settings(state_dir=tmp_path, web_port=port))  # free again
    for host in ("nosuchhost.invalid", "192.0.2.1"):  # no such name; not this machine's
        with pytest.raises(ConfigurationError, match="set STREAM_DETECTOR_WEB_HOST to an "
                                                     "address of this machine") as refused:
            checks.require_worker_host(Settings(state_dir=tmp_path, web_host=host,
                                                web_port=port))
        assert "another worker" not in str(refused.value)


def test_a_broker_without_a_port_is_tried_on_kafkas_default() -> None:
    # "kafka://127.0.0.1" printed "invalid literal for int() with base 10: '127.0.0.1'"
    reason = checks._refused("127.0.0.1", 0.5)  # 9092: a broker there, or nothing
    assert reason is None or reason.startswith("127.0.0.1: Connection refused")


def test_web_port_0_is_a_free_port_chosen_at_start(tmp_path: Path) -> None:
    """The worker's own hint says "0: any free port"; Faust refused 0 with a traceback."""
    import socket

    from stream_detector.worker.app import web_port_now

    port = web_port_now(Settings(state_dir=tmp_path, web_port=0))
    assert 0 < port < 65536
    with socket.socket() as sock:  # free: the worker's web server can bind it
        sock.bind(("127.0.0.1", port))
    assert web_port_now(Settings(state_dir=tmp_path, web_port=6123)) == 6123
