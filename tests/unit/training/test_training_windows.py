"""Sliding windows: positions, strides, views, per-key isolation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from offline_training.windows import keyed_windows, sliding_windows, stack_keyed


def test_windows_follow_the_documented_timeline() -> None:
    #   rows:  0 1 2 3 4 5 6 7    window=3, stride=2
    #   w0:   [0 1 2]             end 2
    #   w1:       [2 3 4]         end 4
    #   w2:           [4 5 6]     end 6   (row 7 waits for row 8)
    data = np.arange(16, dtype=np.float32).reshape(8, 2)
    result = sliding_windows(data, window=3, stride=2)
    assert result.windows.shape == (3, 3, 2)
    assert result.windows.dtype == np.float32
    assert result.ends.tolist() == [2, 4, 6]
    for w, end in zip(result.windows, result.ends, strict=True):
        np.testing.assert_array_equal(w, data[end - 2 : end + 1])


def test_float32_input_is_viewed_not_copied() -> None:
    data = np.random.default_rng(0).random((100, 3)).astype(np.float32)
    result = sliding_windows(data, window=10)
    assert np.shares_memory(result.windows, data)
    assert not result.windows.flags.writeable


def test_short_series_gives_no_windows_with_the_right_shape() -> None:
    result = sliding_windows(np.zeros((4, 2)), window=5)
    assert result.windows.shape == (0, 5, 2)
    assert len(result) == 0


@pytest.mark.parametrize(("window", "stride"), [(0, 1), (3, 0)])
def test_rejects_non_positive_sizes(window: int, stride: int) -> None:
    with pytest.raises(ValueError, match=">= 1"):
        sliding_windows(np.zeros(10), window, stride)


def test_rejects_three_dimensional_input() -> None:
    with pytest.raises(ValueError, match="rows, features"):
        sliding_windows(np.zeros((4, 2, 2)), 2)


@given(st.integers(1, 60), st.integers(1, 12), st.integers(1, 5))
def test_count_and_ends_for_any_sizes(rows: int, window: int, stride: int) -> None:
    result = sliding_windows(np.arange(rows, dtype=np.float32), window, stride)
    expected = max(0, (rows - window) // stride + 1)
    assert len(result) == expected == result.windows.shape[0]
    if expected:
        assert result.windows[:, -1, 0].tolist() == result.ends.astype(np.float32).tolist()
        assert int(result.ends[-1]) <= rows - 1


def test_keyed_windows_never_mix_keys() -> None:
    keyed = keyed_windows({"a": np.full(5, 1.0), "b": np.full(4, 2.0)}, window=3)
    assert np.all(keyed["a"].windows == 1.0)
    assert np.all(keyed["b"].windows == 2.0)
    windows, keys, ends = stack_keyed(keyed)
    assert windows.shape == (5, 3, 1)
    assert keys.tolist() == ["a", "a", "a", "b", "b"]
    assert ends.tolist() == [2, 3, 4, 2, 3]


def test_stack_keyed_fails_when_no_key_has_a_window() -> None:
    with pytest.raises(ValueError, match="enough rows"):
        stack_keyed(keyed_windows({"a": np.zeros(2)}, window=3))
