"""The worker's console text: anomaly lines, their per-second cap, the summary line."""

from __future__ import annotations

import doctest
import logging
import math

import pytest

from schemas.events import (
    AnomalyEvent,
    Contributor,
    ModelRef,
    SourceRef,
    ThresholdSource,
    event_id_for,
)
from stream_detector.core.thresholds import ThresholdEntry
from stream_detector.worker import console as worker_console
from stream_detector.worker.console import (
    AnomalyLines,
    SummaryCounter,
    anomaly_line,
    lag_text,
    threshold_changes,
    threshold_source,
)
from stream_detector.worker.kafka_health import KafkaStatus
from stream_detector.worker.report import CONSOLE_LOGGER, ConsoleReporter


def event(**changes: object) -> AnomalyEvent:
    fields: dict[str, object] = dict(
        event_id=event_id_for("nab", "3", "AAPL", "2015-03-03T17:02:53"), key="AAPL",
        record_kind="series", window_start="2015-03-03T15:07:53",
        window_end="2015-03-03T17:02:53", detected_at="2026-01-01T00:00:00.000Z",
        score=7.123, threshold=4.5,
        threshold_source=ThresholdSource(method="sigma", version="3", scope="default"),
        severity=61.7, observed=[1204.0], expected=[212.4],
        top_contributors=[Contributor(name="value", index=0, time_offset=2, error=0.1),
                          Contributor(name="value", index=0, time_offset=0, error=0.9)],
        model=ModelRef(name="nab", version="3", onnx_sha256="a" * 64, family="dense"),
        provider="CPUExecutionProvider", source=SourceRef(topic="records"))
    fields.update(changes)
    return AnomalyEvent.model_validate(fields)


def test_doctests() -> None:
    assert doctest.testmod(worker_console).failed == 0


def test_an_anomaly_line_says_what_a_person_needs_in_one_line() -> None:
    assert anomaly_line(event()) == (
        "anomaly AAPL @ 2015-03-03T17:02:53 severity 62 score 7.123 > 4.5 | observed 1204 "
        "vs expected 212.4 | top value t-0 | nab v3")
    assert "\n" not in anomaly_line(event(key="x" * 200))
    bare = anomaly_line(event(expected=None, top_contributors=[], p_value=0.0012))
    assert "p=0.0012" in bare and "vs expected" not in bare and "top" not in bare


def test_a_key_from_kafka_cannot_forge_log_lines_or_colour_the_terminal() -> None:
    """Keys come from producers: a newline in one wrote a second, fake log line, and an ANSI
    sequence recoloured the terminals of the worker's log, `tail` and `alerts`."""
    evil = "evil\n[2026-12-02 00:00:00,000] [1] [INFO] FAKE \x1b[31mRED\u202e"
    line = anomaly_line(event(key=evil, top_contributors=[
        Contributor(name="f\r1", index=0, time_offset=0, error=1.0)]))
    assert "\n" not in line and "\x1b" not in line and "\r" not in line
    assert "\u202e" not in line
    assert line.startswith(r"anomaly evil\n[2026-12-02 00:00:00,000] [1] [INFO] FAKE "
                           r"\x1b[31mRED\u202e @ ")
    assert r"top f\r1 t-0" in line


def test_lines_are_capped_per_second_and_the_rest_counted() -> None:
    lines = AnomalyLines(per_second=3)
    assert [lines.admit(10.1) for _ in range(5)] == [True, True, True, False, False]
    assert lines.admit(11.0)  # a new second
    assert lines.take_suppressed() == 2 and lines.take_suppressed() == 0


def test_summary_rates_are_per_second_since_the_last_line() -> None:
    counter = SummaryCounter(since=100.0)
    counter.add(records=1000, windows=990, anomalies=1)
    counter.add(records=1000, windows=1000, anomalies=2)
    line = counter.line(110.0, lag=1234, thresholds="Redis (1 entry, 0.3 s old)")
    assert line == ("200 records/s, 199 windows/s, 3 anomalies (3 in all), consumer lag 1,234"
                    " | thresholds: Redis (1 entry, 0.3 s old)")
    assert counter.line(120.0, None, "x", suppressed=4).startswith(
        "0 records/s, 0 windows/s, 0 anomalies (3 in all, 4 not printed), consumer lag ?")


def test_reporter_counts_batches_and_logs_capped_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = [5.0]
    reporter = ConsoleReporter(per_second=2, clock=lambda: clock[0])
    with caplog.at_level(logging.INFO, logger=CONSOLE_LOGGER):
        reporter.on_batch(100, 90, [event(), event(key="B"), event(key="C")])
        reporter.on_batch(50, 50, [])
        clock[0] = 15.0
        line = reporter.summary(KafkaStatus(True, [0], 0, 0.1), caches=[])
    messages = [r.getMessage() for r in caplog.records]
    assert [m.split(" @")[0] for m in messages[:2]] == ["anomaly AAPL", "anomaly B"]
    assert line == messages[2] == (
        "15 records/s, 14 windows/s, 3 anomalies (3 in all, 1 not printed), consumer lag 0"
        " | thresholds: none")


def test_threshold_source_names_redis_card_or_degraded() -> None:
    assert threshold_source(3, 1.24, False) == "Redis (3 entries, 1.2 s old)"
    assert threshold_source(0, 2.0, False).startswith("model card (nothing in Redis")
    assert "Redis unreachable for 40 s" in threshold_source(2, 40.0, True)
    assert threshold_source(0, math.inf, True).startswith("model card (Redis unreachable")


def test_threshold_change_lines_name_old_and_new_values() -> None:
    a = ThresholdEntry(value=4.5, method="sigma", set_by="train")
    b = ThresholdEntry(value=5.0, method="manual", set_by="alice")
    assert threshold_changes("nab", "3", {"A": a}, {"A": a}) is None
    assert threshold_changes("nab", "3", {"A": a}, {}) == (
        "thresholds of nab v3 changed: A 4.5 -> removed")
    many = threshold_changes("nab", "3", {}, {f"k{i}": b for i in range(8)})
    assert many is not None and many.endswith("and 3 more") and "k0 card -> 5" in many


def test_event_rows_read_as_rows_not_as_january_1970() -> None:
    row = event(record_kind="events", window_end="1970-01-01T00:03:12")
    assert "@ row 192 " in anomaly_line(row) and "1970" not in anomaly_line(row)
    assert "@ 2015-03-03T17:02:53 " in anomaly_line(event())


def test_summary_shows_lag_unknown_not_zero_while_kafka_is_unreachable() -> None:
    """The summary's lag comes from kafka_status (the /health view): unknown is ``?``."""
    down = KafkaStatus(connected=False, assigned_partitions=[0, 1], consumer_lag=None,
                       seconds_since_fetch=42.0)
    stale = KafkaStatus(connected=True, assigned_partitions=[0], consumer_lag=None,
                        seconds_since_fetch=42.0)
    up = KafkaStatus(connected=True, assigned_partitions=[0], consumer_lag=7,
                     seconds_since_fetch=0.5)
    reporter = ConsoleReporter(clock=lambda: 100.0)
    assert reporter.summary(down, []).endswith(
        "consumer lag ? (Kafka unreachable) | thresholds: none")
    assert reporter.summary(stale, []).endswith("consumer lag ? | thresholds: none")
    assert reporter.summary(up, []).endswith("consumer lag 7 | thresholds: none")
    assert lag_text(0) == "0" and lag_text(None) == "?"
    assert (down.as_dict()["consumer_lag"], down.as_dict()["status"]) == (None, "degraded")


def test_the_summary_counts_the_periods_dead_letters_by_reason() -> None:
    """10,000 events no model served were dead-lettered with no console line at all:
    only /metrics told."""
    from stream_detector.worker.console import SummaryCounter
    from stream_detector.worker.metrics import WorkerMetrics

    metrics = WorkerMetrics()
    counter = SummaryCounter(since=0.0)
    assert "dead-lettered" not in counter.line(10.0, 0, "redis", dead=metrics.dead_letters())
    metrics.invalid_records.labels("unrouted").inc(10_000)
    metrics.invalid_records.labels("wrong_type").inc(3)
    line = counter.line(20.0, 0, "redis", dead=metrics.dead_letters())
    assert ", 10,003 dead-lettered (unrouted 10,000, wrong_type 3), consumer lag 0" in line
    assert "dead-lettered" not in counter.line(30.0, 0, "redis", dead=metrics.dead_letters())
    metrics.invalid_records.labels("wrong_type").inc()
    assert ", 1 dead-lettered (wrong_type 1)" in counter.line(40.0, 0, "redis",
                                                             dead=metrics.dead_letters())


def test_unrouted_records_of_a_period_are_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """Two workers of one group with other models: one dead-lettered its partitions
    wholesale as unrouted (79,261 records) with an INFO count as the only line."""
    from stream_detector.worker.metrics import WorkerMetrics

    metrics = WorkerMetrics()
    up = KafkaStatus(connected=True, assigned_partitions=[0], consumer_lag=0,
                     seconds_since_fetch=0.5)
    reporter = ConsoleReporter(clock=lambda: 100.0)
    with caplog.at_level(logging.INFO, logger=CONSOLE_LOGGER):
        metrics.invalid_records.labels("wrong_type").inc(5)
        reporter.summary(up, [], metrics.dead_letters())
        assert not [r for r in caplog.records if r.levelno == logging.WARNING]
        metrics.invalid_records.labels("unrouted").inc(20_465)
        reporter.summary(up, [], metrics.dead_letters())
        reporter.summary(up, [], metrics.dead_letters())  # none new: no warning
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("20,465 record(s) of this period were dead-lettered as unrouted")
    assert "Workers of one group must load the same models (--model)" in warning
