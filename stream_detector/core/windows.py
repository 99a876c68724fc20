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
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from schemas.records import MAX_FEATURES, MAX_WINDOW_LENGTH
from stream_detector.core.timing import LATE

__all__ = ["Window", "WindowRun", "check_bounds", "sliding_windows"]

_FEW_WINDOWS: Final = 8  # up to this many, copied one by one (np.stack's Python costs more)


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


class WindowRun:
    """The windows that a run of records of one key completed, as columns.

    ``values`` is ``(m, window, features)`` float32, one row per completed window in order;
    ``flags`` holds each window's timing flags, ``len(run)`` is ``m``. The windows' first
    and last records (times, texts) are read from the run's records only when a window is
    asked for (:meth:`window`): the worker scores and decides a message's windows without
    them, and only an alert's event needs them (building them as lists for every window
    took ~5% of a worker's instructions at 100 records a message).

    Parameters
    ----------
    values, flags
        As above (``flags``: one per window).
    seq
        How many records of the key had arrived when each window completed (a ``range``
        or a list, one per window).
    records
        ``(times_ns, texts)`` of the records the windows are cut from, after ``held``:
        record ``k`` of ``held + records`` is ``held[k]`` or ``records[k - len(held)]``.
    first, step, span
        Window ``i`` holds records ``first + i * step`` to ``first + i * step + span - 1``
        of ``held + records``.

    A window's ``late`` is the late bit of its flags
    (:data:`~stream_detector.core.timing.LATE`), as :class:`WindowState` sets it.
    """

    __slots__ = ("values", "flags", "_seq", "_held", "_records", "_first", "_step", "_span")

    def __init__(
        self, values: npt.NDArray[np.float32], seq: Sequence[int], flags: Sequence[int],
        records: tuple[Sequence[int], Sequence[str]], first: int = 0, step: int = 1,
        span: int = 1, held: tuple[Sequence[int], Sequence[str]] = ((), ()),
    ) -> None:
        self.values, self.flags, self._seq = values, flags, seq
        self._records, self._held = records, held
        self._first, self._step, self._span = first, step, span

    @classmethod
    def of(cls, windows: Sequence[Window], features: int, length: int,
           into: npt.NDArray[np.float32] | None = None,
           values: npt.NDArray[np.float32] | None = None) -> WindowRun:
        """The run holding ``windows`` (each ``(length, features)``): ``values`` when given
        (already their ``(len(windows), length, features)`` array), else their values
        copied into ``into`` (that shape) when given, else stacked."""
        if values is None:
            values = _stacked(windows, features, length, into)
        # record 2i is window i's first, 2i + 1 its last
        times = [t for w in windows for t in (w.start_ns, w.end_ns)]
        texts = [t for w in windows for t in (w.start_text, w.end_text)]
        return cls(values, [w.seq for w in windows], [w.flags for w in windows],
                   (times, texts), 0, 2, 2)

    def __len__(self) -> int:  # windows, not fields
        return len(self._seq)

    def _record(self, k: int) -> tuple[int, str]:
        held = self._held
        if k < len(held[0]):
            return held[0][k], held[1][k]
        k -= len(held[0])
        return self._records[0][k], self._records[1][k]

    def window(self, i: int) -> Window:
        """Window ``i`` of the run."""
        a = self._first + i * self._step
        start, start_text = self._record(a)
        end, end_text = self._record(a + self._span - 1)
        flags = self.flags[i]
        return Window(self.values[i], start, end, start_text, end_text, bool(flags & LATE),
                      self._seq[i], flags)


def _stacked(windows: Sequence[Window], features: int, length: int,
             into: npt.NDArray[np.float32] | None) -> npt.NDArray[np.float32]:
    """The windows' values as one ``(len(windows), length, features)`` array (in ``into``
    when given; a view of the one window's values when alone)."""
    if into is None and len(windows) == 1:
        return windows[0].values[None]  # a view: one window needs no copy
    if len(windows) <= _FEW_WINDOWS:  # a few: one assignment each beats np.stack's calls
        out = np.empty((len(windows), length, features), np.float32) if into is None else into
        for k, w in enumerate(windows):
            out[k] = w.values
        return out
    return np.stack([w.values for w in windows], out=into)


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
