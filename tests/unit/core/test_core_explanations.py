"""Top contributing cells: the one selection behind events, batch rows and explanations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_detector.core.explanations import top_cells, top_cells_rows, top_contributors

FEATURES = ["a", "b", "c", "d", "e", "f"]
# few distinct values, so equal errors (ties at the top-k boundary) are common
ERROR = st.one_of(st.sampled_from([0.0, 0.5, 1.0, 2.5]), st.floats(0.0, 2.0**100, width=32))


def test_top_contributors_order_and_offsets() -> None:
    errors = np.array([[0.0, 0.3], [0.9, 0.1], [0.2, 0.3]])  # rows: oldest .. newest
    top = top_contributors(errors, ["a", "b"], k=3)
    assert [(c.name, c.index, c.time_offset, c.error) for c in top] == [
        ("a", 0, 1, pytest.approx(0.9)),
        ("b", 1, 0, pytest.approx(0.3)),  # tie with the oldest 0.3: newest first
        ("b", 1, 2, pytest.approx(0.3)),
    ]
    assert len(top_contributors(errors, ["a", "b"], k=50)) == 6
    assert top_contributors(errors, ["a", "b"], k=0) == []
    with pytest.raises(ValueError, match="errors must be"):
        top_contributors(errors, ["a"], k=1)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 6), st.integers(1, 30), st.integers(-2, 10), st.data())
def test_top_cells_are_the_k_largest_errors_in_order(width: int, window: int, k: int,
                                                     data: st.DataObject) -> None:
    values = data.draw(st.lists(ERROR, min_size=width * window, max_size=width * window))
    errors = np.asarray(values, np.float32).reshape(window, width)
    cells = top_cells(errors, width, k)
    want = sorted(errors.astype(np.float64).ravel().tolist(), reverse=True)[:max(k, 0)]
    assert [error for _, _, error in cells] == want
    assert len({(index, offset) for index, offset, _ in cells}) == len(cells)
    for index, offset, error in cells:
        assert errors[window - 1 - offset, index] == error
    ordered = sorted(cells, key=lambda c: (-c[2], c[1], c[0]))  # newest first among ties
    assert cells == ordered
    named = [(c.index, c.time_offset, c.error, c.name)
             for c in top_contributors(errors, FEATURES[:width], k)]
    assert named == [(i, o, e, FEATURES[i]) for i, o, e in cells]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4), st.integers(1, 20), st.integers(1, 12), st.integers(-1, 8),
       st.data())
def test_top_cells_rows_are_top_cells_of_each_window(
    width: int, window: int, batch: int, k: int, data: st.DataObject
) -> None:
    """The pipeline's one vectorised argpartition picks what one call per window picks."""
    size = batch * window * width
    values = data.draw(st.lists(ERROR, min_size=size, max_size=size))
    errors = np.asarray(values, np.float32).reshape(batch, window, width)
    rows = data.draw(st.lists(st.integers(0, batch - 1), max_size=batch, unique=True))
    got = top_cells_rows(errors, rows, width, k)
    assert got == [top_cells(errors[r], width, k) for r in rows]


def test_a_wrong_width_is_rejected_alike_by_all_three() -> None:
    errors = np.zeros((2, 3, 2), np.float32)
    messages = set()
    for call in (lambda: top_contributors(errors[0], ["x"], 5),
                 lambda: top_cells(errors[0], 1, 5),
                 lambda: top_cells_rows(errors, [0], 1)):
        with pytest.raises(ValueError, match="errors must be") as raised:
            call()
        messages.add(str(raised.value))
    assert messages == {"errors must be (window, 1), got (3, 2)"}
