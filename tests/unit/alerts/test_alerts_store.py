"""persist: what the tracker changed reaches the store; a failing store is logged, not raised.
(RedisIncidentStore against a real redis-server: tests/integration/test_alerts.py.)"""

from __future__ import annotations

import json

from alert_events import FakeClock, event

from stream_detector.alerts.incidents import IncidentTracker
from stream_detector.alerts.store import persist


class DictStore:
    def __init__(self, fail: bool = False) -> None:
        self.states: dict[str, str] = {}
        self.fail = fail

    def save(self, states: dict[str, str]) -> None:
        if self.fail:
            raise ConnectionError("redis gone")
        self.states.update(states)

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            del self.states[key]


def test_opened_incidents_are_saved_and_closed_ones_deleted_once() -> None:
    clock, store, logs = FakeClock(), DictStore(), []
    tracker = IncidentTracker(60, 0, clock)
    tracker.observe(event("a", "2015-02-26T21:00:00"))
    tracker.observe(event("b", "2015-02-26T21:00:30"))
    persist(tracker, store, 5_000.0, logs.append)
    assert sorted(store.states) == ["a", "b"]
    saved = json.loads(store.states["a"])
    assert (saved["count"], saved["saved_at"]) == (1, 5_000.0)
    clock.now += 31  # a quiet for 61 s of event time, b for 31 s
    tracker.tick()
    persist(tracker, store, 5_031.0, logs.append)
    assert list(store.states) == ["b"] and logs == []


def test_nothing_changed_writes_nothing_and_a_failing_store_is_logged() -> None:
    clock, logs = FakeClock(), []
    tracker = IncidentTracker(60, 0, clock)
    persist(tracker, DictStore(fail=True), 1.0, logs.append)
    assert logs == []  # nothing to save: the store is not even called
    tracker.observe(event("a", "t1"))
    persist(tracker, DictStore(fail=True), 1.0, logs.append)
    assert logs == ["incident state not saved (ConnectionError: redis gone); alerting goes on"]
