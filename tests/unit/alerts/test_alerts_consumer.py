"""The consumer loop, with a fake consumer, clock and store (no network): posts per incident,
commits after delivery, incidents saved before commits."""

from __future__ import annotations

from typing import Any

import pytest
from alert_events import FakeConsumer

from schemas.events import (
    AnomalyEvent,
    ModelRef,
    SourceRef,
    ThresholdSource,
    event_id_for,
)
from stream_detector.alerts.consumer import AlertOptions, consumer_config, run_alerts
from stream_detector.alerts.incidents import IncidentTracker
from stream_detector.alerts.sinks.webhook import WebhookError


def test_consumer_config_commits_manually() -> None:
    conf = consumer_config({"bootstrap.servers": "b:1"}, "g", from_beginning=True)
    assert conf["enable.auto.commit"] is False
    assert conf["group.id"] == "g" and conf["auto.offset.reset"] == "earliest"
    assert consumer_config({}, "g", False)["auto.offset.reset"] == "latest"


# --- the loop, with a fake consumer and a fake clock ---------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now




def event(key: str, end: str) -> bytes:
    return AnomalyEvent(
        event_id=event_id_for("m", "1", key, end), key=key, record_kind="series",
        window_start="s", window_end=end, detected_at="d", score=2.0, threshold=1.0,
        threshold_source=ThresholdSource(method="manual", version="1", scope="key"),
        severity=10.0, observed=[1.0], top_contributors=[],
        model=ModelRef(name="m", version="1", onnx_sha256="0" * 64, family="dense"),
        provider="CPUExecutionProvider", source=SourceRef(topic="records"),
    ).model_dump_json().encode()


def at(seconds: int) -> str:
    """An event time: ``seconds`` after 2015-02-26T21:00:00."""
    return f"2015-02-26T21:{seconds // 60:02d}:{seconds % 60:02d}"


def test_the_alerts_log_escapes_control_characters_of_keys() -> None:
    clock = Clock()
    consumer = FakeConsumer([event("k\n[INFO] fake", at(0)), event("z", at(60))], clock)
    logs: list[str] = []
    run_alerts(consumer, IncidentTracker(5.0, 0, clock), [].append,
               AlertOptions("anomalies", max_seconds=60, exit_when_idle=3, tick=1.0),
               logs.append, clock=clock)
    assert any(line.startswith(r"sent: incident opened for k\n[INFO] fake (") for line in logs)
    assert all("\n" not in line for line in logs), logs


class _Eof:
    def code(self) -> int:
        return -191  # KafkaError._PARTITION_EOF


class _EndOf:
    """What librdkafka hands out when a partition has been read to its end."""

    def error(self) -> _Eof:
        return _Eof()

    def partition(self) -> int:
        return 0


def test_the_idle_time_counts_from_the_end_of_the_topic_not_from_the_start() -> None:
    """With --exit-when-idle shorter than the group join and first fetch, alerts stopped
    before reading anything."""
    from stream_detector.consumer_idle import ReadToEnd

    clock = Clock()
    consumer = FakeConsumer([event("a", at(0)), event("b", at(1))], clock)
    slow = consumer.poll

    def poll(timeout: float) -> Any:
        if clock.now < 5.0:  # five seconds of joining and fetching
            clock.now += timeout
            return None
        if consumer.queue:
            return slow(timeout)
        clock.now += timeout
        return _EndOf()

    consumer.poll = poll  # type: ignore[method-assign]
    idle = ReadToEnd(clock())
    idle.assigned(None, [type("TP", (), {"partition": 0})()])
    stats = run_alerts(consumer, IncidentTracker(5.0, 0, clock), [].append,
                       AlertOptions("anomalies", exit_when_idle=1.0, tick=1.0), print,
                       clock=clock, idle=idle)
    assert stats.messages == 2 and consumer.committed == [0, 1]
    assert clock.now < 10.0  # and it stopped soon after the end


def test_loop_posts_once_per_incident_skips_garbage_and_commits_everything() -> None:
    clock = Clock()
    values = [event("a", at(0)), b"{oops", event("a", at(2)), event("a", at(0)),
              event("b", at(1)), event("c", at(60))]  # c moves event time past a's and b's
    consumer = FakeConsumer(values, clock)
    posts: list[dict[str, Any]] = []
    logs: list[str] = []
    tracker = IncidentTracker(5.0, 0, clock)
    stats = run_alerts(consumer, tracker, posts.append,
                       AlertOptions("anomalies", max_seconds=60, exit_when_idle=3, tick=1.0),
                       logs.append, clock=clock)
    texts = [p["text"] for p in posts]
    assert [t[:13] for t in texts if t.startswith("Anomaly")] == [
        "Anomaly on a:", "Anomaly on b:", "Anomaly on c:"] and len(texts) == 5
    assert sorted(t for t in texts if t.startswith("resolved")) == [
        f"resolved: 1 anomaly between {at(1)} and {at(1)} on b",
        f"resolved: 2 anomalies between {at(0)} and {at(2)} on a"]
    assert consumer.committed == [0, 1, 2, 3, 4, 5]
    assert (stats.messages, stats.invalid, stats.opened, stats.resolved) == (6, 1, 3, 2)
    assert any("skipped anomalies[0]@1" in line for line in logs)
    assert "sent: incident of b resolved after 1 anomaly" in logs  # neutral on a dry run
    assert "sent: incident of a resolved after 2 anomalies" in logs
    # idle for 3 s: it leaves, c still open (its quiet period has not passed)
    assert [i.key for i in tracker.open_incidents] == ["c"] and clock.now < 12


def test_a_backlog_is_grouped_on_event_time_not_on_the_clock() -> None:
    """Seven weeks of daily anomalies read in one go (the clock barely moves): one
    incident per day, each resolved by the next day's event; the last stays open."""
    clock = Clock()
    days = [f"2015-03-{d:02d}T12:00:00" for d in range(1, 29)]
    consumer = FakeConsumer([event("AAPL", d) for d in days], clock)
    posts: list[dict[str, Any]] = []
    tracker = IncidentTracker(900.0, 0, clock)
    stats = run_alerts(consumer, tracker, posts.append,
                       AlertOptions("anomalies", exit_when_idle=2, tick=1.0), print,
                       clock=clock)
    assert (stats.opened, stats.resolved, len(tracker.open_incidents)) == (28, 27, 1)
    assert posts[1]["text"] == f"resolved: 1 anomaly between {days[0]} and {days[0]} on AAPL"
    assert clock.now < 40  # idle means no message for 2 s, open incident or not


def test_a_run_told_not_to_commit_reads_all_and_commits_nothing() -> None:
    clock = Clock()
    consumer = FakeConsumer([event("a", at(0)), event("b", at(1))], clock)
    posts: list[dict[str, Any]] = []
    stats = run_alerts(consumer, IncidentTracker(5.0, 0, clock), posts.append,
                       AlertOptions("anomalies", max_seconds=10, exit_when_idle=3, tick=1.0,
                                    commit=False), print, clock=clock)
    assert stats.messages == 2 and len(posts) == 2 and consumer.committed == []


def test_failed_delivery_leaves_the_message_uncommitted() -> None:
    clock = Clock()
    consumer = FakeConsumer([event("a", "1")], clock)

    def down(payload: dict[str, Any]) -> None:
        raise WebhookError("webhook down")

    with pytest.raises(WebhookError):
        run_alerts(consumer, IncidentTracker(5.0, 0, clock), down,
                   AlertOptions("anomalies", max_seconds=10), print, clock=clock)
    assert consumer.committed == []


def test_max_seconds_bounds_the_run_even_with_open_incidents() -> None:
    clock = Clock()
    consumer = FakeConsumer([event("a", "1")], clock)
    tracker = IncidentTracker(900.0, 0, clock)
    stats = run_alerts(consumer, tracker, lambda p: None,
                       AlertOptions("anomalies", max_seconds=7), print, clock=clock)
    assert stats.opened == 1 and len(tracker.open_incidents) == 1
    assert 7 <= clock.now < 9


class FakeStore:
    """An IncidentStore that records, with each call, what the consumer had committed."""

    def __init__(self, consumer: FakeConsumer, fail: bool = False) -> None:
        self.consumer, self.fail = consumer, fail
        self.states: dict[str, str] = {}
        self.calls: list[tuple[str, list[str], list[int]]] = []

    def save(self, states: dict[str, str]) -> None:
        self.calls.append(("save", sorted(states), list(self.consumer.committed)))
        if self.fail:
            raise ConnectionError("redis gone")
        self.states.update(states)

    def delete(self, keys: list[str]) -> None:
        self.calls.append(("delete", keys, list(self.consumer.committed)))
        for key in keys:
            self.states.pop(key, None)


def test_open_incidents_are_saved_before_the_offset_commits_and_dropped_when_resolved() -> None:
    clock = Clock()
    consumer = FakeConsumer([event("a", at(0)), event("a", at(2)), event("b", at(60))], clock)
    store = FakeStore(consumer)
    tracker = IncidentTracker(5.0, 0, clock)
    run_alerts(consumer, tracker, lambda payload: None,
               AlertOptions("anomalies", max_seconds=60, exit_when_idle=3, tick=1.0),
               print, clock=clock, store=store, wall=lambda: 1e9 + clock.now)
    # message 0 opened the incident: saved while nothing was committed; message 1 grew it
    assert store.calls[:2] == [("save", ["a"], []), ("save", ["a"], [0])]
    # message 2 (a minute later in event time) opened b; a resolved on the next tick
    assert store.calls[2:] == [("save", ["b"], [0, 1]), ("delete", ["a"], [0, 1, 2])]
    assert list(store.states) == ["b"]


def test_a_restarted_tracker_resumes_the_saved_incident_without_paging_again() -> None:
    clock = Clock()
    first = FakeConsumer([event("a", at(0))], clock)
    store = FakeStore(first)
    posts: list[dict[str, Any]] = []
    run_alerts(first, IncidentTracker(5.0, 0, clock), posts.append,
               AlertOptions("anomalies", max_seconds=2.0, tick=1.0), print, clock=clock,
               store=store, wall=lambda: 1e9 + clock.now)
    assert [p["text"][:13] for p in posts] == ["Anomaly on a:"] and "a" in store.states

    later = Clock()  # another process: its monotonic clock has another origin
    resumed = IncidentTracker(5.0, 0, later)
    assert resumed.resume(store.states.values(), wall_now=1e9 + 3.0) == 1  # 1 s downtime
    second = FakeConsumer([event("a", at(0)), event("a", at(2)), event("b", at(60))],
                          later)  # at(0) is redelivered
    posts.clear()
    run_alerts(second, resumed, posts.append,
               AlertOptions("anomalies", max_seconds=60, exit_when_idle=3, tick=1.0), print,
               clock=later, store=FakeStore(second))
    assert [p["text"][:13] for p in posts] == ["Anomaly on b:", "resolved: 2 a"]
    assert posts[1]["text"] == f"resolved: 2 anomalies between {at(0)} and {at(2)} on a"
    assert resumed.duplicates == 1


def test_an_unreachable_store_is_logged_and_alerting_goes_on() -> None:
    clock = Clock()
    consumer = FakeConsumer([event("a", at(0))], clock)
    posts: list[dict[str, Any]] = []
    logs: list[str] = []
    # no further event: the clock carries event time on, so the incident still resolves
    run_alerts(consumer, IncidentTracker(5.0, 0, clock), posts.append,
               AlertOptions("anomalies", max_seconds=60, exit_when_idle=8, tick=1.0),
               logs.append, clock=clock, store=FakeStore(consumer, fail=True))
    assert len(posts) == 2 and consumer.committed == [0]
    assert any("incident state not saved (ConnectionError: redis gone)" in x for x in logs)


def test_a_records_topic_is_said_once_and_its_messages_counted() -> None:
    """alerts pointed at the records topic printed 28,126 "skipped" lines."""
    clock = Clock()
    record = b'{"kind": "series", "series": "a", "timestamp": "2015-01-01T00:00:00", "value": 1}'
    consumer = FakeConsumer([record] * 250, clock)
    logs: list[str] = []
    stats = run_alerts(consumer, IncidentTracker(5.0, 0, clock), [].append,
                       AlertOptions("records", max_seconds=10_000, exit_when_idle=3, tick=1.0),
                       logs.append, clock=clock)
    assert stats.invalid == 250 and consumer.committed == list(range(250))
    skipped = [line for line in logs if line.startswith("skipped")]
    assert len(skipped) == 5  # the first 3, then at 10 and 100
    assert skipped[-1].startswith("skipped 100 messages that are not anomaly events so far")
    assert sum("does not hold anomaly events (a records topic?" in line for line in logs) == 1
