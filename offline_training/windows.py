"""Sliding windows over (rows, features) arrays, as views rather than copies.

Window ``i`` covers rows ``i*stride .. i*stride + window - 1`` and is labelled by its last
row, the row at which a streaming worker that has seen that row can score it::

    rows:      0   1   2   3   4   5   6   7        window=3, stride=2
    w0:       [0   1   2]                          end 2
    w1:               [2   3   4]                  end 4
    w2:                       [4   5   6]          end 6
    row 7 starts no full window yet: it waits for row 8 (a trailing partial window is
    never emitted, online or offline).

Windows are anchored at the first row of the history; a worker must count rows from the
same origin for its windows to match these (same windows, same scores).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from stream_detector.core.windows import sliding_windows as worker_windows

__all__ = ["Windows", "sliding_windows", "keyed_windows", "stack_keyed"]


@dataclass(frozen=True)
class Windows:
    """``windows`` (num, window, features) float32, read-only view; ``ends`` (num,) int64.

    The view is read-only because its windows overlap in memory: a write through one
    would change its neighbours. ``torch.from_numpy`` warns on read-only arrays, so hand
    batches to torch as ``torch.tensor(batch)`` or ``np.ascontiguousarray(batch)``.
    """

    windows: np.ndarray
    ends: np.ndarray

    def __len__(self) -> int:
        return int(self.ends.size)


def sliding_windows(data: np.ndarray, window: int, stride: int = 1) -> Windows:
    """Slide a ``window``-row frame over ``data`` (n, features) or (n,) every ``stride`` rows.

    Only a float32 copy of ``data`` itself is made (none if it is already float32); the
    windows are strided views of it, so 1 GB of windows costs nothing until a model
    copies a batch. Call ``np.ascontiguousarray`` on a slice when a copy is wanted.

    >>> x = np.arange(8, dtype=np.float32)
    >>> w = sliding_windows(x, window=3, stride=2)
    >>> w.windows[:, :, 0].tolist()
    [[0.0, 1.0, 2.0], [2.0, 3.0, 4.0], [4.0, 5.0, 6.0]]
    >>> w.ends.tolist()
    [2, 4, 6]
    >>> sliding_windows(x, window=9).windows.shape
    (0, 9, 1)
    """
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got {window} and {stride}")
    array = np.asarray(data, dtype=np.float32)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"data must be (rows, features) or (rows,), got shape {array.shape}")
    # the worker's own windowing: offline windows are exactly the ones the worker scores
    view = worker_windows(array, window, stride)  # (num, window, features), a view
    ends = np.arange(window - 1, array.shape[0], stride, dtype=np.int64)
    return Windows(view, ends)


def keyed_windows(
    data: Mapping[str, np.ndarray], window: int, stride: int = 1
) -> dict[str, Windows]:
    """Windows per key (panel series); windows never cross from one key into another.

    >>> out = keyed_windows({"1/7": np.arange(4.0), "2/7": np.arange(2.0)}, window=3)
    >>> {k: len(v) for k, v in out.items()}
    {'1/7': 2, '2/7': 0}
    """
    return {key: sliding_windows(values, window, stride) for key, values in data.items()}


def stack_keyed(keyed: Mapping[str, Windows]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate per-key windows for training: (windows, keys (num,), ends (num,)).

    This copies, so it is the point where the memory is actually spent.

    >>> w, keys, ends = stack_keyed(keyed_windows({"a": np.arange(3.0), "b": np.arange(4.0)}, 3))
    >>> w.shape, keys.tolist(), ends.tolist()
    ((3, 3, 1), ['a', 'b', 'b'], [2, 2, 3])
    """
    parts = [w for w in keyed.values() if len(w)]
    if not parts:
        raise ValueError("no key has enough rows for one window")
    windows = np.concatenate([w.windows for w in parts])
    keys = np.concatenate([np.repeat(np.array([key]), len(w)) for key, w in keyed.items()])
    ends = np.concatenate([w.ends for w in keyed.values()])
    return windows, keys, ends
