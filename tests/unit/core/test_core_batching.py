"""join_windows gives np.concatenate's array for any mix of runs; the in-place scaling
gives transform's values."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_detector.core.batching import join_windows
from stream_detector.core.scoring import ScaleTable
from stream_detector.core.windows import sliding_windows

WINDOW, FEATURES = 4, 2


def _run(rows: int, kind: str, seed: int) -> np.ndarray:
    """A run's values as the worker holds them: an owned array, a one-window view, or the
    transposed sliding view of a long run (not C-contiguous)."""
    rng = np.random.default_rng(seed)
    if kind == "sliding":
        series = rng.standard_normal((rows + WINDOW - 1, FEATURES)).astype(np.float32)
        return sliding_windows(series, WINDOW)
    if kind == "view":
        return rng.standard_normal((WINDOW, FEATURES)).astype(np.float32)[None]
    return rng.standard_normal((rows, WINDOW, FEATURES)).astype(np.float32)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["owned", "view", "sliding"]),
                          st.integers(0, 2**16)), min_size=1, max_size=12))
def test_join_equals_concatenate(spec: list[tuple[int, str, int]]) -> None:
    arrays = [_run(rows, kind, seed) for rows, kind, seed in spec]
    joined = join_windows(arrays, WINDOW, FEATURES)
    expected = np.concatenate(arrays)
    assert joined.dtype == np.float32 and joined.flags.c_contiguous and joined.flags.writeable
    assert joined.shape == expected.shape
    np.testing.assert_array_equal(joined, expected)
    joined[...] = 7.0  # a new array: the runs' values are untouched
    assert all(not np.shares_memory(joined, a) for a in arrays)


def test_join_refuses_wrong_dtype_by_falling_back() -> None:
    """A float64 run (a bug upstream) does not pass as twice the windows: the row count
    check sends it to np.concatenate, which casts it to the same values."""
    arrays = [np.ones((1, WINDOW, FEATURES), np.float32)] * 4 + [
        np.full((1, WINDOW, FEATURES), 2.0)]
    joined = join_windows(arrays, WINDOW, FEATURES)
    assert joined.shape == (5, WINDOW, FEATURES)
    assert joined[-1, 0, 0] == 2.0


@given(st.integers(0, 2**16), st.booleans(), st.sampled_from([1, FEATURES]))
def test_transform_owned_equals_transform(seed: int, log1p: bool, features: int) -> None:
    """Same float32 values as transform, with one feature (scalar operands) or several."""
    rng = np.random.default_rng(seed)
    card = {"method": "standard", "per_key": False, "transform": "log1p" if log1p else "none",
            "params": {"*": {"center": rng.standard_normal(features).tolist(),
                             "scale": (rng.random(features) + 0.1).tolist()}}}
    table = ScaleTable(card, features)
    x = (rng.standard_normal((5, WINDOW, features)) * 100).astype(np.float32)
    expected = table.transform(x.copy(), [])
    got = table.transform_owned(x, [])
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
