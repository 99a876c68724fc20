"""Per-key sliding windows: pure, compact, serialisable state.

A key's state is a :class:`WindowState`. Every pushed record lands in a ring buffer; once
``window`` records have arrived, every ``stride``-th record completes a window::

    window=3, stride=2
    record   r0  r1  r2  r3  r4  r5  r6  r7
    count     1   2   3   4   5   6   7   8
    emits             W0      W1      W2
    W0 = r0 r1 r2
    W1 =         r2 r3 r4
    W2 =                 r4 r5 r6

i.e. window ``i`` holds records ``i*stride .. i*stride + window - 1``, exactly what slicing
the whole series gives (:func:`~stream_detector.core.windows.sliding_windows`; a unit test
checks this property on random input). The windows themselves are values
(:class:`~stream_detector.core.windows.Window`, :class:`~stream_detector.core.windows.WindowRun`).

Records are taken in arrival order and never reordered: reordering would need a buffer,
and would make online windows differ from a replay of the same topic. Each record's time is
judged against the key's watermark by :mod:`stream_detector.core.timing` (late, repeated, skewed,
gap); it is kept, and every window that holds it carries its flags (``Window.flags``; a gap
flags the windows that hold the records on both sides of it), so the event's quality flags
tell the consumer.

Values are stored twice (positions ``i`` and ``i + window`` of a ``2*window`` buffer), so
the newest window is always one contiguous slice: no concatenation per emitted window.
State serialises to a small binary form (struct header + raw little-endian arrays) for
Faust's changelog table, not to JSON lists.

>>> s = WindowState(window=3, features=1, stride=2)
>>> [w.values.ravel().tolist() if w else None for w in
...  (s.push([float(i)], i) for i in range(7))]
[None, None, [0.0, 1.0, 2.0], None, [2.0, 3.0, 4.0], None, [4.0, 5.0, 6.0]]
>>> WindowState.from_bytes(s.to_bytes()).count
7
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from stream_detector.core.batching import WindowRows
from stream_detector.core.timing import (
    GAP,
    IMPUTED,
    LATE,
    REPEATED,
    SKEWED,
    TimePolicy,
    Watermark,
    observe,
)
from stream_detector.core.windows import Window, WindowRun, check_bounds

__all__ = ["WindowState"]

_MAGIC: Final = b"SDW1"
# magic, window, features, stride, count, newest_ns, last_late, late_count, text bytes
_HEADER: Final = struct.Struct("<4sIIIqqqqI")
# SDW2: the watermark's ahead run, and the last index and count of every time flag
_MAGIC2: Final = b"SDW2"
_HEADER2: Final = struct.Struct("<4sIIIqqqq5q5qI")
_NO_POLICY: Final = TimePolicy()
_VECTOR_MIN: Final = 8  # shorter runs are cheaper record by record
_BITS: Final = (LATE, REPEATED, SKEWED, IMPUTED, GAP)  # GAP last: it lies *between* records
_NO_WINDOWS: Final = WindowRun(np.empty((0, 1, 1), dtype=np.float32), [], [], ([], []))


class WindowState:
    """Sliding-window state of one key.

    Parameters
    ----------
    window
        Records per window (the model card's ``window``).
    features
        Values per record (the card's feature count).
    stride
        Records between two consecutive windows.
    """

    __slots__ = ("window", "features", "stride", "count", "clock", "counts", "_last", "_buf",
                 "_ts", "_text")

    def __init__(self, window: int, features: int, stride: int = 1) -> None:
        check_bounds(window, features, stride)
        self.window = window
        self.features = features
        self.stride = stride
        self.count = 0  # records pushed so far
        self.clock = Watermark()  # the key's event-time position (timing policy)
        self.counts = [0] * len(_BITS)  # records flagged late, repeated, skewed, imputed, gap
        self._last = [-1] * len(_BITS)  # index of the most recent record with each flag
        self._buf = np.zeros((2 * window, features), dtype=np.float32)
        self._ts: list[int] = [0] * window  # a list: scalar stores are 3x faster than numpy
        self._text: list[str] = [""] * window

    @property
    def newest_ns(self) -> int:
        """The watermark: the newest record time accepted (ns), or ``NO_TIME``."""
        return self.clock.newest_ns

    @property
    def late_count(self) -> int:
        return self.counts[0]

    def push(
        self, values: Sequence[float] | npt.NDArray[np.floating], timestamp_ns: int,
        text: str = "", policy: TimePolicy = _NO_POLICY, flags: int | None = None,
        rows: WindowRows | None = None,
    ) -> Window | None:
        """Add one record; return the window it completes, if any.

        Parameters
        ----------
        values
            The record's ``features`` values.
        timestamp_ns
            Its time (ns since the epoch); only used to flag records and to date windows:
            records are never reordered.
        text
            Its timestamp as the producer sent it, echoed in events.
        policy
            How its time is judged (:class:`~stream_detector.core.timing.TimePolicy`).
        flags
            Its timing flags when the caller already judged it with
            :func:`~stream_detector.core.timing.observe` (then ``policy`` is not used).
        rows
            Where to write the window it completes (the model's
            :class:`~stream_detector.core.batching.WindowRows`; its ``open`` is then the
            window as one row); default: a new array.
        """
        if len(values) != self.features:  # else numpy would broadcast one value to all
            raise ValueError(f"expected {self.features} values, got {len(values)}")
        w, c = self.window, self.count
        p = c % w
        buf = self._buf
        buf[p] = values
        buf[p + w] = buf[p]
        self._ts[p] = timestamp_ns
        self._text[p] = text
        if flags is None:
            flags = observe(self.clock, timestamp_ns, policy)
        if flags:
            self._mark(flags, c)
        c += 1
        self.count = c
        if c < w or (c - w) % self.stride:
            return None
        start = c % w  # ring position of the oldest record in the window
        held = self._window_flags(c)
        return Window(
            values=(self._buf[start : start + w].copy() if rows is None
                    else rows.put(self._buf[start : start + w])),
            start_ns=self._ts[start],
            end_ns=timestamp_ns,
            start_text=self._text[start],
            end_text=text,
            late=bool(held & LATE),
            seq=c,
            flags=held,
        )

    def _mark(self, flags: int, index: int) -> None:
        for i, bit in enumerate(_BITS):
            if flags & bit:
                self._last[i] = index
                self.counts[i] += 1

    def _window_flags(self, c: int) -> int:
        """Flags of the window of records ``c - window .. c - 1``.

        A gap lies before its record: the window spans it only if it also holds the
        record before (``index >= c - window + 1``).
        """
        first = c - self.window
        last = self._last
        held = 0
        for i, bit in enumerate(_BITS[:4]):
            if last[i] >= first:
                held |= bit
        if last[4] > first:
            held |= GAP
        return held

    def extend(self, values: npt.ArrayLike, timestamps_ns: Sequence[int],
               texts: Sequence[str] | None = None, policy: TimePolicy = _NO_POLICY,
               ) -> list[Window]:
        """Push records ``(n, features)`` in order; return the windows they complete."""
        rows = np.asarray(values, dtype=np.float32).reshape(-1, self.features)
        if len(timestamps_ns) != len(rows) or (texts is not None and len(texts) != len(rows)):
            raise ValueError("need one timestamp (and text) per record")
        out = []
        for i, row in enumerate(rows):
            win = self.push(row, timestamps_ns[i], texts[i] if texts is not None else "",
                            policy)
            if win is not None:
                out.append(win)
        return out

    def extend_run(
        self, values: npt.NDArray[np.float32], timestamps_ns: Sequence[int],
        texts: Sequence[str], flags: Sequence[int], rows: WindowRows | None = None,
    ) -> WindowRun:
        """Push records ``(n, features)`` already judged (``flags``: each one's timing
        flags, from :func:`~stream_detector.core.timing.observe`), as ``n`` calls of
        :meth:`push` would, and return the windows they complete as one :class:`WindowRun`.

        Long runs (a message of many records) are windowed in a few numpy operations over
        the held records and the new ones; short runs go through :meth:`push`. Both give the
        same windows and the same state (a unit test checks it on random input). With
        ``rows`` (the model's :class:`~stream_detector.core.batching.WindowRows`), the
        run's windows are written there (its ``values`` is ``rows.open``), so scoring
        finds consecutive runs as one slice.
        """
        n = len(values)
        if values.ndim != 2 or values.shape[1] != self.features:
            raise ValueError(f"expected (n, {self.features}) values, got {values.shape}")
        if not len(timestamps_ns) == len(texts) == len(flags) == n:
            raise ValueError("need one timestamp, text and flags value per record")
        if n == 1:  # one record a message: no lists to build
            win = self.push(values[0], timestamps_ns[0], texts[0], flags=flags[0], rows=rows)
            if win is None:
                return _NO_WINDOWS
            one = win.values[None] if rows is None or rows.open is None else rows.open
            return WindowRun.of([win], self.features, self.window, values=one)
        if n < _VECTOR_MIN:
            out = [self.push(values[i], timestamps_ns[i], texts[i], flags=flags[i])
                   for i in range(n)]
            done = [w for w in out if w is not None]
            into = rows.take(len(done)) if rows is not None and done else None
            return WindowRun.of(done, self.features, self.window, into)
        return self._extend_vector(values, list(timestamps_ns), texts, flags, rows)

    def _extend_vector(self, values: npt.NDArray[np.float32], ts: list[int],
                       texts: Sequence[str], flags: Sequence[int],
                       into: WindowRows | None = None) -> WindowRun:
        #   held (h = filled)      new (n)
        #   [ ..........][ r0 r1 ... r(n-1) ]      global index of held[0] = count - h
        w, n, c0, step = self.window, len(values), self.count, self.stride
        h, oldest = (w, c0 % w) if c0 >= w else (c0, 0)
        rows = np.concatenate((self._buf[oldest : oldest + h], values), dtype=np.float32)
        held = self._held_lists(h, oldest)  # the windows' first records may be there
        # windows end at global index g when g + 1 >= w and (g + 1 - w) % stride == 0
        first_end = max(c0, w - 1)
        first_end += (-(first_end + 1 - w)) % step
        stop = c0 + n
        m = len(range(first_end, stop, step))
        s0 = first_end + 1 - w - (c0 - h)  # the first window's first row in ``rows``
        if not m:  # no window ends in this run
            win_values = np.empty((0, w, self.features), dtype=np.float32)
        else:  # window k: rows s0 + k * stride .. + w - 1, a strided view of rows, copied
            at = rows.strides[0]  # (m, w, f) into a new array or the model's window rows
            view = np.ndarray((m, w, self.features), np.float32, rows, s0 * at,
                              (at * step, at, rows.strides[1]))
            win_values = view.copy() if into is None else into.take(m)
            if into is not None:
                win_values[...] = view
        lo = first_end + 1 - w  # the first window's first record (global index)
        window_flags: list[int] | None
        if any(flags):
            window_flags = self._run_flags(np.asarray(flags, dtype=np.int64),
                                           np.arange(first_end, stop, step))
        else:
            window_flags = self._held_flags(lo, m)
        # window k: records s0 + k * step .. + w - 1 of held + new (times, texts: on demand)
        run = WindowRun(win_values, range(first_end + 1, stop + 1, step),
                        window_flags if window_flags is not None else [0] * m,
                        (ts, texts), s0, step, w, held)
        self._store_tail(values, ts, texts)
        self.count = stop
        return run

    def _held_lists(self, h: int, oldest: int) -> tuple[list[int], list[str]]:
        """The held records' times and texts, oldest first (new lists)."""
        if oldest:
            return (self._ts[oldest:] + self._ts[:oldest],
                    self._text[oldest:] + self._text[:oldest])
        return self._ts[:h], self._text[:h]

    def _run_flags(self, flags: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]
                   ) -> list[int]:
        """Each window's flags (as :meth:`_window_flags`), updating the flag bookkeeping
        for the new records ``count .. count + n - 1``."""
        c0, m = self.count, len(ends)
        first = ends + 1 - self.window
        if not flags.any():  # the usual run: no new flag, only older ones may still be held
            held = self._held_flags(int(first[0]), m) if m else None
            return held if held is not None else [0] * m
        glob = np.arange(c0, c0 + len(flags))
        out = np.zeros(m, dtype=np.int64)
        for i, bit in enumerate(_BITS):
            has = (flags & bit) != 0
            last = np.maximum.accumulate(np.maximum(np.where(has, glob, -1), self._last[i]))
            at_end = last[ends - c0]
            # a gap lies before its record: the window spans it only past its first record
            out |= np.where(at_end > first if bit == GAP else at_end >= first, bit, 0)
            self._last[i] = int(last[-1])
            self.counts[i] += int(has.sum())
        return [int(f) for f in out.tolist()]

    def _held_flags(self, lo: int, m: int) -> list[int] | None:
        """:meth:`_run_flags` for new records without flags, for the ``m`` windows whose
        first records are ``lo``, ``lo + stride``, ...: each holds a bit when the bit's last
        flagged record lies inside it; None when none holds any (the usual run). The
        bookkeeping does not change."""
        out: npt.NDArray[np.int64] | None = None
        first: npt.NDArray[np.int64] | None = None
        for i, bit in enumerate(_BITS):
            last = self._last[i]
            if last > lo or (last == lo and bit != GAP):  # some window spans it
                if first is None:  # windows in order: the first one reaches back furthest
                    first = lo + self.stride * np.arange(m)
                mask = last > first if bit == GAP else last >= first
                out = (out if out is not None else np.zeros(m, np.int64)) | (mask * bit)
        return None if out is None else [int(f) for f in out.tolist()]

    def _store_tail(
        self, values: npt.NDArray[np.float32], ts: list[int], texts: Sequence[str]
    ) -> None:
        """Write the newest ``min(n, window)`` of ``n`` new records into the ring."""
        w, n = self.window, len(values)
        k = min(n, w)
        # ring positions of the tail: one stretch to the ring's end, then one from its start
        start = (self.count + n - k) % w
        split = min(k, w - start)
        tail, buf = values[n - k :], self._buf
        buf[start : start + split] = buf[start + w : start + w + split] = tail[:split]
        self._ts[start : start + split] = ts[n - k : n - k + split]
        self._text[start : start + split] = texts[n - k : n - k + split]
        if split < k:
            buf[: k - split] = buf[w : w + k - split] = tail[split:]
            self._ts[: k - split] = ts[n - k + split :]
            self._text[: k - split] = texts[n - k + split :]

    @property
    def filled(self) -> int:
        """Records currently held (at most ``window``)."""
        return min(self.count, self.window)

    def _oldest(self) -> int:
        """Ring position of the oldest record held."""
        return self.count % self.window if self.count >= self.window else 0

    def to_bytes(self) -> bytes:
        """Compact binary form: header + float32 values + int64 times + timestamp texts."""
        n, start = self.filled, self._oldest()
        times, texts = self._held_lists(n, start)
        text = "\n".join(texts).encode("utf-8")
        clock = self.clock
        header = _HEADER2.pack(
            _MAGIC2, self.window, self.features, self.stride, self.count,
            clock.newest_ns, clock.ahead, clock.ahead_ns, *self._last, *self.counts, len(text),
        )
        # the doubled buffer makes the held records one contiguous, oldest-first slice
        values = self._buf[start : start + n].astype("<f4", copy=False).tobytes()
        return header + values + struct.pack(f"<{n}q", *times) + text

    @classmethod
    def from_bytes(cls, data: bytes) -> WindowState:
        """Rebuild a state written by :meth:`to_bytes`; rejects anything malformed."""
        header = {_MAGIC: _HEADER, _MAGIC2: _HEADER2}.get(data[:4])
        if header is None:
            raise ValueError("not a window state (bad magic)")
        if len(data) < header.size:
            raise ValueError("window state is truncated")
        fields = header.unpack_from(data)
        window, features, stride, count, newest = fields[1:6]
        n_text = fields[-1]
        state = cls(window, features, stride)
        if header is _HEADER:  # SDW1: lateness only
            state._last[0], state.counts[0] = fields[6], fields[7]
        else:
            state.clock.ahead, state.clock.ahead_ns = fields[6], fields[7]
            state._last, state.counts = list(fields[8:13]), list(fields[13:18])
        state.clock.newest_ns = newest
        if count < 0 or min(state.counts) < 0:
            raise ValueError("window state has negative counters")
        n = min(count, window)
        sizes = (n * features * 4, n * 8, n_text)
        if len(data) != header.size + sum(sizes):
            raise ValueError("window state length does not match its header")
        off = header.size
        vals = np.frombuffer(data, "<f4", n * features, off).reshape(n, features)
        off += sizes[0]
        times = np.frombuffer(data, "<i8", n, off)
        texts = data[off + sizes[1] :].decode("utf-8").split("\n") if n else []
        if len(texts) != n:
            raise ValueError("window state texts do not match its record count")
        state.count = count
        if n:
            # chronological record j sits at ring position (oldest + j) % window: a roll
            k = state._oldest() % n
            ring = np.roll(vals, k, axis=0)
            state._buf[:n] = ring
            state._buf[window : window + n] = ring
            t_list = times.tolist()
            state._ts[:n] = t_list[n - k :] + t_list[: n - k]
            state._text[:n] = texts[n - k :] + texts[: n - k]
        return state
