"""The worker's shutdown deadline (stream_detector/worker/shutdown.py)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from types import SimpleNamespace

import pytest

from stream_detector.settings import Settings
from stream_detector.worker.shutdown import EXIT_CODE, GroupWatch, ShutdownDeadline


def test_deadline_exits_once_after_its_seconds_when_the_stop_overruns() -> None:
    codes: list[int] = []
    done = threading.Event()

    def exit_process(code: int) -> None:
        codes.append(code)
        done.set()

    deadline = ShutdownDeadline(0.2, exit_process)
    started = time.monotonic()
    deadline.start()
    deadline.start()  # a second signal does not extend (or double) the countdown
    assert done.wait(5)
    took = time.monotonic() - started
    time.sleep(0.3)
    assert codes == [EXIT_CODE]
    assert 0.15 <= took < 2.0


def test_cancelled_deadline_never_exits() -> None:
    codes: list[int] = []
    deadline = ShutdownDeadline(0.1, codes.append)
    deadline.start()
    deadline.cancel()
    time.sleep(0.3)
    assert codes == []


def test_default_bound_fits_kubernetes_default_grace_period() -> None:
    assert Settings().shutdown_timeout < 30


def test_a_failed_group_coordination_ends_the_worker_with_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """aiokafka's coordination task ended: the watch exits once, naming the instance id."""
    answers = iter([None, None, "AssertionError", "AssertionError"])
    codes: list[int] = []
    done = threading.Event()

    def exit_process(code: int) -> None:
        codes.append(code)
        done.set()

    watch = GroupWatch(lambda: next(answers), "pod-7", interval=0.01, exit_process=exit_process)
    with caplog.at_level(logging.ERROR):
        watch.start()
        assert done.wait(5)
        time.sleep(0.1)
    assert codes == [EXIT_CODE]
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert line.startswith("the consumer group coordination of this worker failed "
                           "(AssertionError)")
    assert "same STREAM_DETECTOR_GROUP_INSTANCE_ID ('pod-7')" in line


def test_a_stopped_watch_never_exits() -> None:
    codes: list[int] = []
    watch = GroupWatch(lambda: "KafkaError", None, interval=0.05, exit_process=codes.append)
    watch.stop()
    watch.start()
    time.sleep(0.2)
    assert codes == []


def test_kafka_status_reports_the_error_that_ended_the_coordination() -> None:
    """What aiokafka does: its routine logs, then raises KafkaError from the cause."""
    from aiokafka.errors import KafkaError

    from stream_detector.worker.kafka_health import kafka_status

    async def routine() -> None:
        try:
            raise AssertionError("metadata.url")
        except AssertionError as exc:
            raise KafkaError("Unexpected error during coordination") from exc

    async def alive() -> None:
        await asyncio.sleep(10)

    async def statuses() -> tuple[str | None, str | None, bool, bool]:
        failed, running = asyncio.create_task(routine()), asyncio.create_task(alive())
        await asyncio.sleep(0.01)
        out = []
        for task in (failed, running):
            client = SimpleNamespace(
                _client=SimpleNamespace(_conns={1: SimpleNamespace(connected=lambda: True)}),
                assignment=lambda: [], _coordinator=SimpleNamespace(_coordination_task=task))
            app = SimpleNamespace(consumer=SimpleNamespace(
                _thread=SimpleNamespace(_ensure_consumer=lambda c=client: c), _read_offset={}))
            out.append(kafka_status(app, "in"))
        running.cancel()
        return (out[0].coordination_failed, out[1].coordination_failed, out[0].healthy,
                out[1].healthy)

    assert asyncio.run(statuses()) == ("AssertionError: metadata.url", None, False, True)


def test_an_input_topic_changed_under_the_worker_ends_it_with_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Deleted and re-created by the worker's own metadata requests (1 partition, the
    broker's default) while its changelog kept 4: states went to the wrong partitions."""
    from stream_detector.worker.kafka_health import topic_partitions
    from stream_detector.worker.shutdown import exit_input_changed

    def app_with(partitions: set[int] | None) -> SimpleNamespace:
        cluster = SimpleNamespace(partitions_for_topic=lambda topic: (
            partitions if topic == "records" else None))
        client = SimpleNamespace(_client=SimpleNamespace(cluster=cluster))
        return SimpleNamespace(consumer=SimpleNamespace(
            _thread=SimpleNamespace(_ensure_consumer=lambda: client)))

    assert topic_partitions(app_with({0, 1, 2, 3}), "records") == 4
    assert topic_partitions(app_with(None), "records") is None  # unknown: no verdict
    assert topic_partitions(SimpleNamespace(), "records") is None  # not started
    codes: list[int] = []
    with caplog.at_level(logging.ERROR):
        exit_input_changed("records", topic_partitions(app_with({0}), "records") or 0, 4,
                           "app-key-state-changelog", codes.append)
    assert codes == [EXIT_CODE]
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert line.startswith("the input topic records now has 1 partitions; this worker started "
                           "with 4, as its key-state changelog app-key-state-changelog has")
