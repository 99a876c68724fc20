"""IncidentTracker: grouping, the suppression window, resolutions, duplicates, severity,
saved state; parse_event."""

from __future__ import annotations

import json

import pytest
from alert_events import FakeClock, event

from stream_detector.alerts.formats import render
from stream_detector.alerts.incidents import IncidentTracker, parse_event
from stream_detector.exceptions import InvalidRecord


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


def test_first_event_opens_and_repeats_are_counted_not_posted(clock: FakeClock) -> None:
    tracker = IncidentTracker(900, 0, clock)
    opened = tracker.observe(event("AAPL", "t1"))
    assert [n.kind for n in opened] == ["opened"]
    clock.now += 300
    assert tracker.observe(event("AAPL", "t2")) == []
    clock.now += 899  # within 900 s of the *last* event, not the first
    assert tracker.observe(event("AAPL", "t3")) == []
    assert tracker.tick() == []
    (incident,) = tracker.open_incidents
    assert incident.count == 3
    assert (incident.first.window_end, incident.last.window_end) == ("t1", "t3")


def test_quiet_key_resolves_on_tick_with_count_and_window_span(clock: FakeClock) -> None:
    tracker = IncidentTracker(600, 0, clock)
    tracker.observe(event("AAPL", "2015-02-26T21:00:00"))
    clock.now += 10  # the clock barely moves: event time says 300 s passed
    tracker.observe(event("AAPL", "2015-02-26T21:05:00"))
    clock.now += 599  # after the last event, the clock carries event time on
    assert tracker.tick() == []
    clock.now += 1
    (notice,) = tracker.tick()
    assert notice.kind == "resolved"
    assert render(notice, tracker.suppress)["text"] == (
        "resolved: 2 anomalies between 2015-02-26T21:00:00 and 2015-02-26T21:05:00 on AAPL")
    assert tracker.open_incidents == []
    assert tracker.tick() == []  # resolved once only


def test_next_event_after_window_resolves_then_opens_a_new_incident(clock: FakeClock) -> None:
    tracker = IncidentTracker(60, 0, clock)
    tracker.observe(event("AAPL", "t1"))
    clock.now += 61
    notices = tracker.observe(event("AAPL", "t2"))
    assert [n.kind for n in notices] == ["resolved", "opened"]
    assert render(notices[0], 60)["text"].startswith("resolved: 1 anomaly between t1 and t1")
    assert notices[1].incident.first.window_end == "t2"


def test_keys_are_independent(clock: FakeClock) -> None:
    tracker = IncidentTracker(60, 0, clock)
    assert len(tracker.observe(event("a", "t1"))) == 1
    clock.now += 50
    assert len(tracker.observe(event("b", "t1"))) == 1  # another key opens its own incident
    clock.now += 20  # a quiet 70 s, b only 20 s
    resolved = tracker.tick()
    assert [n.incident.key for n in resolved] == ["a"]
    assert [i.key for i in tracker.open_incidents] == ["b"]


def test_duplicate_event_ids_are_ignored(clock: FakeClock) -> None:
    tracker = IncidentTracker(60, 0, clock)
    first = event("AAPL", "t1")
    tracker.observe(first)
    clock.now += 30
    assert tracker.observe(first) == []
    assert tracker.duplicates == 1
    assert tracker.open_incidents[0].count == 1
    # a duplicate neither counts nor keeps the incident alive
    assert tracker.open_incidents[0].last_seen_at == 1000.0


def test_events_below_min_severity_neither_open_nor_extend(clock: FakeClock) -> None:
    tracker = IncidentTracker(60, 40, clock)
    assert tracker.observe(event("AAPL", "t1", severity=39.9)) == []
    assert tracker.open_incidents == []
    assert len(tracker.observe(event("AAPL", "t2", severity=40))) == 1
    clock.now += 50
    tracker.observe(event("AAPL", "t3", severity=5))
    clock.now += 10
    assert [n.incident.count for n in tracker.tick()] == [1]
    assert tracker.below_severity == 2


def test_suppress_must_be_positive(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="suppress"):
        IncidentTracker(0, 0, clock)


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b'{"key": "x"}', None])
def test_parse_event_rejects_what_is_not_an_event(raw: bytes | None) -> None:
    with pytest.raises(InvalidRecord):
        parse_event(raw)


def test_parse_event_reads_the_wire_format() -> None:
    original = event("AAPL", "t1")
    assert parse_event(original.model_dump_json().encode()) == original


def test_saved_incidents_resume_with_their_quiet_time_and_bad_states_are_skipped() -> None:
    from stream_detector.alerts.incidents import incident_state

    clock = FakeClock()
    tracker = IncidentTracker(900.0, 0.0, clock)
    tracker.observe(event("AAPL", "2015-02-26T21:00:00"))
    clock.now += 100
    tracker.observe(event("AAPL", "2015-02-26T21:05:00"))
    opened, closed = tracker.take_changes()
    assert list(opened) == ["AAPL"] and closed == [] and tracker.take_changes() == ({}, [])
    saved = incident_state(opened["AAPL"], tracker.now(), wall_now=50_000.0)

    other = FakeClock()
    other.now = 7.0
    resumed = IncidentTracker(900.0, 0.0, other)
    assert resumed.resume([saved, "{oops", json.dumps({"count": 1})], 50_600.0) == 1
    assert resumed.tick() == []  # quiet for 600 s of 900
    other.now += 300
    (notice,) = resumed.tick()
    assert render(notice, 900)["text"] == ("resolved: 2 anomalies between 2015-02-26T21:00:00 and "
                                      "2015-02-26T21:05:00 on AAPL")
    assert resumed.take_changes() == ({}, ["AAPL"])


def test_event_time_groups_a_backlog_and_splits_what_is_far_apart(clock: FakeClock) -> None:
    """The clock stands still (a backlog): window ends alone decide."""
    tracker = IncidentTracker(900, 0, clock)
    kinds = [n.kind for t in ("2015-02-26T21:00:00", "2015-02-26T21:10:00",
                               "2015-02-26T21:40:00")
             for n in tracker.observe(event("AAPL", t))]
    # 10 min apart: one incident; then 30 min of quiet: resolved, and a new one opens
    assert kinds == ["opened", "resolved", "opened"]
    assert tracker.open_incidents[0].first.window_end == "2015-02-26T21:40:00"


def test_another_keys_later_event_moves_event_time_and_resolves(clock: FakeClock) -> None:
    tracker = IncidentTracker(900, 50, clock)
    tracker.observe(event("AAPL", "2015-02-26T21:00:00"))
    # below min_severity: ignored as an anomaly, but its time still counts
    assert tracker.observe(event("GOOG", "2015-02-26T22:00:00", severity=1.0)) == []
    clock.now += 2  # AAPL had its grace: nothing more of it arrived
    (notice,) = tracker.tick()
    assert (notice.kind, notice.incident.key) == ("resolved", "AAPL")
    assert tracker.now() == pd_seconds("2015-02-26T22:00:00") + 2


def test_a_key_read_late_from_another_partition_is_still_grouped(clock: FakeClock) -> None:
    """Partition 1 was read first (event time ran to 22:00); partition 0's AAPL events of
    21:00-21:10 come after: they form one incident, not one page each."""
    tracker = IncidentTracker(900, 0, clock)
    tracker.observe(event("GOOG", "2015-02-26T22:00:00"))
    kinds = [n.kind for t in ("2015-02-26T21:00:00", "2015-02-26T21:05:00",
                               "2015-02-26T21:10:00")
             for n in tracker.observe(event("AAPL", t))]
    assert kinds == ["opened"]
    clock.now += 2
    assert {n.incident.key: n.incident.count for n in tracker.tick()} == {"AAPL": 3}


def pd_seconds(text: str) -> float:
    from datetime import UTC, datetime

    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_a_skewed_window_end_does_not_hold_its_key_incident_open_for_years(
    clock: FakeClock,
) -> None:
    """One record stamped 2199 (a producer's fast clock): its event's window_end made every
    later anomaly of the key fall "before" it, join its incident, and never be paged."""
    from schemas.events import Quality

    tracker = IncidentTracker(900, 0, clock)
    tracker.observe(event("AAPL", "2015-02-26T21:00:00"))
    skewed = event("AAPL", "2199-12-31T00:00:00").model_copy(
        update={"quality": Quality(skewed=True)})
    tracker.observe(skewed)  # counts at "now": it joins the open incident
    assert tracker.now() < 4_000_000_000  # event time did not jump to 2199
    later = tracker.observe(event("AAPL", "2015-02-27T09:00:00"))  # 12 hours on
    assert [n.kind for n in later] == ["resolved", "opened"]
    assert later[0].incident.count == 2
