"""The start-up patch of Faust's fetch wait: the worker's consumer waits as the settings say."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from stream_detector.settings import Settings
from stream_detector.worker import faust_fetch_wait
from stream_detector.worker.app import faust_app


def test_upstream_is_the_code_the_patch_was_reviewed_against() -> None:
    # Fails when faust-streaming or aiokafka change the functions the patch relies on:
    # review stream_detector/worker/faust_fetch_wait.py against the new code, then update
    # the hashes.
    assert faust_fetch_wait.upstream_matches() == dict.fromkeys(
        faust_fetch_wait.UPSTREAM_SHA256, True)


class _Consumer:
    """Stands in for aiokafka's consumer: keeps the wait as aiokafka 0.14 does. The real
    consumer, started on a broker: tests/integration/test_fetch_wait.py."""

    def __init__(self, **kwargs: Any) -> None:
        self._fetch_max_wait_ms = kwargs["fetch_max_wait_ms"]
        self._fetch_min_bytes = kwargs.get("fetch_min_bytes", 1)  # aiokafka's default
        self._isolation_level = kwargs.get("isolation_level", "read_uncommitted")  # its too


def _made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    import aiokafka
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    app = faust_app(Settings(state_dir=tmp_path), 4)
    # the method on a stand-in for its thread: building a real one (a mode ServiceThread)
    # here upsets CPython 3.11.7's parser for modules the run imports afterwards
    thread = SimpleNamespace(app=app, consumer=SimpleNamespace(in_transaction=False))
    with monkeypatch.context() as patch:
        patch.setattr(aiokafka, "AIOKafkaConsumer", _Consumer)
        made = AIOKafkaConsumerThread._create_worker_consumer(
            thread, app.transport)  # type: ignore[arg-type]
    return made


def _fetch_wait_ms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    return int(_made(tmp_path, monkeypatch)._fetch_max_wait_ms)


def test_the_worker_consumer_gets_the_setting_instead_of_faust_s_fixed_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    if "upstream" not in faust_fetch_wait._state:  # not patched yet: Faust's own value
        assert _fetch_wait_ms(tmp_path / "a", monkeypatch) == 1500
    assert faust_fetch_wait.install(0.05)
    assert faust_fetch_wait.installed() == 0.05
    assert _fetch_wait_ms(tmp_path / "b", monkeypatch) == 50
    default = Settings()  # again: the value changes
    assert faust_fetch_wait.install(default.fetch_max_wait, default.fetch_min_bytes)
    assert _fetch_wait_ms(tmp_path / "c", monkeypatch) == 20


def test_the_worker_consumer_asks_for_the_setting_s_fetch_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    if "upstream" not in faust_fetch_wait._state:  # not patched yet: aiokafka's 1 byte
        assert _made(tmp_path / "a", monkeypatch)._fetch_min_bytes == 1
    try:
        assert faust_fetch_wait.install(0.05, 4096)
        assert faust_fetch_wait.installed_min_bytes() == 4096
        made = _made(tmp_path / "b", monkeypatch)
        assert (made._fetch_min_bytes, made._fetch_max_wait_ms) == (4096, 50)
        assert faust_fetch_wait.install(0.05)  # left out: one byte, as aiokafka
        assert _made(tmp_path / "c", monkeypatch)._fetch_min_bytes == 1
    finally:
        default = Settings()
        faust_fetch_wait.install(default.fetch_max_wait, default.fetch_min_bytes)
    assert default.fetch_min_bytes == 65536
    assert _made(tmp_path / "d", monkeypatch)._fetch_min_bytes == 65536


@pytest.mark.parametrize("seconds", [0.0, -1.0, float("nan")])
def test_a_wait_that_is_not_positive_is_refused(seconds: float) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        faust_fetch_wait.install(seconds)


@pytest.mark.parametrize("min_bytes", [0, -1])
def test_a_fetch_size_under_one_byte_is_refused(min_bytes: int) -> None:
    with pytest.raises(ValueError, match="at least 1 byte"):
        faust_fetch_wait.install(0.02, min_bytes)
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Settings(fetch_min_bytes=min_bytes)


def test_the_setting_is_bounded_by_faust_s_own_wait() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Settings(fetch_max_wait=2.0)
    with pytest.raises(ValidationError):
        Settings(fetch_max_wait=0)


def test_the_worker_consumer_reads_committed_records_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    default = Settings()
    assert faust_fetch_wait.install(default.fetch_max_wait, default.fetch_min_bytes)
    assert _made(tmp_path, monkeypatch)._isolation_level == "read_committed"
