"""Windows as values: one window, the windows a run of records completed, every window of a
series at once (pure).

A window is ``window`` consecutive records of one key, ``(window, features)`` float32 in
original units, oldest row first. :class:`~stream_detector.core.windowing.WindowState` (a
key's ring buffer, online) emits them record by record or run by run; :func:`sliding_windows`
(offline: batch scoring, threshold calibration) cuts the same windows from a whole series.
Window ``i`` holds records ``i*stride .. i*stride + window - 1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from schemas.records import MAX_FEATURES, MAX_WINDOW_LENGTH

__all__ = ["Window", "WindowRun", "check_bounds", "sliding_windows"]


class Window(NamedTuple):
    """One complete window of a key, ready to scale and score.

    ``values`` is ``(window, features)`` float32 in original units, oldest row first;
    ``seq`` is how many records of the key had arrived when it completed.
    """

    values: npt.NDArray[np.float32]
    start_ns: int
    end_ns: int
    start_text: str
    end_text: str
    late: bool
    seq: int
    flags: int = 0  # timing flags (stream_detector.core.timing) of the records it holds


class WindowRun(NamedTuple):
    """The windows that a run of records of one key completed, as columns.

    ``values`` is ``(m, window, features)`` float32, one row per completed window in order;
    the lists hold what :class:`Window` holds, one entry per window.
    """

    values: npt.NDArray[np.float32]
    start_ns: list[int]
    end_ns: list[int]
    start_text: list[str]
    end_text: list[str]
    late: list[bool]
    seq: list[int]
    flags: list[int]

    def __len__(self) -> int:  # windows, not fields
        return len(self.seq)

    def window(self, i: int) -> Window:
        """Window ``i`` of the run."""
        return Window(self.values[i], self.start_ns[i], self.end_ns[i], self.start_text[i],
                      self.end_text[i], self.late[i], self.seq[i], self.flags[i])

    @classmethod
    def of(cls, windows: Sequence[Window], features: int, length: int,
           into: npt.NDArray[np.float32] | None = None) -> WindowRun:
        """The run holding ``windows`` (each ``(length, features)``); their values are
        copied into ``into`` ``(len(windows), length, features)`` when given."""
        if into is not None:
            values = np.stack([w.values for w in windows], out=into)
        elif len(windows) == 1:
            values = windows[0].values[None]  # a view: one window needs no copy
        elif windows:
            values = np.stack([w.values for w in windows])
        else:
            values = np.empty((0, length, features), dtype=np.float32)
        return cls(values, [w.start_ns for w in windows], [w.end_ns for w in windows],
                   [w.start_text for w in windows], [w.end_text for w in windows],
                   [w.late for w in windows], [w.seq for w in windows],
                   [w.flags for w in windows])


def sliding_windows(values: npt.ArrayLike, window: int, stride: int = 1) -> npt.NDArray[np.float32]:
    """Every window :class:`WindowState` would emit for ``values`` ``(n, features)``, at once.

    The offline path (batch scoring, threshold calibration) uses this so its windows are
    exactly the worker's: window ``i`` ends at record ``window - 1 + i * stride``.
    Returns a read-only view ``(m, window, features)`` (no copy) when ``values`` is float32.

    >>> sliding_windows(np.arange(6.0).reshape(6, 1), 3, 2)[:, :, 0].tolist()
    [[0.0, 1.0, 2.0], [2.0, 3.0, 4.0]]
    """
    x = np.asarray(values, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"values must be (n, features), got shape {x.shape}")
    check_bounds(window, max(1, x.shape[1]), stride)
    if len(x) < window:
        return np.empty((0, window, x.shape[1]), dtype=np.float32)
    view = np.lib.stride_tricks.sliding_window_view(x, window, axis=0)  # (n-w+1, f, w)
    return view[::stride].transpose(0, 2, 1)


def check_bounds(window: int, features: int, stride: int) -> None:
    """Refuse a window, feature count or stride outside the input bounds.

    Raises
    ------
    ValueError
        ``window`` or ``stride`` is not in ``1..MAX_WINDOW_LENGTH``, or ``features`` not in
        ``1..MAX_FEATURES`` (:mod:`schemas.records`).
    """
    if not 1 <= window <= MAX_WINDOW_LENGTH:
        raise ValueError(f"window must be in 1..{MAX_WINDOW_LENGTH}, got {window}")
    if not 1 <= features <= MAX_FEATURES:
        raise ValueError(f"features must be in 1..{MAX_FEATURES}, got {features}")
    if not 1 <= stride <= MAX_WINDOW_LENGTH:
        raise ValueError(f"stride must be in 1..{MAX_WINDOW_LENGTH}, got {stride}")
