"""ExplorerState: events deduplicated and ordered, bounded memory, observed values per key."""

from __future__ import annotations

import numpy as np
from ui_events import event, ns

from stream_detector.ui.follow import apply_event, apply_records
from stream_detector.ui.state import EventRow, ExplorerState, SeriesRing, to_ns


def test_to_ns_reads_naive_as_utc_and_honours_offsets() -> None:
    assert to_ns("2026-01-01T00:00:00") == ns(0)
    assert to_ns("2026-01-01T01:00:00+01:00") == ns(0)
    assert to_ns("2026-01-01T00:00:00Z") == ns(0)


def test_events_are_kept_in_time_order_and_duplicates_counted() -> None:
    state = ExplorerState()
    for step in (30, 10, 20):
        assert state.add_event(EventRow.from_event(event("a", step, 50)))
    assert not state.add_event(EventRow.from_event(event("a", 10, 50)))  # redelivered
    assert [r.end_ns for r in state.events] == [ns(10), ns(20), ns(30)]
    assert state.duplicates == 1
    assert (state.earliest_ns, state.latest_ns) == (ns(10), ns(30))


def test_the_oldest_events_go_first_when_the_cap_is_reached() -> None:
    state = ExplorerState(max_events=10)
    for step in range(11):
        state.add_event(EventRow.from_event(event(f"k{step % 2}", step, 10)))
    assert len(state.events) == 9  # 11 > 10: down to 90% of the cap
    assert state.events[0].end_ns == ns(2)
    assert all(r.end_ns >= ns(2) for rows in state.by_key.values() for r in rows)
    assert sum(len(rows) for rows in state.by_key.values()) == 9
    # a forgotten event may be shown again if redelivered: it is no longer a duplicate
    assert state.add_event(EventRow.from_event(event("k0", 0, 10)))


def test_series_ring_grows_then_overwrites_the_oldest_and_sorts_by_time() -> None:
    ring = SeriesRing(capacity=100)
    for i in range(70):
        ring.append(i, float(i))
    assert len(ring.times) == 100  # 64 -> doubled, capped
    for i in range(70, 150):
        ring.append(i, float(i))
    times, values = ring.arrays()
    assert times.tolist() == list(range(50, 150))
    assert values[0] == 50.0
    late = SeriesRing(capacity=8)
    for t in (5, 3, 4):
        late.append(t, float(t))
    assert late.arrays()[0].tolist() == [3, 4, 5]


def test_messages_from_the_topics_are_parsed_with_the_wire_contracts() -> None:
    state = ExplorerState()
    raw = b'[{"kind": "series", "series": "s", "timestamp": "2026-01-01T00:00:00", "value": 1},' \
          b' {"kind": "series", "series": "s", "timestamp": "2026-01-01T00:05:00", "value": 2}]'
    assert apply_records(state, raw) == 2
    assert state.records == 2 and state.keys() == {"s"}
    assert np.array_equal(state.series["s"].arrays()[1], [1.0, 2.0])
    row = apply_event(state, event("s", 5, 80).model_dump_json().encode())
    assert row is not None and row.severity == 80 and row.expected == (10.0,)
    assert apply_event(state, event("s", 5, 80).model_dump_json().encode()) is None
