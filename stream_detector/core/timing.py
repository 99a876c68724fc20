"""Event time of a key's records: one policy, in the worker and offline alike.

Real feeds repeat timestamps, arrive out of order, skip periods and carry clock errors.
Records are **taken in arrival order, never reordered and never dropped for their time**
(reordering needs a buffer and makes a live run differ from a replay of the same topic).
Each record is judged against its key's **watermark** ``W``, the newest time accepted so far,
and flagged; the flags travel with every window (and event) that holds the record:

==========  ==============================================  ==========================
flag        when                                            watermark
==========  ==============================================  ==========================
(none)      ``W < t <= W + allowed_skew``                   ``W = t``
repeated    ``t == W`` (clock steps, one-second feeds)      unchanged
late        ``t < W`` (out of order)                        unchanged
skewed      ``t > W + allowed_skew`` (a fast clock)         unchanged, unless ``confirm``
                                                            such records in a row agree:
                                                            then the key really jumped
                                                            ahead and ``W = t``
gap         ``t - max(W, last ahead time) > gap_steps *    (as above)
            cadence``
==========  ==============================================  ==========================

So one record stamped a day ahead is flagged ``skewed`` (and ``gap``) and the honest records
after it are not ``late``: the outlier never moved ``W``. A real jump (a 4-day hole in the
data) is accepted at its ``confirm``-th record; the ones before it are flagged ``skewed``
(a jump cannot be told from a fast clock until the records after it confirm it).
Skewed records further ahead than ``dead_letter_skew`` (a worker setting; off by default)
go to the dead-letter topic instead of into the window. ``allowed_skew`` and the gap length
are multiples of the key's expected **cadence**, learned at training and stored in the
model card (``time`` section); a card without it judges only ``late`` and ``repeated``.

Offline (``train``, ``score``, ``evaluate``) files are read in file order under the same
policy: repeated and out-of-order timestamps are accepted and counted, never refused;
``--strict-time`` refuses them as before.

>>> p = TimePolicy(cadence_ns=300, allowed_skew_ns=3600, gap_ns=900)
>>> w = Watermark()
>>> [observe(w, t, p) for t in (0, 300, 300, 86_700, 600, 200, 900)]
[0, 0, 2, 12, 0, 1, 0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "FEW_STEPS",
    "GAP",
    "IMPUTED",
    "LATE",
    "NO_TIME",
    "REPEATED",
    "SKEWED",
    "TimePolicy",
    "Watermark",
    "cadence_s",
    "count_flags",
    "flag_names",
    "observe",
    "observe_many",
    "plain_steps",
]

LATE: Final = 1
REPEATED: Final = 2
SKEWED: Final = 4
GAP: Final = 8
IMPUTED: Final = 16  # not a timing judgement: the producer filled the value in
_NAMES: Final = ((LATE, "late"), (REPEATED, "repeated"), (SKEWED, "skewed"), (GAP, "gap"),
                 (IMPUTED, "imputed"))
NO_TIME: Final = -(2**63)
_PLAIN_MIN: Final = 48  # shorter runs: the record-by-record loop is as fast (measured)
FEW_STEPS: Final = 16  # up to this many times in a list: checked in Python, not numpy
_SECOND_NS: Final = 1_000_000_000


def flag_names(flags: int) -> list[str]:
    """The names of the bits set in ``flags``.

    >>> flag_names(LATE | GAP)
    ['late', 'gap']
    """
    return [name for bit, name in _NAMES if flags & bit]


@dataclass(frozen=True)
class TimePolicy:
    """How a key's record times are judged (see the module docstring); 0 turns a rule off.

    Parameters
    ----------
    cadence_ns
        Expected time between records (ns), from the model card; 0 when unknown.
    allowed_skew_ns
        How far ahead of the watermark a record may be before it is ``skewed``.
    gap_ns
        A step longer than this between a record and the watermark is a ``gap``.
    confirm
        Consecutive records beyond the allowed skew, each within the allowed skew of the
        one before, that make the watermark jump (a real gap, not a fast clock).
    dead_letter_ns
        Skewed records further ahead than this are dead-lettered (0: never).
    """

    cadence_ns: int = 0
    allowed_skew_ns: int = 0
    gap_ns: int = 0
    confirm: int = 3
    dead_letter_ns: int = 0

    @classmethod
    def from_cadence(
        cls, cadence_s: float | None, *, skew_steps: float = 12.0, gap_steps: float = 3.0,
        confirm: int = 3, dead_letter_s: float = 0.0,
    ) -> TimePolicy:
        """The policy for records every ``cadence_s`` seconds (None: unknown cadence).

        >>> TimePolicy.from_cadence(300.0).allowed_skew_ns // 10**9  # 12 steps: an hour
        3600
        """
        dead = int(dead_letter_s * _SECOND_NS)
        if not cadence_s or cadence_s <= 0:
            return cls(dead_letter_ns=0)
        step = cadence_s * _SECOND_NS
        return cls(int(step), int(skew_steps * step), int(gap_steps * step), max(1, confirm),
                   dead)

    @cached_property
    def plain_step_ns(self) -> int:
        """Steps up to this long from the watermark raise no flag (a fast path's bound)."""
        bounds = [b for b in (self.allowed_skew_ns, self.gap_ns) if b]
        return min(bounds) if bounds else 2**63 - 1

    def is_dead_letter(self, flags: int, ahead_ns: int) -> bool:
        """Whether a record with ``flags``, ``ahead_ns`` past the watermark, is refused."""
        return bool(flags & SKEWED) and 0 < self.dead_letter_ns < ahead_ns

    def refusal(self, text: str, ahead_ns: int) -> str:
        """The dead letter's message for a record refused by :meth:`is_dead_letter`."""
        return (f"timestamp {text} is {ahead_ns / 1e9:.0f} s ahead of the key's watermark, "
                f"beyond the dead-letter tolerance of {self.dead_letter_ns / 1e9:.0f} s "
                "(STREAM_DETECTOR_DEAD_LETTER_SKEW); fix the producer's clock")


def count_flags(counts: dict[int, int], flags: int) -> None:
    """Add one record's ``flags`` to ``counts`` (bit -> records), for metrics."""
    for bit, _ in _NAMES:
        if flags & bit:
            counts[bit] = counts.get(bit, 0) + 1


@dataclass
class Watermark:
    """A key's event-time position: the newest accepted time and any run of ahead records."""

    newest_ns: int = NO_TIME
    ahead: int = 0  # consecutive records beyond the allowed skew
    ahead_ns: int = NO_TIME  # the time of the latest of them


def observe(w: Watermark, t: int, p: TimePolicy) -> int:
    """Judge one record's time ``t`` (ns) against ``w``, advance ``w``; return its flags."""
    newest = w.newest_ns
    if t <= newest or newest == NO_TIME:
        if newest == NO_TIME:
            w.newest_ns = t
            return 0
        return LATE if t < newest else REPEATED
    step = t - newest
    # a gap lies between this record and the newest time seen, skewed ones included: the
    # records that confirm a jump are not gaps again, an honest one after an outlier none
    since = t - w.ahead_ns if w.ahead else step
    flags = GAP if p.gap_ns and since > p.gap_ns else 0
    if p.allowed_skew_ns and step > p.allowed_skew_ns:
        follows = w.ahead and w.ahead_ns <= t <= w.ahead_ns + p.allowed_skew_ns
        w.ahead = w.ahead + 1 if follows else 1
        w.ahead_ns = t
        if w.ahead < p.confirm:
            return flags | SKEWED
    w.newest_ns, w.ahead = t, 0
    return flags


def plain_steps(w: Watermark, times: Sequence[int] | npt.NDArray[np.int64], p: TimePolicy,
                min_run: int = _PLAIN_MIN) -> bool:
    """Whether every one of ``times`` (in arrival order; a list or an int64 array ``(n,)``,
    nanoseconds) is a plain step: strictly after
    the one before (the first: after the watermark), by at most ``p.plain_step_ns``, with
    no ahead run open. Then :func:`observe` would flag none of them and only move the
    watermark to the last one, which this does (and returns True); otherwise nothing
    changes (False). Runs shorter than ``min_run`` records (default 48: for them the
    record-by-record loop is as fast) are left to :func:`observe` (False). A list of up to
    :data:`FEW_STEPS` times is checked in Python (numpy's five calls cost more there).

    >>> w = Watermark(newest_ns=0)
    >>> plain_steps(w, list(range(300, 15_300, 300)), TimePolicy(300, 3600, 900)), w.newest_ns
    (True, 15000)
    >>> plain_steps(w, [15_000] + list(range(15_300, 30_000, 300)), TimePolicy(300))
    False
    """
    n = len(times)
    if n < min_run or n == 0 or w.ahead or w.newest_ns == NO_TIME:
        return False
    if n <= FEW_STEPS and isinstance(times, list):  # a few ints: numpy's calls cost more
        before, most = w.newest_ns, p.plain_step_ns
        for t_ns in times:
            if not 0 < t_ns - before <= most:
                return False
            before = t_ns
        w.newest_ns = before
        return True
    t = np.empty(n + 1, dtype=np.int64)  # from a list: ~6 of its ~15 us for 100 times
    t[0], t[1:] = w.newest_ns, times
    steps = t[1:] - t[:-1]
    if np.minimum.reduce(steps) <= 0 or np.maximum.reduce(steps) > p.plain_step_ns:
        return False
    w.newest_ns = int(times[-1])
    return True


def observe_many(w: Watermark, times: npt.NDArray[np.int64], p: TimePolicy) -> npt.NDArray[np.int8]:
    """:func:`observe` over ``times`` (n,) in arrival order; flags (n,) as int8.

    The common case (strictly increasing, no step beyond the allowed skew) is one
    vectorised pass; anything else falls back to the per-record rule.

    >>> w = Watermark()
    >>> observe_many(w, np.array([0, 300, 1500, 1800]), TimePolicy(300, 3600, 900)).tolist()
    [0, 0, 8, 0]
    """
    t = np.asarray(times, dtype=np.int64)
    if t.size == 0:
        return np.zeros(0, dtype=np.int8)
    if w.newest_ns != NO_TIME and w.ahead == 0:
        steps = np.diff(t, prepend=w.newest_ns)
        if steps.min() > 0 and (not p.allowed_skew_ns or steps.max() <= p.allowed_skew_ns):
            w.newest_ns = int(t[-1])
            if not p.gap_ns:
                return np.zeros(t.size, dtype=np.int8)
            return np.where(steps > p.gap_ns, GAP, 0).astype(np.int8)
    return np.fromiter((observe(w, int(x), p) for x in t), dtype=np.int8, count=t.size)


def cadence_s(times_by_key: list[npt.NDArray[np.int64]]) -> float | None:
    """The expected seconds between a key's records: the median positive step, over keys.

    Repeated and out-of-order times do not count; None when no key has two distinct times.

    >>> cadence_s([np.array([0, 300, 600, 600, 900]) * 10**9, np.array([0, 300]) * 10**9])
    300.0
    """
    steps = [np.diff(np.asarray(t, dtype=np.int64)) for t in times_by_key if len(t) > 1]
    flat = np.concatenate(steps) if steps else np.zeros(0, dtype=np.int64)
    flat = flat[flat > 0]
    return float(np.median(flat)) / _SECOND_NS if flat.size else None
