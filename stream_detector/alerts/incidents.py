"""Alert grouping: anomaly events of one key become one incident, one post, one resolution.

Pure logic, no I/O: :class:`IncidentTracker` reads the time from an injected clock, so
tests drive it with a fake one. The words of a post are :mod:`stream_detector.alerts.formats`'
job, the Kafka loop is :mod:`stream_detector.alerts.consumer`, delivery is a sink's
(:mod:`stream_detector.alerts.sinks`).

Time is **event time**: an event happens at its ``window_end``. Timeline of one key with
``suppress = 900`` s (event-time seconds; ``x`` an anomaly event)::

    t:    0      300     700              1600  1601
          x      x       x                 .     x
          open   +1      +1     (quiet for 900 s)  resolved: 3   open (a new incident)
          post   -       -                 post  post

An incident closes when its key has seen no event for ``suppress`` seconds of event time.
The tracker's notion of "now" is a watermark: the newest event time seen, advanced by the
clock since that event arrived (:meth:`IncidentTracker.now`). Reading a backlog (seven weeks
of events in a second) therefore groups and resolves incidents as they happened, and a live
feed whose anomalies stop still resolves its incidents ``suppress`` seconds later. The tracker
notices expiry on the next event of any key or on a periodic :meth:`IncidentTracker.tick`.

Partitions of the anomaly topic are read in no fixed interleaving, so one key's events may
arrive after the watermark has run ahead on another partition's. Two rules keep such a key
grouped as it happened: a key's next event more than ``suppress`` after its last one
resolves and reopens (a per-key rule, immune to other partitions), and the watermark closes
a quiet incident only once its key has also received nothing for ``grace`` seconds of clock.
An event whose ``window_end`` is not an ISO 8601 time, or whose window holds a record stamped
too far ahead (``quality.skewed``), counts at the tracker's "now".
Duplicate ``event_id`` values (at-least-once delivery) are dropped; events below
``min_severity`` are ignored altogether (they neither open nor extend an incident).

Open incidents outlive a restart: the tracker lists the keys whose incident changed
(:meth:`IncidentTracker.take_changes`), the consumer saves those as JSON (:func:`incident_state`,
wall-clock times) before it commits the message's offset, and a new tracker resumes them
(:meth:`IncidentTracker.resume`). Without that, every deploy of the alerts consumer would
page again for incidents still going on and never post their resolutions.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from pydantic import ValidationError

from schemas.events import AnomalyEvent
from schemas.records import MAX_MESSAGE_BYTES
from stream_detector.exceptions import InvalidRecord

__all__ = [
    "DEFAULT_SUPPRESS_SECONDS",
    "Incident",
    "IncidentTracker",
    "Notice",
    "incident_state",
    "parse_event",
]

DEFAULT_SUPPRESS_SECONDS: Final = 900.0
# Remembered event ids for duplicate detection; the oldest are forgotten first. Duplicates
# of at-least-once delivery arrive close together, so a bounded memory is enough.
_SEEN_IDS: Final = 100_000


@dataclass
class Incident:
    """Consecutive anomalies of one key, none more than ``suppress`` seconds after the last."""

    key: str
    first: AnomalyEvent
    last: AnomalyEvent
    count: int
    opened_at: float
    last_seen_at: float  # event time (epoch seconds) of the newest event
    arrived_at: float = 0.0  # clock reading when its newest event arrived


@dataclass(frozen=True)
class Notice:
    """Something to post: an incident opened, or closed (worded by
    :mod:`stream_detector.alerts.formats`)."""

    kind: Literal["opened", "resolved"]
    incident: Incident


class IncidentTracker:
    """Group anomaly events by key into incidents and say which notices to post.

    Parameters
    ----------
    suppress
        Seconds without an event of a key after which its incident closes.
    min_severity
        Events with a lower severity are ignored (0: keep everything).
    clock
        Seconds from any origin (``time.monotonic``); injected so tests control time. It
        only advances the watermark between events (see the module docstring).
    """

    def __init__(
        self, suppress: float, min_severity: float, clock: Callable[[], float],
        grace: float = 2.0,
    ) -> None:
        if suppress <= 0:
            raise ValueError(f"suppress must be > 0 seconds, got {suppress}")
        self.suppress = suppress
        self.grace = min(grace, suppress)
        self.min_severity = min_severity
        self._clock = clock
        self._open: dict[str, Incident] = {}
        self._changed: set[str] = set()  # keys whose incident opened, grew or closed
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._watermark: float | None = None  # newest event time seen (epoch seconds)
        self._advanced_at = 0.0  # clock reading when the watermark last moved
        self.duplicates = 0
        self.below_severity = 0

    @property
    def open_incidents(self) -> list[Incident]:
        return list(self._open.values())

    def now(self) -> float:
        """Event time now: the watermark plus the clock's seconds since it last moved
        (the clock itself until a first event arrives)."""
        if self._watermark is None:
            return self._clock()
        return self._watermark + (self._clock() - self._advanced_at)

    def _advance(self, event: AnomalyEvent) -> float:
        """The event's time; the watermark moves to it when it is newer than ``now()``."""
        now = self.now()
        # a window ending at a record stamped too far ahead (quality.skewed: a producer's
        # fast clock) has no time to trust: at "now", or its key's later events, hours or
        # years "before" it, all joined its incident and were never paged
        at = None if event.quality.skewed else _event_seconds(event.window_end)
        if at is None:
            at = now
        self._watermark, self._advanced_at = max(at, now), self._clock()
        return at

    def observe(self, event: AnomalyEvent) -> list[Notice]:
        """Take one event; return resolutions of expired incidents, then an opening if any."""
        if event.event_id in self._seen:
            self.duplicates += 1
            return self.tick()
        self._remember(event.event_id)
        at = self._advance(event)  # every new event moves event time, even a low one
        notices = self.tick()
        if event.severity < self.min_severity:
            self.below_severity += 1
            return notices
        incident = self._open.get(event.key)
        self._changed.add(event.key)
        if incident is not None and at - incident.last_seen_at >= self.suppress:
            del self._open[event.key]  # the key's own quiet period passed between its events
            notices.append(Notice("resolved", incident))
            incident = None
        if incident is not None:
            incident.count += 1
            incident.last = event
            incident.last_seen_at = max(incident.last_seen_at, at)
            incident.arrived_at = self._clock()
            return notices
        incident = Incident(event.key, event, event, 1, at, at, self._clock())
        self._open[event.key] = incident
        notices.append(Notice("opened", incident))
        return notices

    def tick(self) -> list[Notice]:
        """Close every incident whose key has been quiet for ``suppress`` event-time seconds."""
        now, clock = self.now(), self._clock()
        expired = [i for i in self._open.values()
                   if now - i.last_seen_at >= self.suppress and clock - i.arrived_at >= self.grace]
        for incident in expired:
            del self._open[incident.key]
            self._changed.add(incident.key)
        return [Notice("resolved", i) for i in expired]

    def take_changes(self) -> tuple[dict[str, Incident], list[str]]:
        """Incidents opened or grown, and keys whose incident closed, since the last call."""
        changed, self._changed = self._changed, set()
        open_ = {k: self._open[k] for k in changed if k in self._open}
        return open_, sorted(changed - open_.keys())

    def resume(self, states: Iterable[bytes | str], wall_now: float) -> int:
        """Reopen incidents saved by :func:`incident_state` (by an earlier run), silently.

        Their event times are kept, and the watermark continues from the saved one plus
        the wall-clock seconds the consumer was down. Their events count as seen, so a
        redelivered one is a duplicate. Unreadable states are skipped; returns how many
        incidents were resumed.
        """
        resumed = 0
        for raw in states:
            try:
                data = json.loads(raw)
                first = AnomalyEvent.model_validate(data["first"])
                last = AnomalyEvent.model_validate(data["last"])
                count, opened, seen = int(data["count"]), data["opened"], data["last_seen"]
                mark = float(data.get("watermark", wall_now)) + wall_now - float(
                    data.get("saved_at", wall_now))
            except (ValueError, KeyError, TypeError, ValidationError):
                continue
            self._open[first.key] = Incident(first.key, first, last, count, float(opened),
                                             float(seen), self._clock())
            if self._watermark is None or mark > self.now():
                self._watermark, self._advanced_at = mark, self._clock()
            self._remember(first.event_id)
            self._remember(last.event_id)
            resumed += 1
        return resumed

    def _remember(self, event_id: str) -> None:
        self._seen[event_id] = None
        if len(self._seen) > _SEEN_IDS:
            self._seen.popitem(last=False)


def incident_state(incident: Incident, event_now: float, wall_now: float) -> str:
    """An open incident as JSON: its event times, the tracker's watermark ``event_now``
    (:meth:`IncidentTracker.now`) and the wall-clock time of saving, so another process
    resumes the quiet period where this one left it."""
    return json.dumps({
        "first": incident.first.model_dump(mode="json"),
        "last": incident.last.model_dump(mode="json"), "count": incident.count,
        "opened": incident.opened_at, "last_seen": incident.last_seen_at,
        "watermark": event_now, "saved_at": wall_now,
    }, separators=(",", ":"))


def _event_seconds(text: str) -> float | None:
    """Epoch seconds of an ISO 8601 time (naive = UTC), or None if it is not one.

    >>> _event_seconds("1970-01-01T00:01:00")
    60.0
    >>> _event_seconds("t1") is None
    True
    """
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_event(raw: bytes | None) -> AnomalyEvent:
    """Validate one message value as an :class:`AnomalyEvent`.

    Raises
    ------
    InvalidRecord
        The value is not JSON or not an anomaly event; the message says which.
    """
    if raw is None:
        raise InvalidRecord("empty message (no value)")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidRecord(f"message of {len(raw):,} bytes exceeds {MAX_MESSAGE_BYTES:,}")
    try:
        return AnomalyEvent.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "message"
        raise InvalidRecord(f"not an anomaly event: {where}: {first['msg']}") from None
