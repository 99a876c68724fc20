"""One model input from many runs of windows: a slice of rows ingest already wrote, or one
join.

Ingest writes each completed window once, into the model's :class:`WindowRows` (blocks of
rows in arrival order; a run's ``values`` are a view of its rows) and the pending run notes
where they are. A scoring batch of runs written back to back (the usual case: the worker
scores what it ingested, in order) is then one slice of a block: no per-window gathering,
no second copy (:meth:`WindowRows.batch`; the slice is read, never written: the windows
stay in original units for the decisions). Anything else is joined:

The scoring stage joins the windows that many messages completed into one
``(batch, window, features)`` float32 array for ONNX Runtime. With one record per message
every run holds one window, and ``np.concatenate`` spends about 0.15 us of bookkeeping per
array (64 windows: ~10 us, a tenth of a dense model's forward pass). ``bytearray.join`` over
the arrays' buffers copies the same bytes in about a quarter of that time; it accepts only
C-contiguous arrays (a strided view raises ``TypeError``) and the result is checked
against the number of rows before it is used, so anything unusual takes the
``np.concatenate`` path and gives the same array.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["RowBlock", "WindowRows", "join_windows"]

FloatArray = npt.NDArray[np.float32]
_FEW: Final = 4  # below this many arrays np.concatenate's overhead does not matter
_F32_BYTES: Final = 4
BLOCK_BYTES: Final = 1 << 20  # a block's size: 5,242 windows of 50 x 1 float32 (a longer
# run gets a block of its own; a window over 1 MiB, up to 4,096 x 4,096, gets one row)


class _Run(Protocol):
    values: FloatArray
    block: RowBlock | None
    slot: int


class RowBlock:
    """Rows of completed windows ``(capacity, window, features)`` float32 and what was
    handed out, in order: take ``k`` is the view ``views[k]`` of rows ``starts[k]`` on.
    Takes follow one another, so consecutive takes are back-to-back rows. Holds arrays
    only (numpy arrays are not tracked by the garbage collector: holding them costs no
    collection time, where holding the runs did). Never reused: a full block is replaced,
    and lives while a view of it does. ``owner`` and ``seq`` name its place: the ``seq``-th
    block of one :class:`WindowRows` (blocks of different models never continue each
    other, whatever their slots)."""

    __slots__ = ("values", "used", "views", "starts", "owner", "seq")

    def __init__(self, rows: int, window: int, features: int,
                 owner: object = None, seq: int = 0) -> None:
        self.owner = owner
        self.seq = seq
        self.values: FloatArray = np.empty((rows, window, features), dtype=np.float32)
        self.used = 0  # rows handed out
        self.views: list[FloatArray] = []
        self.starts: list[int] = []


class WindowRows:
    """Where ingest writes one model's completed windows (one :class:`RowBlock` at a time).

    :meth:`take` (or :meth:`put`) hands out rows as a view and remembers it as :attr:`open`;
    a pending run whose ``values`` is that very view notes its place
    (:meth:`place`). :meth:`batch` then finds runs that hold consecutive takes, in order, as
    one slice. Writers: one thread (the event loop); :meth:`batch` only reads.
    """

    __slots__ = ("_shape", "_rows", "block", "open")

    def __init__(self, window: int, features: int, block_rows: int | None = None) -> None:
        self._shape = (window, features)
        if block_rows is None:
            block_rows = max(1, BLOCK_BYTES // (window * features * _F32_BYTES))
        self._rows = block_rows
        self.block = RowBlock(block_rows, window, features, self)
        self.open: FloatArray | None = None  # the view of the last take

    def _next(self, m: int) -> tuple[RowBlock, int]:
        b = self.block
        i = b.used
        if i + m > len(b.values):
            b = self.block = RowBlock(max(m, self._rows), *self._shape, self, b.seq + 1)
            i = 0
        b.used = i + m
        b.starts.append(i)
        return b, i

    def take(self, m: int) -> FloatArray:
        """``m`` fresh rows ``(m, window, features)`` to write (a view of the block)."""
        b, i = self._next(m)
        self.open = rows = b.values[i : i + m]
        b.views.append(rows)
        return rows

    def put(self, window: FloatArray) -> FloatArray:
        """``window`` ``(window, features)`` copied into the next row; that row's view
        (:attr:`open` is the same row as ``(1, window, features)``)."""
        b, i = self._next(1)
        values = b.values
        values[i] = window
        self.open = one = values[i : i + 1]
        b.views.append(one)
        row: FloatArray = values[i]
        return row

    def place(self, run: _Run) -> None:
        """Note in ``run`` (``block``, ``slot``) where its values are, when they are the
        last take (``run.values is open``); else leave it unplaced (it will be joined)."""
        if run.values is self.open:
            b = self.block
            run.block, run.slot = b, len(b.views) - 1
            self.open = None

    @staticmethod
    def batch(runs: Sequence[_Run]) -> FloatArray | None:
        """The rows of ``runs`` as one ``(windows, window, features)`` view of a block when
        they hold consecutive takes of one block, in order, each placed by this block's
        :class:`WindowRows` (so, for pending runs, all of one model); runs that go on from
        the end of one block at the start of another are each block's slice joined (one
        copy); else None (join them run by run). Read it, do not write it (the runs'
        windows may be views of it)."""
        parts: list[FloatArray] = []
        i, n = 0, len(runs)
        last: RowBlock | None = None
        while i < n:
            first = runs[i]
            b = first.block
            if b is None or (last is not None and (
                    first.slot != 0 or b.owner is not last.owner or b.seq != last.seq + 1)):
                return None  # a later part: the next block of the same rows, from its start
            s = first.slot
            e = min(len(b.views), s + n - i)
            for view, run in zip(b.views[s:e], islice(runs, i, i + e - s), strict=True):
                if view is not run.values or run.block is not b:  # views held: ids unique
                    return None
            parts.append(b.values[b.starts[s] : b.starts[e - 1] + len(b.views[e - 1])])
            i, last = i + e - s, b
            if i < n and e != len(b.views):  # only a block's last take goes on elsewhere
                return None
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def join_windows(arrays: Sequence[FloatArray], window: int, features: int) -> FloatArray:
    """The rows of ``arrays`` (each ``(m_i, window, features)`` float32) in order, as one
    writable C-contiguous ``(sum m_i, window, features)`` float32 array (a new array, never
    a view of an input).

    >>> a = np.zeros((1, 2, 1), np.float32); b = np.ones((2, 2, 1), np.float32)
    >>> join_windows([a, b] * 3, 2, 1)[:, :, 0].tolist()[:3]
    [[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]]
    """
    if len(arrays) >= _FEW:
        try:
            joined = bytearray().join(arrays)  # type: ignore[arg-type]  # buffer protocol
        except TypeError:  # a non-contiguous view: numpy copies it below
            pass
        else:
            rows = sum(map(len, arrays))
            if len(joined) == rows * window * features * _F32_BYTES:
                return np.frombuffer(joined, dtype=np.float32).reshape(rows, window, features)
    return np.concatenate(arrays, dtype=np.float32).reshape(-1, window, features)
