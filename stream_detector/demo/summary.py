"""The pure parts of ``stream-detector demo``: detection quality, latency, cache key, summary.

No I/O here, so each rule is tested with small explicit examples.

Detection quality is judged the way an on-call engineer would: an anomaly event is a *true
positive* when its window end falls inside a labelled window of its key (an alert during a
known incident); a labelled window is *detected* when at least one event falls inside it::

    labelled     [----A----]          [--B--]               [C]
    events          x   x      x                              x
                    tp  tp     fp                             tp
    precision = 3 / 4 events inside a window; recall = 2 / 3 windows (A, C) detected

Feature events (``--kind events``) are judged as the benchmark judges them
(``benchmarks/events_quality.py``): the ROC AUC of the score of the signal events against
the background ones (:func:`roc_auc`), beside precision/recall at the model's threshold
(each signal event is its own labelled window).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DemoSummary",
    "Latency",
    "Quality",
    "cache_key",
    "detection_quality",
    "latency_stats",
    "roc_auc",
    "signal_mask",
    "summary_lines",
]

Windows = Mapping[str, Sequence[tuple[int, int]]]


@dataclass(frozen=True)
class Quality:
    """Event-level precision and window-level recall against injected labels."""

    events: int
    true_positives: int
    windows: int
    detected: int

    @property
    def precision(self) -> float:
        """Share of events inside a labelled window (NaN without events)."""
        return self.true_positives / self.events if self.events else math.nan

    @property
    def recall(self) -> float:
        """Share of labelled windows with at least one event (NaN without windows)."""
        return self.detected / self.windows if self.windows else math.nan


def detection_quality(events: Mapping[str, Sequence[int]], labels: Windows) -> Quality:
    """Score event window ends (ns, per key) against labelled windows (inclusive ns ranges).

    >>> q = detection_quality({"a": [5, 7, 20], "b": [3]}, {"a": [(4, 8), (30, 40)], "b": [(3, 3)]})
    >>> (q.true_positives, q.events, q.detected, q.windows)
    (3, 4, 2, 3)
    """
    tp = 0
    hit: set[tuple[str, int]] = set()
    for key, ends in events.items():
        windows = labels.get(key, ())
        for end in ends:
            inside = [i for i, (lo, hi) in enumerate(windows) if lo <= end <= hi]
            tp += bool(inside)
            hit.update((key, i) for i in inside)
    total = sum(len(w) for w in labels.values())
    return Quality(sum(len(e) for e in events.values()), tp, total, len(hit))


@dataclass(frozen=True)
class Latency:
    """Milliseconds from a record's produce time to its anomaly event's produce time."""

    count: int
    p50: float
    p99: float
    max: float


def latency_stats(millis: Sequence[float]) -> Latency:
    """Nearest-rank percentiles of the measured latencies (NaN when there are none).

    >>> latency_stats([10.0, 30.0, 20.0])
    Latency(count=3, p50=20.0, p99=30.0, max=30.0)
    """
    if not millis:
        return Latency(0, math.nan, math.nan, math.nan)
    ordered = sorted(millis)

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    return Latency(len(ordered), rank(0.50), rank(0.99), ordered[-1])


def signal_mask(ends_ns: Sequence[int], labels: Windows | None) -> list[bool]:
    """Per scored window: is its end (ns) a labelled instant (a signal event)?

    >>> signal_mask([1, 2, 3], {"events": [(2, 2)]})
    [False, True, False]
    """
    stamps = {lo for windows in (labels or {}).values() for lo, _ in windows}
    return [end in stamps for end in ends_ns]


def roc_auc(scores: Sequence[float], signal: Sequence[bool]) -> float | None:
    """ROC AUC of ``scores`` separating signal (True) from background (scikit-learn); None
    unless both classes are present.

    >>> roc_auc([0.1, 0.2, 0.9], [False, False, True])
    1.0
    >>> roc_auc([0.1, 0.2], [False, False]) is None
    True
    """
    if not any(signal) or all(signal):
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(list(signal), list(scores)))


def cache_key(data_sha256: str, options: Mapping[str, Any]) -> str:
    """Name of the cached model: changes when the data or any training option changes.

    >>> cache_key("ab" * 32, {"epochs": 30}) == cache_key("ab" * 32, {"epochs": 30})
    True
    >>> cache_key("ab" * 32, {"epochs": 30}) == cache_key("ab" * 32, {"epochs": 5})
    False
    """
    text = json.dumps({"data": data_sha256, "options": options}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class DemoSummary:
    """What one demo run measured."""

    kind: str
    records: int
    keys: int
    windows: int
    anomalies: int
    offline_anomalies: int
    quality: Quality | None
    replay_seconds: float
    processed_seconds: float  # first record produced -> worker has consumed the last
    rate: float  # the replay's pace, records/s
    latency: Latency
    wall_seconds: float
    model: str
    cached_model: bool
    explorer: str = ""  # the live explorer's URL ("" without one)
    roc_auc: float | None = None  # events: signal against background (see roc_auc)


def _ratio(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def _events(n: int) -> str:
    """``1 event``, ``6 events``, ``1,024 events``."""
    return f"{n:,} event{'' if n == 1 else 's'}"


def _quality_lines(q: Quality | None, kind: str = "series",
                   auc: float | None = None) -> list[str]:
    if q is None:
        return ["precision: n/a (no labels for this data)", "recall: n/a (no labels for this data)"]
    if kind == "events":
        return [
            f"ROC AUC: {'n/a' if auc is None else f'{auc:.3f}'} (score of the {q.windows:,} "
            "signal events against the background; docs/detection_quality.md)",
            f"precision: {_ratio(q.precision)} at the threshold ({q.true_positives} of "
            f"{q.events} anomaly events are signal)",
            f"recall: {_ratio(q.recall)} at the threshold ({q.detected} of {q.windows} signal "
            "events detected)",
        ]
    return [
        f"precision: {_ratio(q.precision)} ({q.true_positives} of {_events(q.events)} inside a "
        "labelled window)",
        f"recall: {_ratio(q.recall)} ({q.detected} of {q.windows} labelled windows detected)",
    ]


def summary_lines(s: DemoSummary) -> list[str]:
    """The summary the demo prints, one fact per line (``name: value``, easy to grep).

    >>> q = Quality(events=4, true_positives=3, windows=6, detected=3)
    >>> lat = Latency(4, 12.0, 30.5, 30.5)
    >>> s = DemoSummary("series", 4032, 1, 4009, 4, 4, q, 60.2, 60.4, 67.0, lat, 95.0, "m v1",
    ...                 True)
    >>> print("\\n".join(summary_lines(s)))
    records: 4,032 series records of 1 key(s) replayed in 60.2 s
    windows: 4,009 scored by the worker
    anomalies: 4 events (the offline pipeline finds 4: same)
    precision: 0.75 (3 of 4 events inside a labelled window)
    recall: 0.50 (3 of 6 labelled windows detected)
    throughput: 67 records/s through Kafka and the worker in 60.4 s (replay paced at 67/s)
    latency: p50 12.0 ms, p99 30.5 ms, max 30.5 ms (record produced -> anomaly event, 4 events)
    model: m v1 (cached)
    wall time: 95.0 s
    """
    same = "same" if s.anomalies == s.offline_anomalies else "DIFFERENT"
    lat = s.latency
    latency = (
        f"latency: p50 {lat.p50:.1f} ms, p99 {lat.p99:.1f} ms, max {lat.max:.1f} ms "
        f"(record produced -> anomaly event, {_events(lat.count)})"
        if lat.count else "latency: n/a (no anomaly events)"
    )
    seconds = s.processed_seconds
    throughput = s.records / seconds if seconds > 0 else 0.0
    return [
        f"records: {s.records:,} {s.kind} records of {s.keys:,} key(s) replayed in "
        f"{s.replay_seconds:.1f} s",
        f"windows: {s.windows:,} scored by the worker",
        f"anomalies: {_events(s.anomalies)} (the offline pipeline finds "
        f"{s.offline_anomalies:,}: {same})",
        *_quality_lines(s.quality, s.kind, s.roc_auc),
        f"throughput: {throughput:,.0f} records/s through Kafka and the worker in "
        f"{seconds:.1f} s (replay paced at {s.rate:,.0f}/s)",
        latency,
        f"model: {s.model} ({'cached' if s.cached_model else 'trained now'})",
        f"wall time: {s.wall_seconds:.1f} s",
        *([f"explorer: {s.explorer} (up while the demo ran; --stay keeps it up)"]
          if s.explorer else []),
    ]
