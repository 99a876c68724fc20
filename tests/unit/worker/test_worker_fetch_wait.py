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


def _fetch_wait_ms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
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
    return int(made._fetch_max_wait_ms)


def test_the_worker_consumer_gets_the_setting_instead_of_faust_s_fixed_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    if "upstream" not in faust_fetch_wait._state:  # not patched yet: Faust's own value
        assert _fetch_wait_ms(tmp_path / "a", monkeypatch) == 1500
    assert faust_fetch_wait.install(0.05)
    assert faust_fetch_wait.installed() == 0.05
    assert _fetch_wait_ms(tmp_path / "b", monkeypatch) == 50
    assert faust_fetch_wait.install(Settings().fetch_max_wait)  # again: the value changes
    assert _fetch_wait_ms(tmp_path / "c", monkeypatch) == 20


@pytest.mark.parametrize("seconds", [0.0, -1.0, float("nan")])
def test_a_wait_that_is_not_positive_is_refused(seconds: float) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        faust_fetch_wait.install(seconds)


def test_the_setting_is_bounded_by_faust_s_own_wait() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Settings(fetch_max_wait=2.0)
    with pytest.raises(ValidationError):
        Settings(fetch_max_wait=0)
