"""What a running worker tells the person watching it: pure text, no I/O.

Three kinds of line, all through the ``stream_detector.console`` logger (text or JSON, as
``STREAM_DETECTOR_LOG_FORMAT`` says)::

    anomaly Twitter_volume_AAPL @ 2015-03-03T17:02:53 severity 62 score 7.1 > 4.5
      observed 1204 vs expected 212 | top value t-0 | nab v3
    every 10 s: 1,502 records/s, 1,480 windows/s, 2 anomalies (45 in all), consumer lag
      0 | thresholds: Redis (1 entry, 0.3 s old)
    thresholds of nab v3 changed: Twitter_volume_AAPL 4.5 -> 5 (manual by alice)

Anomaly lines are capped per second (:class:`AnomalyLines`): a burst of thousands of alerts
shows the first few and counts the rest into the next summary, so logging never costs more
than the alerts' own delivery.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from schemas.events import AnomalyEvent
from stream_detector.core.thresholds import ThresholdEntry
from stream_detector.logs import printable

__all__ = [
    "AnomalyLines",
    "SummaryCounter",
    "anomaly_line",
    "lag_text",
    "threshold_changes",
    "threshold_source",
    "when",
]


def _num(value: float) -> str:
    """Four significant digits, no exponent for everyday sizes.

    >>> _num(1204.0), _num(0.00012345), _num(7.0)
    ('1204', '0.0001234', '7')
    """
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.3e}"


def when(event: AnomalyEvent) -> str:
    """The event's window end for people: event files carry no time, so their rows are
    stamped epoch + row seconds (``stream_detector.files.history``); those read ``row N``, not
    as a moment in January 1970.

    >>> when(AnomalyEvent.model_construct(record_kind="events",
    ...                                   window_end="1970-01-01T00:03:12"))
    'row 192'
    >>> when(AnomalyEvent.model_construct(record_kind="series",
    ...                                   window_end="2015-03-02T15:32:53"))
    '2015-03-02T15:32:53'
    """
    end = event.window_end
    if event.record_kind == "events" and end.startswith("1970-"):
        try:
            stamp = datetime.fromisoformat(end.replace("Z", "+00:00"))
        except ValueError:
            return end
        return f"row {int(stamp.replace(tzinfo=UTC).timestamp())}"
    return end


def anomaly_line(event: AnomalyEvent) -> str:
    """One line per anomaly event: key, window end, severity, score vs threshold, observed
    vs expected (first feature, original units) and the top contributor."""
    parts = [f"anomaly {printable(event.key)} @ {when(event)} severity {event.severity:.0f} "
             f"score {_num(event.score)} > {_num(event.threshold)}"]
    if event.p_value is not None:
        parts[0] += f" p={event.p_value:.2g}"
    if event.observed:
        seen = f"observed {_num(event.observed[0])}"
        if event.expected:
            seen += f" vs expected {_num(event.expected[0])}"
        parts.append(seen)
    if event.top_contributors:
        top = max(event.top_contributors, key=lambda c: c.error)
        parts.append(f"top {printable(top.name)} t-{top.time_offset}")
    parts.append(printable(f"{event.model.name} v{event.model.version}"))
    return " | ".join(parts)


class AnomalyLines:
    """At most ``per_second`` anomaly lines each second; the rest are only counted."""

    def __init__(self, per_second: int = 10) -> None:
        self.per_second = per_second
        self._second = -1
        self._shown = 0
        self.suppressed = 0

    def admit(self, now: float) -> bool:
        """True if a line may be written at ``now`` (seconds, any clock)."""
        second = int(now)
        if second != self._second:
            self._second, self._shown = second, 0
        if self._shown < self.per_second:
            self._shown += 1
            return True
        self.suppressed += 1
        return False

    def take_suppressed(self) -> int:
        n, self.suppressed = self.suppressed, 0
        return n


@dataclass
class SummaryCounter:
    """Counts between two summary lines (fed once per batch, never per record)."""

    records: int = 0
    windows: int = 0
    anomalies: int = 0
    anomalies_total: int = 0
    since: float = 0.0
    dead: dict[str, int] = field(default_factory=dict)  # dead letters by reason, so far

    def add(self, records: int, windows: int, anomalies: int) -> None:
        self.records += records
        self.windows += windows
        self.anomalies += anomalies
        self.anomalies_total += anomalies

    def line(self, now: float, lag: int | None, thresholds: str, suppressed: int = 0,
             kafka_reachable: bool = True, dead: Mapping[str, int] | None = None) -> str:
        """The summary since the last call, and start a new period at ``now``; ``lag`` None
        is shown as ``?`` (unknown), with ``(Kafka unreachable)`` when that is why;
        ``dead``: records dead-lettered so far by reason (the period's are shown)."""
        seconds = max(now - self.since, 1e-9)
        text = (f"{self.records / seconds:,.0f} records/s, {self.windows / seconds:,.0f} "
                f"windows/s, {self.anomalies:,} anomal{'y' if self.anomalies == 1 else 'ies'}"
                f" ({self.anomalies_total:,} in all")
        text += f", {suppressed:,} not printed)" if suppressed else ")"
        new = {r: n - self.dead.get(r, 0) for r, n in (dead or {}).items()
               if n > self.dead.get(r, 0)}
        if new:  # unrouted kinds and bad records were only in /metrics
            reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(new.items(), key=lambda x: -x[1]))
            text += f", {sum(new.values()):,} dead-lettered ({reasons})"
        self.dead = dict(dead or self.dead)
        text += f", consumer lag {lag_text(lag, kafka_reachable)} | thresholds: {thresholds}"
        self.records = self.windows = self.anomalies = 0
        self.since = now
        return text


def lag_text(lag: int | None, kafka_reachable: bool = True) -> str:
    """Consumer lag for the summary: ``1,234``, ``?`` (unknown) or ``? (Kafka unreachable)``."""
    if lag is not None:
        return f"{lag:,}"
    return "?" if kafka_reachable else "? (Kafka unreachable)"


def threshold_source(entries: int, age_seconds: float, degraded: bool) -> str:
    """Where the thresholds in use come from, for the summary line.

    >>> threshold_source(1, 0.31, False)
    'Redis (1 entry, 0.3 s old)'
    >>> threshold_source(0, math.inf, True)
    'model card (Redis unreachable; cached values kept)'
    """
    if degraded:
        return "model card (Redis unreachable; cached values kept)" if entries == 0 else (
            f"cached Redis values ({entries} entr{'y' if entries == 1 else 'ies'}, Redis "
            f"unreachable for {age_seconds:.0f} s)")
    if entries == 0:
        return f"model card (nothing in Redis, checked {age_seconds:.1f} s ago)"
    return f"Redis ({entries} entr{'y' if entries == 1 else 'ies'}, {age_seconds:.1f} s old)"


def threshold_changes(
    model: str, version: str, old: Mapping[str, ThresholdEntry],
    new: Mapping[str, ThresholdEntry], before: Mapping[str, float] | None = None,
) -> str | None:
    """One line naming what changed between two snapshots of a model's thresholds, or None.

    ``before`` gives the value a key resolved to before the change when Redis had no entry
    of its own (the default's or the card's).

    >>> a = ThresholdEntry(value=4.5, method="sigma", set_by="train")
    >>> b = ThresholdEntry(value=5.0, method="manual", set_by="alice")
    >>> threshold_changes("nab", "3", {"AAPL": a}, {"AAPL": b})
    'thresholds of nab v3 changed: AAPL 4.5 -> 5 (manual by alice)'
    >>> threshold_changes("nab", "3", {}, {"AAPL": b}, before={"AAPL": 4.5})
    'thresholds of nab v3 changed: AAPL 4.5 -> 5 (manual by alice)'
    """
    parts = []
    for key in sorted(old.keys() | new.keys()):
        was, now = old.get(key), new.get(key)
        if was == now:
            continue
        if now is None:
            parts.append(f"{key} {_num(was.value) if was else '?'} -> removed")
            continue
        if was is not None:
            prior = _num(was.value)
        else:
            prior = _num(before[key]) if before and key in before else "card"
        who = f" by {now.set_by}" if now.set_by else ""
        parts.append(f"{key} {prior} -> {_num(now.value)} ({now.method}{who})")
    if not parts:
        return None
    shown = parts[:5] + ([f"and {len(parts) - 5} more"] if len(parts) > 5 else [])
    return f"thresholds of {model} v{version} changed: " + ", ".join(shown)
