"""The shared pipeline: key state bytes, replay after a crash, batching across keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pipeline_fixtures import MemoryTable, series_records, tiny_runtime

from schemas.events import SourceRef
from stream_detector.core.key_state import DictStore, KeyState, position_of
from stream_detector.core.pipeline import Pipeline
from stream_detector.core.windowing import WindowState
from stream_detector.worker.table_store import TableStore, table_key

# the 30.0 completes the 8th window, after the warm-up (6 windows of 4 records)
VALUES = [10.0, 10.2, 9.9, 10.1, 10.0, 9.8, 10.1, 10.0, 10.2, 9.9, 30.0, 10.1]


def test_key_state_round_trips() -> None:
    state = KeyState("3", WindowState(4, 2, 1), last_position=position_of(41, 3))
    state.window.push([1.0, 2.0], 5, "t")
    back = KeyState.from_bytes(state.to_bytes())
    assert (back.version, back.last_position, back.window.count) == ("3", 41 * 10_000 + 3, 1)
    with pytest.raises(ValueError):
        KeyState.from_bytes(b"junk" + state.to_bytes()[4:])


def test_interleaved_keys_give_the_same_events_as_each_key_alone(tmp_path: Path) -> None:
    rt = tiny_runtime(tmp_path)
    together = Pipeline([rt], DictStore())
    a, b = series_records("a", VALUES), series_records("b", [2.0 * v + 5.0 for v in VALUES])
    pending = []
    for i, (ra, rb) in enumerate(zip(a, b, strict=True)):
        pending += together.ingest([ra], SourceRef(topic="t", partition=0, offset=2 * i))
        pending += together.ingest([rb], SourceRef(topic="t", partition=0, offset=2 * i + 1))
    decided = together.decide(pending, Pipeline.score(pending))
    mixed = {(s.pending.key, s.pending.window.end_text): s.raw_score for s in decided}
    assert {s.pending.key for s in decided if s.event is not None} == {"a", "b"}  # the 30.0
    for key, recs in (("a", a), ("b", b)):
        alone = Pipeline([rt], DictStore())
        p = alone.ingest(recs, SourceRef(topic="t"))
        for s in alone.decide(p, Pipeline.score(p)):
            assert mixed[(key, s.pending.window.end_text)] == pytest.approx(s.raw_score)


def test_records_already_in_the_state_are_skipped_after_a_restart(tmp_path: Path) -> None:
    rt = tiny_runtime(tmp_path)
    store = DictStore()
    first = Pipeline([rt], store)
    recs = series_records("a", VALUES)
    for i, r in enumerate(recs[:9]):
        first.ingest([r], SourceRef(topic="t", partition=0, offset=i))
    # restart: the state (bytes) survived, offsets 5..8 were not committed and come again
    saved = KeyState.from_bytes(store.states[("tiny", "a")].to_bytes())
    store2 = DictStore()
    store2.states[("tiny", "a")] = saved
    second = Pipeline([rt], store2)
    replayed = [second.ingest([r], SourceRef(topic="t", partition=0, offset=i))
                for i, r in enumerate(recs[5:12], start=5)]
    assert [len(p) for p in replayed] == [0, 0, 0, 0, 1, 1, 1]  # 5-8 skipped, 9-11 new
    assert saved.window.count == 12


@pytest.mark.parametrize("source", [SourceRef(topic="other", partition=0, offset=0),
                                    SourceRef(topic="t", partition=3, offset=0)])
def test_records_of_another_topic_or_partition_are_never_skipped(
    tmp_path: Path, source: SourceRef,
) -> None:
    # an app id reused with a new input topic, or a repartitioned topic: offsets restart low
    rt = tiny_runtime(tmp_path)
    store = DictStore()
    pipe = Pipeline([rt], store)
    recs = series_records("a", VALUES)
    for i, r in enumerate(recs[:6]):
        pipe.ingest([r], SourceRef(topic="t", partition=0, offset=1000 + i))
    saved = KeyState.from_bytes(store.states[("tiny", "a")].to_bytes())
    assert saved.to_bytes()[:4] == b"SDK3" and saved.last_source != 0
    store.states[("tiny", "a")] = saved
    offset = source.offset or 0
    moved = [pipe.ingest([r], source.model_copy(update={"offset": offset + i}))
             for i, r in enumerate(recs[6:])]
    assert [len(p) for p in moved] == [1] * 6 and saved.window.count == 12
    # and replays within the new source are recognised again
    assert pipe.ingest([recs[-1]], source.model_copy(update={"offset": offset + 5})) == []


def test_table_store_writes_touched_states_to_the_source_partition_on_flush(
    tmp_path: Path,
) -> None:
    table = MemoryTable()
    store = TableStore(table)
    pipe = Pipeline([tiny_runtime(tmp_path)], store)
    for i, r in enumerate(series_records("a", VALUES[:5])):
        pipe.ingest([r], SourceRef(topic="t", partition=3, offset=i))
    assert table.changelog == []  # nothing persisted before the batch's output is delivered
    assert store.flush() == 1
    assert [(p, k) for p, k, _ in table.changelog] == [(3, table_key("tiny", "a"))]
    store.forget()  # after a rebalance the state is read back from the table
    state = store.get("tiny", "a")
    assert state is not None and state.window.count == 5
    assert np.isfinite(state.detector.mean)
