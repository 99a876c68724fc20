"""WindowRows: windows ingest writes into shared rows; a batch of runs written back to back
is one slice with exactly their values, anything else is refused (and joined), and the
scoring stage gives the same scores either way without changing the runs' windows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from model_fixtures import window_mean_model, write_registry_model

from schemas.events import SourceRef
from schemas.records import parse_message
from stream_detector.core.batching import RowBlock, WindowRows
from stream_detector.core.key_state import DictStore
from stream_detector.core.model_runtime import ModelRuntime, PendingRun
from stream_detector.core.pipeline import Pipeline
from stream_detector.core.registry import load_model
from stream_detector.core.windowing import WindowState
from stream_detector.core.windows import WindowRun

WINDOW, FEATURES = 3, 2


class Run:
    """What WindowRows needs of a pending run."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        self.block: RowBlock | None = None
        self.slot = -1


def _meta(run: WindowRun) -> list[tuple[Any, ...]]:
    """Each window's start/end times and texts, late, seq and flags."""
    return [tuple(run.window(i))[1:] for i in range(len(run))]


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(st.sampled_from([1, 1, 1, 1, 0, 2, 5, 8, 12]), min_size=1, max_size=12),
       block_rows=st.integers(1, 12), seed=st.integers(0, 2**16),
       picks=st.lists(st.integers(0, 40), max_size=8), start=st.integers(0, 20),
       length=st.integers(1, 20))
def test_batch_is_exactly_the_runs_values_or_refused(
    chunks: list[int], block_rows: int, seed: int, picks: list[int], start: int, length: int,
) -> None:
    rng = np.random.default_rng(seed)
    rows = WindowRows(WINDOW, FEATURES, block_rows)
    into, plain = WindowState(WINDOW, FEATURES), WindowState(WINDOW, FEATURES)
    runs: list[Run] = []
    t = 0
    for n in chunks:  # 1: the one-record path, >= 8: the vector path, between: push
        values = rng.normal(size=(n, FEATURES)).astype(np.float32)
        ts, texts = list(range(t, t + n)), [f"t{i}" for i in range(t, t + n)]
        t += n
        got = into.extend_run(values, ts, texts, [0] * n, rows=rows)
        want = plain.extend_run(values, ts, texts, [0] * n)
        np.testing.assert_array_equal(got.values, want.values)  # same windows
        assert _meta(got) == _meta(want)
        if len(got):
            run = Run(got.values)
            rows.place(run)
            assert run.block is not None  # every path writes its windows into the rows
            runs.append(run)
    cut = start % max(1, len(runs) - 1)
    candidates = [runs[start : start + length], [runs[i % len(runs)] for i in picks if runs],
                  runs[::-1], runs, runs[:cut] + runs[cut + 1 :],  # one left out
                  runs[:cut] + runs[cut + 1 : cut + 2] + runs[cut : cut + 1] + runs[cut + 2 :]]
    for sub in candidates:
        if not sub:
            continue
        batch = WindowRows.batch(sub)
        if batch is not None:  # exactly the runs' values, in order
            np.testing.assert_array_equal(batch, np.concatenate([r.values for r in sub]))
            if len({id(r.block) for r in sub}) == 1 and len({id(r) for r in sub}) == len(sub):
                assert all(np.shares_memory(batch, r.values) for r in sub)  # a slice
    placed = [r for r in runs if r.block is not None]
    if placed and all(r.block is placed[0].block for r in placed) and len(placed) == len(
            placed[0].block.views) and placed[0].slot == 0:
        assert WindowRows.batch(placed) is not None  # every take of one block, in order


def test_one_record_runs_back_to_back_are_one_slice_and_gaps_are_refused() -> None:
    rows = WindowRows(WINDOW, 1, block_rows=4)
    states = [WindowState(WINDOW, 1) for _ in range(6)]
    for s in states:
        s.extend_run(np.zeros((WINDOW - 1, 1), np.float32), [0, 1], ["a", "b"], [0, 0])
    runs = []
    for i, s in enumerate(states):
        r = Run(s.extend_run(np.full((1, 1), i, np.float32), [2], ["c"], [0], rows=rows).values)
        rows.place(r)
        runs.append(r)
    first = WindowRows.batch(runs[:4])  # block 1 holds rows of runs 0-3
    assert first is not None and first[:, -1, 0].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert WindowRows.batch(runs[4:]) is not None  # block 2
    across = WindowRows.batch(runs[2:6])  # the end of block 1, then block 2: joined
    assert across is not None and across[:, -1, 0].tolist() == [2.0, 3.0, 4.0, 5.0]
    assert WindowRows.batch(runs[2:3] + runs[4:6]) is None  # a gap before the next block
    assert WindowRows.batch(runs[3:4] + runs[5:6]) is None  # a gap after the block start
    assert WindowRows.batch([runs[0], runs[2]]) is None  # a gap
    assert WindowRows.batch([runs[1], runs[0]]) is None  # out of order
    rows.take(1)  # a take nobody places: the next run is not slot-adjacent to run 5
    late = Run(np.zeros((1, WINDOW, 1), np.float32))
    rows.place(late)  # not the open view: stays unplaced
    assert late.block is None and WindowRows.batch([late]) is None


def test_blocks_of_two_rows_never_continue_each_other() -> None:
    """Each model writes its own rows: model a's last take then model b's first (slot 0 of
    its first block) look like one block going on at the start of the next, but are not."""
    a, b = WindowRows(WINDOW, 1, block_rows=2), WindowRows(WINDOW, 1, block_rows=2)
    runs = []
    for rows, value in ((a, 0.0), (a, 1.0), (b, 2.0), (a, 3.0)):
        run = Run(rows.take(1))
        run.values[:] = value
        rows.place(run)
        runs.append(run)
    assert WindowRows.batch(runs[:2]) is not None
    assert WindowRows.batch(runs[1:3]) is None  # a's block, then b's: two models
    assert WindowRows.batch(runs[2:3]) is not None
    across = WindowRows.batch([runs[1], runs[3]])  # a's first block, then its second
    assert across is not None and across[:, 0, 0].tolist() == [1.0, 3.0]


def _runtime(tmp_path: Path, name: str = "m", serves: dict[str, Any] | None = None,
             ) -> ModelRuntime:
    scaler = {"method": "standard", "per_key": False,
              "params": {"*": {"center": [3.0], "scale": [2.0]}}}
    model_dir = write_registry_model(tmp_path / name, window_mean_model(4, 1), window=4,
                                     features=["value"], scaler=scaler, threshold=1e9,
                                     name=name, serves=serves)
    return ModelRuntime(load_model(model_dir, preference="cpu"), lambda key: None)  # type: ignore[arg-type,return-value]


def _message(key: str, value: float, second: int) -> list[Any]:
    return parse_message(json.dumps({"kind": "series", "series": key, "value": value,
                                     "timestamp": f"2026-01-01T00:00:{second:02d}"}).encode())


def test_stage_scores_the_slice_as_it_scores_the_join_and_leaves_windows_as_they_were(
    tmp_path: Path,
) -> None:
    rt = _runtime(tmp_path)
    pipeline = Pipeline([rt], DictStore())
    rng = np.random.default_rng(3)
    pending: list[PendingRun] = []
    for second in range(8):  # 5 keys, one record a message; windows complete from second 3
        for k in range(5):
            msg = _message(f"k{k}", float(rng.normal(10, 3)), second)
            pending += pipeline.ingest(msg, SourceRef(topic="t", partition=0,
                                                      offset=second * 5 + k))
    assert len(pending) == 25 and all(p.block is not None for p in pending)
    assert WindowRows.batch(pending) is not None  # written back to back: one slice
    before = [p.values.copy() for p in pending]
    sliced = Pipeline.score(pending)[0]
    joined = Pipeline.score(pending[::2] + pending[1::2])[0]  # not in order: joined
    order = list(range(0, 25, 2)) + list(range(1, 25, 2))
    np.testing.assert_array_equal(sliced.scores[order], joined.scores)
    np.testing.assert_array_equal(sliced.errors[order], joined.errors)
    for p, b in zip(pending, before, strict=True):  # scaled into a new array, not in place
        np.testing.assert_array_equal(p.values, b)
    scaled = (np.concatenate(before) - np.float32(3.0)) / np.float32(2.0)
    mean = scaled.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(sliced.scores, ((scaled - mean) ** 2).mean(axis=(1, 2)),
                               rtol=1e-5)


def test_blocks_are_sized_in_bytes() -> None:
    """About 1 MiB a block whatever the window: 5,242 windows of 50 x 1, one of 2,048 x 1,024
    (rows of 1,024 windows that large would be 8 GiB)."""
    assert WindowRows(50, 1).block.values.shape == (5242, 50, 1)
    big = WindowRows(2048, 1024)
    assert big.block.values.shape == (1, 2048, 1024)
    big.take(1)
    assert len(big.take(3)) == 3 and big.block.values.shape[0] == 3  # a long run: its own


def test_a_batch_of_two_models_runs_is_scored_per_model(tmp_path: Path) -> None:
    """Both models' first windows in one batch (each the first take of its rows): one score
    batch per model, each its own runs' scores (it once came back as one batch of both)."""
    a = _runtime(tmp_path, "a", {"keys": ["a0", "a1"]})
    b = _runtime(tmp_path, "b", {"keys": ["b0"]})
    pipeline = Pipeline([a, b], DictStore())
    rng = np.random.default_rng(5)
    pending: list[PendingRun] = []
    for key in ("a0", "a1", "b0"):  # a's runs back to back, then b's from its rows' start
        for second in range(6):
            msg = _message(key, float(rng.normal(10, 3)), second)
            pending += pipeline.ingest(msg, SourceRef(topic="t", partition=0, offset=second))
    batches = Pipeline.score(pending)
    assert [len(batch.scores) for batch in batches] == [6, 3]  # a's runs, then b's
    for batch, model in zip(batches, (a, b), strict=True):
        own = [p for p in pending if p.model is model]
        alone = Pipeline.score(own)
        assert len(alone) == 1
        np.testing.assert_array_equal(batch.scores, alone[0].scores)
