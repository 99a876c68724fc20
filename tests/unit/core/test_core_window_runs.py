"""WindowState.extend_run: a run of records windowed at once equals pushing them one by one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_detector.core.windowing import WindowState
from stream_detector.core.windows import Window, WindowRun


def _pushed(state: WindowState, values: np.ndarray, ts: list[int], texts: list[str],
            flags: list[int]) -> list[Window]:
    out = [state.push(values[i], ts[i], texts[i], flags=flags[i]) for i in range(len(values))]
    return [w for w in out if w is not None]


def _same(run: WindowRun, windows: list[Window]) -> None:
    assert len(run) == len(windows)
    for i, want in enumerate(windows):
        got = run.window(i)
        assert np.array_equal(got.values, want.values) and got.values.dtype == np.float32
        assert got[1:] == want[1:]


@settings(max_examples=300, deadline=None)
@given(
    window=st.integers(1, 9), features=st.integers(1, 3),
    stride=st.one_of(st.integers(1, 5), st.sampled_from([40, 100])),  # 40+: runs end none
    chunks=st.lists(st.integers(0, 30), min_size=1, max_size=6),
    seed=st.integers(0, 2**16), flagged=st.sampled_from([0.3, 0.02]),
)
def test_extend_run_equals_push_record_by_record(
    window: int, stride: int, features: int, chunks: list[int], seed: int, flagged: float
) -> None:
    # records flagged late, repeated, skewed, imputed, gap (any mix), at any place of a
    # run or of the held window; rarely (0.02): whole runs without a flag, while flags of
    # earlier runs are still inside the window (the no-new-flag fast path)
    rng = np.random.default_rng(seed)
    by_run, by_push = WindowState(window, features, stride), WindowState(window, features, stride)
    done = 0
    for n in chunks:
        values = rng.normal(size=(n, features)).astype(np.float32)
        ts = (np.arange(done, done + n) - rng.integers(0, 3, n) * (rng.random(n) < 0.2)).tolist()
        texts = [f"t{done + i}" for i in range(n)]
        flags = (rng.integers(0, 32, n) * (rng.random(n) < flagged)).tolist()
        _same(by_run.extend_run(values, ts, texts, flags),
              _pushed(by_push, values, ts, texts, flags))
        assert by_run.to_bytes() == by_push.to_bytes()  # same state, ring included
        done += n


def test_long_run_takes_the_vector_path_and_keeps_restorable_state() -> None:
    # window=3, stride=2; 10 records in one run after 2 held ones
    #   held r0 r1 | r2 .......... r11
    #   windows end at r2, r4, r6, r8, r10
    state = WindowState(3, 1, 2)
    state.extend_run(np.array([[0.0], [1.0]], np.float32), [0, 1], ["t0", "t1"], [0, 0])
    run = state.extend_run(np.arange(2.0, 12.0, dtype=np.float32).reshape(-1, 1),
                           list(range(2, 12)), [f"t{i}" for i in range(2, 12)], [0] * 10)
    assert [w.ravel().tolist() for w in run.values] == [
        [0.0, 1.0, 2.0], [2.0, 3.0, 4.0], [4.0, 5.0, 6.0], [6.0, 7.0, 8.0], [8.0, 9.0, 10.0]]
    windows = [run.window(i) for i in range(len(run))]
    assert [w.start_text for w in windows] == ["t0", "t2", "t4", "t6", "t8"]
    assert [w.seq for w in windows] == [3, 5, 7, 9, 11]
    back = WindowState.from_bytes(state.to_bytes())
    nxt = back.push([12.0], 12, "t12")
    assert nxt is not None and nxt.values.ravel().tolist() == [10.0, 11.0, 12.0]


def test_extend_run_rejects_a_wrong_shape() -> None:
    with pytest.raises(ValueError, match="expected"):
        WindowState(3, 2).extend_run(np.zeros((4, 3), np.float32), [0] * 4, [""] * 4, [0] * 4)
    with pytest.raises(ValueError, match="one timestamp"):
        WindowState(3, 1).extend_run(np.zeros((4, 1), np.float32), [0] * 3, [""] * 4, [0] * 4)
