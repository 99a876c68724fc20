"""Key state with the NPLM sample ring: exact round trips, old states, restarts mid-stream."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hybrid_fixtures import event_records, runtime_of

from schemas.events import AnomalyEvent, SourceRef
from stream_detector.core.hybrid import SampleRing
from stream_detector.core.key_state import DictStore, KeyState
from stream_detector.core.pipeline import Pipeline
from stream_detector.core.windowing import WindowState


def filled_ring(capacity: int, pushed: int) -> SampleRing:
    ring = SampleRing(capacity, 2)
    for i in range(pushed):
        ring.push([float(i), -float(i)], f"t{i}")
    return ring


@pytest.mark.parametrize("pushed", [0, 3, 5, 12])
def test_sample_ring_round_trips_oldest_first(pushed: int) -> None:
    ring = filled_ring(5, pushed)
    ring.last_p = 0.25 if pushed else math.nan
    back = SampleRing.from_bytes(ring.to_bytes())
    held = list(range(max(0, pushed - 5), pushed))
    assert back.sample()[:, 0].tolist() == [float(i) for i in held]
    assert back.oldest_text() == (f"t{held[0]}" if held else "")
    assert back.count == pushed and (back.last_p == 0.25 or math.isnan(back.last_p))
    back.push([99.0, 0.0], "new")  # the restored ring keeps overwriting the oldest
    ring.push([99.0, 0.0], "new")
    np.testing.assert_array_equal(back.sample(), ring.sample())


def test_key_state_with_a_ring_round_trips_and_old_states_still_load() -> None:
    window = WindowState(1, 3, 1)
    window.push([1.0, 2.0, 3.0], 7, "2026-01-01T00:00:00")
    plain = KeyState("2", window, last_position=41)
    assert plain.to_bytes()[:4] == b"SDK1"  # no ring: the old layout, readable by old workers
    assert KeyState.from_bytes(plain.to_bytes()).sample is None
    hybrid = KeyState("2", window, last_position=41, sample=filled_ring(4, 6))
    blob = hybrid.to_bytes()
    back = KeyState.from_bytes(blob)
    assert blob[:4] == b"SDK2" and back.to_bytes() == blob
    assert back.sample is not None and back.sample.count == 6
    with pytest.raises(ValueError):
        KeyState.from_bytes(blob[:-3])
    with pytest.raises(ValueError):
        SampleRing.from_bytes(b"SDS9" + blob[4:])


def _events(pipeline: Pipeline, records: list[object], offset: int) -> list[AnomalyEvent]:
    pending = pipeline.ingest(records, SourceRef(topic="t", partition=0, offset=offset))  # type: ignore[arg-type]
    scored = pipeline.decide(pending, Pipeline.score(pending), detected_at="2026-01-01T00:00:00Z")
    return [s.event for s in scored if s.event is not None]


def test_a_restart_from_serialised_states_changes_no_event(hybrid_dir: Path) -> None:
    rt = runtime_of(hybrid_dir)
    records = event_records("det", 700, 0.2, seed=5)
    one = Pipeline([rt], DictStore())
    straight = _events(one, records[:333], 0) + _events(one, records[333:], 1)
    assert any(e.p_value is not None and e.p_value < 0.01 for e in straight)

    first = Pipeline([rt], DictStore())
    before = _events(first, records[:333], 0)
    restored = DictStore()
    for (model, key), state in first.store.states.items():  # type: ignore[attr-defined]
        restored.states[(model, key)] = KeyState.from_bytes(state.to_bytes())
    after = _events(Pipeline([rt], restored), records[333:], 1)
    assert [e.model_dump() for e in before + after] == [e.model_dump() for e in straight]


def test_ring_counts_the_ae_stage_windows_inside_the_span() -> None:
    # timeline (capacity 3): r0 x r1 x x r2 r3 x   (r: kept row, x: taken by the AE stage)
    ring = SampleRing(3, 1)
    for step in "r x r x x r r x".split():
        if step == "r":
            ring.push([1.0], f"t{ring.count}")
        else:
            ring.skip()
    # the sample is r1 r2 r3: the x x between r1 and r2 and the pending x count; the x
    # before r1 lies before the span's oldest row
    assert ring.flagged() == 3 and ring.pending == 1
    back = SampleRing.from_bytes(ring.to_bytes())
    assert back.flagged() == 3 and back.pending == 1 and back.to_bytes()[:4] == b"SDS2"
    back.push([2.0], "t4")  # r4: the span is r2 r3 r4, with the one x before r4
    ring.push([2.0], "t4")
    assert back.flagged() == ring.flagged() == 1


def test_a_ring_written_before_the_counts_still_loads() -> None:
    import struct

    rows = np.array([[1.0], [2.0]], dtype="<f4").tobytes()
    text = b"a\nb"
    old = struct.pack("<4sIIqdI", b"SDS1", 4, 1, 2, 0.5, len(text)) + rows + text
    ring = SampleRing.from_bytes(old)
    assert ring.sample()[:, 0].tolist() == [1.0, 2.0] and ring.oldest_text() == "a"
    assert ring.flagged() == 0 and ring.last_p == 0.5
