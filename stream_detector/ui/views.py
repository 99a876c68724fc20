"""The explorer's queries over an :class:`~stream_detector.ui.state.ExplorerState`. Pure.

- :func:`overview`: the swim lane, keys x time buckets, each cell the highest severity of
  the key's anomalies in the bucket; keys searched, sorted and paged on the server, so a
  page of 10,000 keys sends only the rows shown.
- :func:`anomalies`: the table, newest first.
- :func:`key_view`: one key's observed values, its anomalies (observed vs expected, score vs
  threshold), quiet periods and model version changes.

Swim lane of 3 keys, 4 buckets over [start, end)::

    key   | b0 | b1 | b2 | b3 |     cell = max severity of the key's events in the bucket
    a     |    | 80 |    |  5 |     sort "severity": by the key's max in the range, then name
    b     | 20 |    |    |    |
    c     |    |    |    |    |     (no anomaly: null, drawn empty)
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np

from stream_detector.ui.state import EventRow, ExplorerState

__all__ = ["TimeRange", "time_range", "overview", "anomalies", "key_view", "decimate",
           "quiet_periods", "version_changes", "RANGES"]

# The time-range control's choices: seconds back from the latest data time (None: all).
RANGES: Final[dict[str, int | None]] = {
    "15m": 900, "1h": 3600, "6h": 6 * 3600, "1d": 86400, "7d": 7 * 86400, "30d": 30 * 86400,
    "all": None,
}
SortBy = Literal["severity", "recent", "key"]
_MAX_POINTS: Final = 4000


@dataclass(frozen=True)
class TimeRange:
    """[start_ns, end_ns] inclusive; both None when nothing has been seen yet."""

    start_ns: int | None
    end_ns: int | None

    def holds(self, ns: int) -> bool:
        return (self.start_ns is None or ns >= self.start_ns) and (
            self.end_ns is None or ns <= self.end_ns)


def time_range(state: ExplorerState, name: str = "all") -> TimeRange:
    """The range a control choice stands for, ending at the latest data time.

    Raises ``KeyError`` for a name not in :data:`RANGES`.
    """
    span = RANGES[name]
    end = state.latest_ns
    if end is None:
        return TimeRange(None, None)
    start = state.earliest_ns if span is None else end - span * 1_000_000_000
    return TimeRange(start, end)


def _in_range(rows: list[EventRow], tr: TimeRange) -> list[EventRow]:
    ends = [r.end_ns for r in rows]
    lo = 0 if tr.start_ns is None else bisect.bisect_left(ends, tr.start_ns)
    hi = len(rows) if tr.end_ns is None else bisect.bisect_right(ends, tr.end_ns)
    return rows[lo:hi]


def _matches(key: str, query: str) -> bool:
    return not query or query.lower() in key.lower()


def overview(
    state: ExplorerState, tr: TimeRange, *, buckets: int = 60, query: str = "",
    sort: SortBy = "severity", page: int = 0, size: int = 50,
) -> dict[str, Any]:
    """One page of the swim lane.

    Returns
    -------
    dict
        ``keys`` (the page's keys), ``cells`` (one list of ``buckets`` severities or None per
        key), ``max`` (each key's highest severity in the range), ``counts`` (its anomalies
        in the range), ``edges`` (``buckets + 1``
        bucket edges, ns), ``total`` (keys matching ``query``), ``page``, ``pages``.
    """
    keys = [k for k in state.keys() if _matches(k, query)]
    rows = {k: _in_range(state.by_key.get(k, []), tr) for k in keys}
    top = {k: max((r.severity for r in rows[k]), default=-1.0) for k in keys}
    last = {k: rows[k][-1].end_ns if rows[k] else -1 for k in keys}
    if sort == "key":
        keys.sort()
    elif sort == "recent":
        keys.sort(key=lambda k: (-last[k], k))
    else:
        keys.sort(key=lambda k: (-top[k], k))
    pages = max(1, -(-len(keys) // size))
    page = min(max(page, 0), pages - 1)
    shown = keys[page * size:(page + 1) * size]
    edges = _edges(tr, buckets)
    cells = [_cells(rows[k], edges) for k in shown]
    return {"keys": shown, "cells": cells, "max": [top[k] if top[k] >= 0 else None for k in shown],
            "counts": [len(rows[k]) for k in shown], "edges": edges, "total": len(keys),
            "page": page, "pages": pages}


def _edges(tr: TimeRange, buckets: int) -> list[int]:
    if tr.start_ns is None or tr.end_ns is None:
        return []
    # integers: float64 has 256 ns steps at today's epoch, enough to drop the latest event
    span = max(tr.end_ns + 1 - tr.start_ns, buckets)  # right edge holds the latest
    return [tr.start_ns + span * i // buckets for i in range(buckets + 1)]


def _cells(rows: list[EventRow], edges: list[int]) -> list[float | None]:
    out: list[float | None] = [None] * max(len(edges) - 1, 0)
    for r in rows:
        i = bisect.bisect_right(edges, r.end_ns) - 1
        if 0 <= i < len(out):
            current = out[i]
            out[i] = r.severity if current is None else max(current, r.severity)
    return out


def anomalies(
    state: ExplorerState, tr: TimeRange, *, query: str = "", key: str | None = None,
    min_severity: float = 0.0, limit: int = 100, offset: int = 0,
) -> dict[str, Any]:
    """The anomaly table: ``rows`` newest first (by window end), ``total`` matching."""
    source = state.by_key.get(key, []) if key is not None else state.events
    hits = [r for r in reversed(_in_range(source, tr))
            if r.severity >= min_severity and _matches(r.key, query)]
    return {"rows": [r.as_json() for r in hits[offset:offset + limit]], "total": len(hits)}


def decimate(times: np.ndarray, values: np.ndarray, most: int = _MAX_POINTS) -> tuple[
        np.ndarray, np.ndarray]:
    """At most about ``most`` points: each of ``most // 2`` slices keeps its min and max,
    so spikes survive (a plain stride would drop them).

    >>> t, v = decimate(np.arange(10), np.array([0, 0, 9, 0, 0, 0, 0, -5, 0, 0.]), most=4)
    >>> v.tolist()  # slice 0..4 keeps 0 and 9; slice 5..9 keeps 0 (first max) and -5
    [0.0, 9.0, 0.0, -5.0]
    """
    if len(times) <= most:
        return times, values
    keep: list[int] = []
    for chunk in np.array_split(np.arange(len(times)), most // 2):
        lo, hi = chunk[np.argmin(values[chunk])], chunk[np.argmax(values[chunk])]
        keep.extend(sorted({int(lo), int(hi)}))
    idx = np.array(keep)
    return times[idx], values[idx]


def quiet_periods(rows: list[EventRow], times: np.ndarray, windows: int) -> list[list[int]]:
    """[start, end] ns of the quiet period after each alert: the key does not alert again
    for ``windows`` windows. Its end is the timestamp ``windows`` records after the alert's
    window end in ``times`` (sorted), or, past the data held, that many median steps on.

    >>> quiet_periods([_row(20)], np.array([0, 10, 20, 30, 40]), 2)
    [[20, 40]]
    >>> quiet_periods([_row(20)], np.array([0, 10, 20, 30]), 3)
    [[20, 50]]
    """
    if windows <= 0 or not rows:
        return []
    step = int(np.median(np.diff(times))) if len(times) > 1 else 0
    out = []
    for r in rows:
        i = int(np.searchsorted(times, r.end_ns))
        j = i + windows
        end = int(times[j]) if j < len(times) else r.end_ns + windows * step
        out.append([r.end_ns, end])
    return out


def version_changes(rows: list[EventRow]) -> list[dict[str, Any]]:
    """Where the model version of a key's anomalies changes (the first event of each)."""
    out: list[dict[str, Any]] = []
    previous: tuple[str, str] | None = None
    for r in rows:
        current = (r.model, r.version)
        if current != previous:
            out.append({"time_ns": r.end_ns, "model": r.model, "version": r.version,
                        "first": previous is None})
            previous = current
    return out


def key_view(state: ExplorerState, key: str, tr: TimeRange) -> dict[str, Any]:
    """One key: ``times``/``values`` observed (decimated), ``events`` (table rows),
    ``quiet`` periods, ``versions`` changes, ``seen`` (whether the key exists)."""
    ring = state.series.get(key)
    times, values = ring.arrays() if ring is not None else (np.empty(0, np.int64),
                                                              np.empty(0))
    inside = np.ones(len(times), bool)
    if tr.start_ns is not None:
        inside &= (times >= tr.start_ns) & (times <= (tr.end_ns or times.max(initial=0)))
    t_show, v_show = decimate(times[inside], values[inside])
    every = state.by_key.get(key, [])
    rows = _in_range(every, tr)
    quiet: list[list[int]] = []
    for (model, version), windows in state.quiet_windows.items():
        mine = [r for r in rows if r.model == model and r.version == version]
        quiet += quiet_periods(mine, times, windows)
    return {"key": key, "seen": ring is not None or bool(every),
            "times": t_show.tolist(), "values": v_show.tolist(),
            "events": [r.as_json() for r in rows], "quiet": quiet,
            "versions": version_changes(every)}


def _row(end_ns: int) -> EventRow:
    """A minimal row for the doctests."""
    return EventRow("0" * 32, "k", end_ns, end_ns, "", "", 1.0, None, 1.0, 1.0, "", (1.0,),
                    None, (), "m", "1", ())
