"""Explanations: the (feature, time step) cells of a window with the largest error (pure).

Every model family exports per-cell squared reconstruction errors ``(window, features)``
beside its score; the cells with the largest errors say what made a window anomalous. One
selection serves every caller: the worker's batch of alerts (:func:`top_cells_rows`, one
vectorised pass), a single window (:func:`top_cells`) and the named, validated
:class:`~schemas.events.Contributor` list of an event or a batch-scoring row
(:func:`top_contributors`).

Order: error descending, then newest first, then feature index. ``time_offset`` counts steps
back from the window's end (0 = the newest record). Among equal errors at the ``k``-th place,
``numpy.argpartition`` picks which cells make the cut; all three functions run the same
``argpartition`` call, so they pick the same cells.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from schemas.events import Contributor

__all__ = ["Cell", "top_cells", "top_cells_rows", "top_contributors"]

Cell = tuple[int, int, float]
"""One cell: ``(feature index, time_offset, error)``."""


def top_cells(errors: npt.ArrayLike, n_features: int, k: int = 5) -> list[Cell]:
    """The ``k`` cells of one window with the largest error, as ``(index, time_offset, error)``.

    Parameters
    ----------
    errors
        ``(window, features)`` squared reconstruction errors of one window.
    n_features
        The number of feature columns the model has.
    k
        How many cells; clipped to ``[0, window * features]``.

    Returns
    -------
    list of (int, int, float)
        Largest error first (see the module's order).

    Raises
    ------
    ValueError
        ``errors`` is not ``(window, n_features)``.

    >>> top_cells([[0.1, 0.0], [0.0, 0.9]], 2, 2)
    [(1, 0, 0.9), (0, 1, 0.1)]
    """
    e = np.asarray(errors, dtype=np.float64)
    if e.ndim != 2 or e.shape[1] != n_features:
        raise ValueError(f"errors must be (window, {n_features}), got {e.shape}")
    negated = -e.ravel()
    k = max(0, min(k, negated.size))
    if k == 0:
        return []
    top = negated.argpartition(k - 1)[:k]
    window, width = e.shape
    return _ordered(negated[top].tolist(), top.tolist(), window, width)


def top_cells_rows(
    errors: npt.NDArray[np.float32], rows: Sequence[int], n_features: int, k: int = 5
) -> list[list[Cell]]:
    """:func:`top_cells` of the windows ``rows`` of a batch ``(batch, window, features)``.

    One ``argpartition`` along the last axis runs the same selection on each row as
    :func:`top_cells` does on that window, without the per-call numpy overhead (three
    quarters of its cost for a window of 50 values).

    Raises
    ------
    ValueError
        ``errors`` is not ``(batch, window, n_features)``.

    >>> batch = np.array([[[0.1, 0.0], [0.0, 0.9]], [[0.5, 0.0], [0.0, 0.0]]], np.float32)
    >>> top_cells_rows(batch, [1], 2, 1)
    [[(0, 1, 0.5)]]
    """
    # the rows first, then float64: converting the whole batch cost O(batch) per call,
    # and the decide step calls this once per run (a 1,024-window batch: ~170 us an alert)
    picked = np.asarray(errors)[list(rows)].astype(np.float64)
    if picked.ndim != 3 or picked.shape[2] != n_features:
        raise ValueError(f"errors must be (window, {n_features}), got {picked.shape[1:]}")
    n, window, width = picked.shape
    negated = -picked.reshape(n, window * width)
    k = max(0, min(k, window * width))
    if k == 0 or n == 0:
        return [[] for _ in rows]
    top = negated.argpartition(k - 1, axis=1)[:, :k]
    # one fancy index (take_along_axis builds the same index in Python: half the call)
    values = negated[np.arange(n)[:, None], top].tolist()
    return [_ordered(v, c, window, width) for v, c in zip(values, top.tolist(), strict=True)]


def top_contributors(
    errors: npt.ArrayLike, feature_names: Sequence[str], k: int = 5
) -> list[Contributor]:
    """:func:`top_cells` as named, validated :class:`~schemas.events.Contributor` values.

    Parameters
    ----------
    errors
        ``(window, features)`` squared reconstruction errors of one window.
    feature_names
        One name per feature column.

    Returns
    -------
    list of Contributor
        Largest first; ``time_offset`` counts steps back from the window end (0 = newest).

    Raises
    ------
    ValueError
        ``errors`` is not ``(window, len(feature_names))``.
    pydantic.ValidationError
        A selected error is NaN, infinite or negative (a broken model output).

    >>> [(c.name, c.time_offset) for c in top_contributors([[0.1, 0.0], [0.0, 0.9]], "xy", 2)]
    [('y', 0), ('x', 1)]
    """
    return [
        Contributor(name=feature_names[index], index=index, time_offset=offset, error=error)
        for index, offset, error in top_cells(errors, len(feature_names), k)
    ]


def _ordered(negated: list[float], cells: list[int], window: int, width: int) -> list[Cell]:
    """Selected flat cells (with their negated errors) in the module's order."""
    # by error descending, then newest first, then feature index (cells never tie)
    order = sorted([(v, -(i // width), i % width) for v, i in zip(negated, cells, strict=True)])
    return [(col, window - 1 + row, -v) for v, row, col in order]
