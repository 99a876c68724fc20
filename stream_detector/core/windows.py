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
from stream_detector.core.timing import LATE

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


class WindowRun:
    """The windows that a run of records of one key completed, as columns.

    ``values`` is ``(m, window, features)`` float32, one row per completed window in order;
    ``flags`` holds each window's timing flags, ``len(run)`` is ``m``. The windows' first
    and last records (times, texts) and their ``seq`` and ``late`` are read from the run's
    records only when asked for (:meth:`window`, or the list properties): the worker scores
    and decides a message's windows without those lists, which only an alert's event needs
    (building them took ~5% of a worker's instructions at 100 records a message).

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
    late
        Each window's late flag; None: the late bit of its ``flags``
        (:data:`~stream_detector.core.timing.LATE`).
    """

    __slots__ = ("values", "flags", "_seq", "_held", "_records", "_first", "_step", "_span",
                 "_late")

    def __init__(
        self, values: npt.NDArray[np.float32], seq: Sequence[int], flags: Sequence[int],
        records: tuple[Sequence[int], Sequence[str]], first: int = 0, step: int = 1,
        span: int = 1, held: tuple[Sequence[int], Sequence[str]] = ((), ()),
        late: Sequence[bool] | None = None,
    ) -> None:
        self.values, self.flags, self._seq = values, flags, seq
        self._records, self._held = records, held
        self._first, self._step, self._span, self._late = first, step, span, late

    @classmethod
    def of(cls, windows: Sequence[Window], features: int, length: int,
           into: npt.NDArray[np.float32] | None = None,
           values: npt.NDArray[np.float32] | None = None) -> WindowRun:
        """The run holding ``windows`` (each ``(length, features)``); their values are
        copied into ``into`` ``(len(windows), length, features)`` when given, or are
        ``values`` (already that array) when given."""
        if values is not None:
            pass
        elif into is not None:
            values = np.stack([w.values for w in windows], out=into)
        elif len(windows) == 1:
            values = windows[0].values[None]  # a view: one window needs no copy
        elif windows:
            values = np.stack([w.values for w in windows])
        else:
            values = np.empty((0, length, features), dtype=np.float32)
        # record 2i is window i's first, 2i + 1 its last
        times = [t for w in windows for t in (w.start_ns, w.end_ns)]
        texts = [t for w in windows for t in (w.start_text, w.end_text)]
        return cls(values, [w.seq for w in windows], [w.flags for w in windows],
                   (times, texts), 0, 2, 2, late=[w.late for w in windows])

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
        late = bool(flags & LATE) if self._late is None else self._late[i]
        return Window(self.values[i], start, end, start_text, end_text, late, self._seq[i],
                      flags)

    def _ends(self, last: bool) -> list[tuple[int, str]]:
        off = self._span - 1 if last else 0
        return [self._record(self._first + i * self._step + off) for i in range(len(self))]

    @property
    def start_ns(self) -> list[int]:
        """Each window's first record's time (ns)."""
        return [t for t, _ in self._ends(False)]

    @property
    def end_ns(self) -> list[int]:
        """Each window's last record's time (ns)."""
        return [t for t, _ in self._ends(True)]

    @property
    def start_text(self) -> list[str]:
        """Each window's first record's timestamp as sent."""
        return [t for _, t in self._ends(False)]

    @property
    def end_text(self) -> list[str]:
        """Each window's last record's timestamp as sent."""
        return [t for _, t in self._ends(True)]

    @property
    def seq(self) -> list[int]:
        """Each window's record count of the key when it completed."""
        return list(self._seq)

    @property
    def late(self) -> list[bool]:
        """Each window's late flag."""
        return [bool(f & LATE) for f in self.flags] if self._late is None else list(self._late)


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
