"""What the time policy makes of a file, said in one line, so no command keeps it quiet.

Offline commands keep records in file order and flag them as a worker would
(:mod:`stream_detector.core.timing`): repeated, late (earlier than the key's newest time so
far), skewed (far ahead) and gaps. A shuffled file or one at another cadence than the model's
still "works", so ``train``, ``score`` and ``evaluate`` say how many records were flagged, and
when the file's cadence is not the model's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from schemas.records import Record
from stream_detector.core.timing import (
    GAP,
    LATE,
    REPEATED,
    SKEWED,
    TimePolicy,
    Watermark,
    cadence_s,
    observe_many,
)

__all__ = ["TimeReport", "time_report"]

_ORDER = ((REPEATED, "repeated"), (LATE, "late"), (SKEWED, "skewed"), (GAP, "after a gap"))
_NS = 10**9


@dataclass(frozen=True)
class TimeReport:
    """Records per flag (``{"late": 3, ...}``, flagged ones only), and the file's cadence
    (median positive step, s; None when no key has two distinct times)."""

    flagged: dict[str, int] = field(default_factory=dict)
    cadence_s: float | None = None
    expected_s: float | None = None  # the policy's (the model's) cadence, when known
    ignored: tuple[str, ...] = ()  # the file's columns not read: one may name the series

    def line(self) -> str:
        """One line for the console; "" when nothing is flagged and the cadences agree.

        >>> TimeReport({"repeated": 2, "late": 1_200}).line()  # doctest: +NORMALIZE_WHITESPACE
        'time: records kept in file order and flagged as a worker flags them: 2 repeated,
        1,200 late (earlier than one before); sort the file, or pass --strict-time to refuse
        repeated and late times'
        """
        parts = []
        if self.flagged:
            counts = ", ".join(f"{n:,} {name}" + (" (earlier than one before)"
                                                  if name == "late" else "")
                               for name, n in self.flagged.items())
            parts.append(f"records kept in file order and flagged as a worker flags them: "
                         f"{counts}")
            if {"repeated", "late"} & self.flagged.keys():
                parts.append("sort the file, or pass --strict-time to refuse repeated and "
                             "late times")
            if "repeated" in self.flagged and self.ignored:
                shown = ", ".join(repr(c) for c in self.ignored[:3])
                parts.append(f"if column {shown} names each row's series, call it 'series' "
                             "(each id is then its own series)")
        if self.cadence_s and self.expected_s and "late" not in self.flagged and not (
                0.5 <= self.cadence_s / self.expected_s <= 2.0):  # disorder: no cadence
            parts.append(f"the file's records are {_duration(self.cadence_s)} apart, the "
                         f"model's {_duration(self.expected_s)}: train a model on data of "
                         "this cadence")
        return f"time: {'; '.join(parts)}" if parts else ""

    def lines(self) -> str:
        """:meth:`line`, and on a line of its own the file's columns no record carries
        (they were read by nothing, without a word; a repeated time names them already);
        "" when there is nothing to say.

        >>> print(TimeReport(ignored=("temp",)).lines())  # doctest: +ELLIPSIS
        columns not read: 'temp' (a series is timestamp,value and an optional series ...)
        """
        said = [self.line()]
        if self.ignored and "repeated" not in self.flagged:
            shown = ", ".join(repr(c) for c in self.ignored[:5])
            more = ", ..." if len(self.ignored) > 5 else ""
            said.append(f"columns not read: {shown}{more} (a series is timestamp,value and an "
                        "optional series column; several features a row are feature vectors: "
                        "train --kind events)")
        return "\n".join(s for s in said if s)


def time_report(records: Sequence[Record], policy: TimePolicy,
                ignored: Sequence[str] = ()) -> TimeReport:
    """Judge each key's records in file order with ``policy`` (a fresh watermark per key);
    ``ignored``: the file's columns the records do not carry (``RecordSource.ignored``)."""
    times: dict[str, list[int]] = {}
    for r in records:
        times.setdefault(r.key, []).append(r.epoch_ns)
    arrays = [np.asarray(t, dtype=np.int64) for t in times.values()]
    counts = dict.fromkeys((name for _, name in _ORDER), 0)
    for t in arrays:
        flags = observe_many(Watermark(), t, policy)
        for bit, name in _ORDER:
            counts[name] += int(np.count_nonzero(flags & bit))
    expected = policy.cadence_ns / _NS if policy.cadence_ns else None
    return TimeReport({k: n for k, n in counts.items() if n}, cadence_s(arrays), expected,
                      tuple(ignored))


def _duration(seconds: float) -> str:
    """``300.0`` -> ``5 min``; ``86400.0`` -> ``1 day``; whole units only where exact.

    >>> _duration(300.0), _duration(86400.0), _duration(90.0), _duration(7200.0)
    ('5 min', '1 day', '90 s', '2 h')
    """
    for size, unit in ((86400, "day"), (3600, "h"), (60, "min")):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if unit == 'day' and n > 1 else ''}"
    return f"{seconds:g} s"
