"""What the explorer knows: anomaly events and observed values per key. Pure, no I/O.

The Kafka follower (:mod:`stream_detector.ui.follow`) feeds an :class:`ExplorerState`; the
server's queries (:mod:`stream_detector.ui.views`) read it. Memory is bounded: at most
``max_events`` events (the oldest go first) and ``points_per_key`` observed values per key,
kept in arrays that start small and double, so 10,000 quiet keys cost little.

Times are event time (a record's timestamp, an event's ``window_end``) as integer
nanoseconds since the Unix epoch: a replayed file shows its own dates, and "the last hour"
means the last hour of data seen (:attr:`ExplorerState.latest_ns`).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from schemas.events import AnomalyEvent
from schemas.records import parse_iso8601

__all__ = ["EventRow", "ExplorerState", "SeriesRing", "to_ns"]

_EPOCH_NS: Final = np.datetime64(0, "ns")
_FIRST_CAPACITY: Final = 64


def to_ns(text: str) -> int:
    """ISO 8601 text (naive = UTC) as integer ns since the epoch.

    >>> to_ns("1970-01-01T00:00:01")
    1000000000
    >>> to_ns("1970-01-01T00:00:01+01:00")
    -3599000000000
    """
    dt = parse_iso8601(text)
    if dt.tzinfo is not None:
        dt = dt.replace(tzinfo=None) - dt.utcoffset()  # type: ignore[operator]
    return int((np.datetime64(dt, "ns") - _EPOCH_NS).astype(np.int64))


@dataclass(frozen=True, slots=True)
class EventRow:
    """The parts of an :class:`~schemas.events.AnomalyEvent` the explorer shows."""

    event_id: str
    key: str
    start_ns: int
    end_ns: int
    window_end: str
    detected_at: str
    severity: float
    p_value: float | None
    score: float
    threshold: float
    threshold_by: str
    observed: tuple[float, ...]
    expected: tuple[float, ...] | None
    contributors: tuple[str, ...]
    model: str
    version: str
    flags: tuple[str, ...]

    @classmethod
    def from_event(cls, e: AnomalyEvent) -> EventRow:
        """Raises ``ValueError`` when a window timestamp is not ISO 8601."""
        flags = tuple(name for name, on in e.quality.model_dump().items() if on)
        return cls(
            event_id=e.event_id, key=e.key, start_ns=to_ns(e.window_start),
            end_ns=to_ns(e.window_end), window_end=e.window_end, detected_at=e.detected_at,
            severity=e.severity, p_value=e.p_value, score=e.score, threshold=e.threshold,
            threshold_by=e.threshold_source.set_by, observed=tuple(e.observed),
            expected=None if e.expected is None else tuple(e.expected),
            contributors=tuple(f"{c.name}@-{c.time_offset}" for c in e.top_contributors),
            model=e.model.name, version=e.model.version, flags=flags,
        )

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the table's row)."""
        return {
            "event_id": self.event_id, "key": self.key, "time": self.window_end,
            "time_ns": self.end_ns, "start_ns": self.start_ns, "detected_at": self.detected_at,
            "severity": round(self.severity, 2), "p_value": self.p_value, "score": self.score,
            "threshold": self.threshold, "threshold_by": self.threshold_by,
            "observed": list(self.observed),
            "expected": None if self.expected is None else list(self.expected),
            "contributors": list(self.contributors), "model": self.model,
            "version": self.version, "flags": list(self.flags),
        }


@dataclass
class SeriesRing:
    """One key's latest observed values: (ns, value) pairs, at most ``capacity``.

    Arrays start at 64 slots and double up to ``capacity``; after that the oldest value is
    overwritten. :meth:`arrays` returns them in time order (records may arrive out of order).
    """

    capacity: int
    times: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    values: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0, np.float64))
    count: int = 0  # values ever appended

    def append(self, ns: int, value: float) -> None:
        size = len(self.times)
        if self.count >= size and size < self.capacity:
            grown = min(self.capacity, max(_FIRST_CAPACITY, 2 * size))
            self.times = np.resize(self.times, grown)
            self.values = np.resize(self.values, grown)
            size = grown
        slot = self.count % size if self.count >= size else self.count
        self.times[slot] = ns
        self.values[slot] = value
        self.count += 1

    def arrays(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        n = min(self.count, len(self.times))
        order = np.argsort(self.times[:n], kind="stable")
        return self.times[:n][order], self.values[:n][order]


@dataclass
class ExplorerState:
    """Events and observed values per key, with the totals the page shows."""

    max_events: int = 200_000
    points_per_key: int = 4096
    events: list[EventRow] = field(default_factory=list)  # sorted by end_ns
    by_key: dict[str, list[EventRow]] = field(default_factory=dict)  # each sorted by end_ns
    series: dict[str, SeriesRing] = field(default_factory=dict)
    seen_ids: set[str] = field(default_factory=set)
    records: int = 0
    duplicates: int = 0
    latest_ns: int | None = None
    earliest_ns: int | None = None
    quiet_windows: dict[tuple[str, str], int] = field(default_factory=dict)

    def _see(self, ns: int) -> None:
        if self.latest_ns is None or ns > self.latest_ns:
            self.latest_ns = ns
        if self.earliest_ns is None or ns < self.earliest_ns:
            self.earliest_ns = ns

    def add_event(self, row: EventRow) -> bool:
        """Keep an event; False for a duplicate (same ``event_id``, at-least-once delivery)."""
        if row.event_id in self.seen_ids:
            self.duplicates += 1
            return False
        self.seen_ids.add(row.event_id)
        bisect.insort(self.events, row, key=_end)
        bisect.insort(self.by_key.setdefault(row.key, []), row, key=_end)
        self._see(row.end_ns)
        if len(self.events) > self.max_events:
            self._forget(len(self.events) - self.max_events * 9 // 10)
        return True

    def _forget(self, n: int) -> None:
        """Drop the ``n`` oldest events (by event time) and rebuild the per-key lists."""
        gone, self.events = self.events[:n], self.events[n:]
        self.seen_ids.difference_update(r.event_id for r in gone)
        keys = {r.key for r in gone}
        for key in keys:
            self.by_key[key] = [r for r in self.by_key[key] if r.event_id in self.seen_ids]

    def add_values(self, key: str, points: Iterable[tuple[int, float]]) -> None:
        """Observed values of one key (ns, first feature) from the input topic."""
        ring = self.series.get(key)
        if ring is None:
            ring = self.series[key] = SeriesRing(self.points_per_key)
        for ns, value in points:
            ring.append(ns, value)
            self.records += 1
            self._see(ns)

    def set_quiet_windows(self, model: str, version: str, windows: int) -> None:
        """How many windows a key stays quiet after an alert (a model card's ``suppress``)."""
        self.quiet_windows[(model, version)] = windows

    def keys(self) -> set[str]:
        """Every key seen, with or without anomalies."""
        return set(self.series) | set(self.by_key)


def _end(row: EventRow) -> int:
    return row.end_ns
