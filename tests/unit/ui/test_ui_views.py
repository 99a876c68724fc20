"""The explorer's queries: swim lane cells, sorting, search and paging over 10,000 keys; the
table; one key's view with quiet periods and model version changes."""

from __future__ import annotations

import time

import numpy as np
from ui_events import event, ns

from stream_detector.ui import views
from stream_detector.ui.state import EventRow, ExplorerState


def _state(*events: tuple[str, int, float]) -> ExplorerState:
    state = ExplorerState()
    for key, step, sev in events:
        state.add_event(EventRow.from_event(event(key, step, sev)))
    return state


def test_swim_lane_cells_hold_the_highest_severity_of_each_bucket() -> None:
    state = _state(("a", 0, 10), ("a", 5, 80), ("a", 95, 30), ("b", 50, 20))
    state.add_values("c", [(ns(40), 1.0)])  # a key without anomalies is a row too
    o = views.overview(state, views.time_range(state), buckets=4)
    assert o["keys"] == ["a", "b", "c"]  # by highest severity, then name
    assert o["cells"] == [[80, None, None, 30], [None, None, 20, None], [None] * 4]
    assert o["max"] == [80, 20, None] and o["counts"] == [3, 1, 0]
    assert o["edges"][0] == ns(0) and o["edges"][-1] == ns(95) + 1


def test_sorting_by_recency_or_name_and_searching() -> None:
    state = _state(("a", 0, 90), ("b", 50, 20), ("ab", 20, 50))
    tr = views.time_range(state)
    assert views.overview(state, tr, sort="recent")["keys"] == ["b", "ab", "a"]
    assert views.overview(state, tr, sort="key")["keys"] == ["a", "ab", "b"]
    assert views.overview(state, tr, query="B")["keys"] == ["ab", "b"]


def test_time_range_counts_back_from_the_latest_data_time() -> None:
    state = _state(("a", 0, 90), ("b", 100, 20))
    tr = views.time_range(state, "1h")
    assert (tr.start_ns, tr.end_ns) == (ns(40), ns(100))
    o = views.overview(state, tr, buckets=2)
    assert o["keys"] == ["b", "a"] and o["max"] == [20, None]  # a's anomaly is older
    assert views.time_range(ExplorerState(), "1h") == views.TimeRange(None, None)


def test_ten_thousand_keys_are_paged_and_searched_on_the_server() -> None:
    state = ExplorerState()
    for k in range(10_000):
        state.add_values(f"store-{k:05d}", [(ns(i), float(i)) for i in range(3)])
        if k % 10 == 0:
            state.add_event(EventRow.from_event(event(f"store-{k:05d}", k % 60, k % 100)))
    tr = views.time_range(state)
    started = time.perf_counter()
    o = views.overview(state, tr, page=3, size=50)
    elapsed = time.perf_counter() - started
    assert o["total"] == 10_000 and o["pages"] == 200 and o["page"] == 3
    assert len(o["keys"]) == 50 and len(o["cells"]) == 50
    first = views.overview(state, tr, page=0, size=50)
    assert first["max"][0] == 90  # the highest severities lead
    assert views.overview(state, tr, query="store-0999")["total"] == 10
    assert views.overview(state, tr, page=10**6)["page"] == 199  # clamped to the last page
    print(f"overview of 10,000 keys: {elapsed * 1000:.0f} ms")
    assert elapsed < 2.0  # generous: 2 shared cores; measured about 0.1 s


def test_table_is_newest_first_filtered_and_paged() -> None:
    state = _state(("a", 0, 90), ("b", 10, 20), ("a", 20, 50))
    tr = views.time_range(state)
    t = views.anomalies(state, tr)
    assert [(r["key"], r["severity"]) for r in t["rows"]] == [("a", 50), ("b", 20), ("a", 90)]
    assert views.anomalies(state, tr, min_severity=30)["total"] == 2
    assert [r["time_ns"] for r in views.anomalies(state, tr, key="a", limit=1)["rows"]] == [ns(20)]
    assert views.anomalies(state, tr, offset=2)["rows"][0]["severity"] == 90


def test_key_view_has_values_events_quiet_periods_and_version_changes() -> None:
    state = ExplorerState()
    state.add_values("k", [(ns(i), float(i)) for i in range(100)])
    state.set_quiet_windows("m", "1", 10)
    state.add_event(EventRow.from_event(event("k", 20, 60)))
    state.add_event(EventRow.from_event(event("k", 70, 40, version="2")))
    k = views.key_view(state, "k", views.time_range(state))
    assert k["seen"] and len(k["times"]) == 100 and k["values"][:3] == [0.0, 1.0, 2.0]
    assert [e["version"] for e in k["events"]] == ["1", "2"]
    assert k["quiet"] == [[ns(20), ns(30)]]  # only version 1's card is known here
    assert [(v["version"], v["first"]) for v in k["versions"]] == [("1", True), ("2", False)]
    assert not views.key_view(state, "nope", views.time_range(state))["seen"]


def test_long_series_are_decimated_keeping_their_extremes() -> None:
    t = np.arange(100_000)
    v = np.zeros(100_000)
    v[12_345], v[67_890] = 99.0, -42.0
    dt, dv = views.decimate(t, v, most=1000)
    assert len(dt) <= 1000 and dv.max() == 99.0 and dv.min() == -42.0
    assert np.all(np.diff(dt) > 0)
