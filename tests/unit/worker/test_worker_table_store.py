"""Key states over the Faust table: at most ``max_live`` kept decoded, the rest as bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from pipeline_fixtures import MemoryTable, series_records, tiny_runtime

from schemas.events import SourceRef
from stream_detector.core.key_state import KeyState
from stream_detector.core.pipeline import Pipeline
from stream_detector.core.windowing import WindowState
from stream_detector.worker.table_store import TableStore, table_key

SRC = SourceRef(topic="t", partition=0, offset=0)


def _state(value: float) -> KeyState:
    state = KeyState("1", WindowState(4, 1))
    state.window.push([value], 1_000_000_000, "t")
    return state


def _live_keys(store: TableStore) -> list[str]:
    return [k.decode().split("\x1f")[1] for k in store.live]


def test_states_beyond_the_bound_leave_memory_after_a_write_updated_longest_ago_first() -> None:
    table = MemoryTable()
    store = TableStore(table, max_live=2)
    for key in ("a", "b", "c"):
        store.put("m", key, _state(1.0), SRC)
    store.put("m", "a", _state(2.0), SRC)  # a updated again: b is now the oldest
    assert _live_keys(store) == ["b", "c", "a"]  # nothing dropped before the write
    assert store.flush() == 3
    assert _live_keys(store) == ["c", "a"]
    back = store.get("m", "b")  # decoded again from the table: the same state
    assert back is not None and back.to_bytes() == _state(1.0).to_bytes()
    assert _live_keys(store) == ["c", "a", "b"]


def test_states_changed_since_the_snapshot_in_flight_stay_in_memory() -> None:
    table = MemoryTable()
    store = TableStore(table, max_live=1)
    put = {key: _state(1.0) for key in ("a", "b", "c")}
    for key, state in put.items():
        store.put("m", key, state, SRC)
    blobs = store.serialize()  # a flush's snapshot; its write completes later
    assert table.data == {}  # so none may leave memory before the write
    assert all(store.get("m", key) is state for key, state in put.items())
    store.put("m", "a", _state(5.0), SRC)  # changed after the snapshot
    store.write(blobs)
    assert _live_keys(store) == ["a"]  # b and c dropped, a kept: its change is not written
    assert KeyState.from_bytes(table.data[table_key("m", "a")]).to_bytes() == \
        _state(1.0).to_bytes()
    got = store.get("m", "a")
    assert got is not None and got.to_bytes() == _state(5.0).to_bytes()


def test_a_bound_under_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        TableStore(MemoryTable(), max_live=0)


def _events(tmp_path: Path, max_live: int) -> list[tuple[str, str, float, bool]]:
    store = TableStore(MemoryTable(), max_live=max_live)
    pipe = Pipeline([tiny_runtime(tmp_path)], store)
    base = [10.0, 10.2, 9.9, 10.1, 10.0, 9.8, 10.1, 10.0, 10.2, 9.9, 30.0, 10.1] * 3
    series = {k: series_records(k, [v * (1 + i) for v in base]) for i, k in enumerate("abcde")}
    out = []
    offset = 0
    for step in range(len(base)):
        pending = []
        for recs in series.values():  # every key in turn: each is the oldest in turn
            pending += pipe.ingest([recs[step]], SourceRef(topic="t", partition=0,
                                                           offset=offset))
            offset += 1
        for s in pipe.decide(pending, Pipeline.score(pending)):
            out.append((s.pending.key, s.pending.window.end_text, s.raw_score,
                        s.event is not None))
        store.flush()
        assert len(store.live) == min(max_live, len(series))
    return out


def test_a_worker_with_one_decoded_state_gives_the_events_of_one_holding_all(
    tmp_path: Path,
) -> None:
    bounded = _events(tmp_path / "one", max_live=1)
    assert bounded == _events(tmp_path / "all", max_live=1000)
    assert len(bounded) > 100
    assert {key for key, _, _, alert in bounded if alert} == set("abcde")  # the 30.0s
