"""The NPLM stage of the hybrid detector, per key and per model: pure, no I/O.

The AE stage judges each window alone; the NPLM stage asks whether a key's *recent sample*
of windows is distributed like normal history, which finds shifts too subtle for any one
window to cross a threshold (seed 000's hybrid; see :mod:`stream_detector.core.nplm`)::

    window     w1  w2  w3 ... w250 w251 ... w300 ... w350
    raw <= ae   y   y   n ...   y    y  ...   y  ...   y    (n: left to the AE stage)
    ring       [w1 w2 w4 ... w251]                          full (N_D = sample_size)
    test                          T          T         T    every ``every`` new windows

Each test fits the linear NPLM of the ring against the card's reference sample (basis and
``phi(R)`` are built once per loaded model, here, never per window) and turns
``t = -2 min L`` into a p-value, ``p_shape``. Windows the AE stage takes enter no sample, but
the ring counts them: when the card has a ``flag_rate`` (the reference's share of windows
over ``ae_threshold``), the count inside the sample's span gets its own p-value, ``p_count``
(negative binomial: ``nplm.flagged_count_sf``), and the sample's p-value is the two combined
by Fisher's method. So a sample with a few too many obvious anomalies is a sample anomaly
too, which the shape test alone, blind to the windows taken out, could not see. The p-value
belongs to the sample, never to one window:
``p < alpha`` is a *sample event* (``AnomalyEvent.sample`` set):

- ``window_start`` / ``window_end``: the oldest window in the sample / the newest;
  ``event_id`` is the usual hash of model, version, key and ``window_end``;
- ``sample``: the test (N_D, N_R, t, dof, p-value, alpha); ``p_value`` the same p-value;
- ``score = -log10 p`` against ``threshold = -log10 alpha`` (method ``fpr``), so that, as for
  every event, the score exceeds the threshold; ``raw_score`` is t; observed, expected and
  contributors are the newest window's (the one that completed the sample);
- ``severity = min(100, -10 log10 p)``: 20 at p = 0.01, 50 at 1e-5, 100 from 1e-10.

AE-stage events are single windows and carry no p-value. Every test's p-value, alerting or
not, is in ``stream-detector score``'s ``p_value`` column on the row of the window that
completed the sample.

A key's ring (:class:`SampleRing`) holds ``sample_size`` float32 feature rows and each
window's start timestamp text: about ``sample_size * (4 * width + 25)`` bytes of state.

Cost (measured, 2 shared CPU cores): one test with N_R 1200-2000 and N_D 200-250 takes
0.7-1.6 ms (four Newton steps); the per-window bookkeeping about 3.5 us, so ``every = 50``
adds 15-30 us per window on average.

Calibration: ``chi2(dof)`` holds when a key's windows are independent draws, as feature
events (window 1) are; measured on generated background events, 1.1% of 640 tests had
p < 0.01. Overlapping windows of one series are not independent, and a seasonal series'
local sample differs from history spread over all seasons: there every test came out near
p = 0 on a synthetic series' own training data. For series, read the p-value as a ranking,
or use a stride of one window and a longer sample. On NAB realTweets the hybrid finds 32 of
33 windows but, as a drift test on drifting counts, alerts about once a day per series
(standard score 20.7 against the dense AE's 60.6): it is the detector for feature events.

An NPLM alert obeys the key's quiet period (``detection.suppress``) like an AE alert and
starts one: one incident pages once, whichever stage saw it first.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from schemas.card import ModelCard, NPLMCard
from schemas.events import AnomalyEvent, SampleTest, ThresholdSource
from stream_detector.core.nplm import (
    NPLMResult,
    combine_p_values,
    flagged_count_sf,
    nplm_numpy_basis,
    nplm_numpy_test,
    window_features,
)
from stream_detector.core.thresholds import ResolvedThreshold

__all__ = ["HybridStage", "NPLMOutcome", "SampleRing", "p_value_severity"]

_MAGIC_V1: Final = b"SDS1"  # rows and texts only (read, never written)
_HEADER_V1: Final = struct.Struct("<4sIIqdI")  # magic, capacity, width, count, last p, text
_MAGIC: Final = b"SDS2"  # plus the AE stage's windows counted per row
_HEADER: Final = struct.Struct("<4sIIqdII")  # ... last p, windows pending, text bytes


def p_value_severity(p_value: float) -> float:
    """0-100 from a p-value: ``min(100, -10 log10 p)``.

    >>> [p_value_severity(p) for p in (1.0, 0.01, 1e-10, 0.0)]
    [0.0, 20.0, 100.0, 100.0]
    """
    if p_value <= 0.0:
        return 100.0
    return min(100.0, max(0.0, -10.0 * math.log10(p_value)))


class SampleRing:
    """One key's most recent ``capacity`` NPLM feature rows, oldest overwritten first.

    Windows the AE stage takes (raw score over ``ae_threshold``) enter no row, but each row
    remembers how many came just before it (:meth:`skip`), so the sample's span knows how
    many of its windows the AE stage took (:meth:`flagged`).
    """

    __slots__ = ("capacity", "width", "count", "last_p", "pending", "_values", "_texts",
                 "_skipped")

    def __init__(self, capacity: int, width: int) -> None:
        if capacity < 1 or width < 1:
            raise ValueError("a sample ring needs capacity >= 1 and width >= 1")
        self.capacity = capacity
        self.width = width
        self.count = 0  # rows pushed so far
        self.last_p = math.nan  # p-value of the latest test; NaN before the first
        self.pending = 0  # AE-stage windows since the newest row
        self._values = np.zeros((capacity, width), dtype=np.float32)
        self._texts: list[str] = [""] * capacity
        self._skipped = np.zeros(capacity, dtype=np.uint32)  # AE-stage windows before a row

    def push(self, features: list[float], start_text: str) -> None:
        """Add one window's features (and its start timestamp, for the event)."""
        at = self.count % self.capacity
        self._values[at] = features
        self._texts[at] = start_text
        self._skipped[at] = min(self.pending, 0xFFFFFFFF)
        self.pending = 0
        self.count += 1

    def skip(self) -> None:
        """Count one window the AE stage took (it enters no row)."""
        self.pending += 1

    def flagged(self) -> int:
        """AE-stage windows inside the sample's span (after its oldest row, before now)."""
        order = self._order()
        return int(self._skipped[order[1:]].sum()) + self.pending if order else self.pending

    @property
    def full(self) -> bool:
        return self.count >= self.capacity

    def _order(self) -> list[int]:
        n = min(self.count, self.capacity)
        first = self.count % self.capacity if self.full else 0
        return [(first + j) % self.capacity for j in range(n)]

    def sample(self) -> npt.NDArray[np.float64]:
        """The held rows, oldest first (a fixed order: restored and live rings sum alike)."""
        return self._values[self._order()].astype(np.float64)

    def oldest_text(self) -> str:
        """Start timestamp of the oldest window held."""
        order = self._order()
        return self._texts[order[0]] if order else ""

    def to_bytes(self) -> bytes:
        """Header + float32 rows + uint32 AE-stage counts (oldest first) + start texts."""
        order = self._order()
        text = "\n".join(self._texts[i] for i in order).encode("utf-8")
        head = _HEADER.pack(_MAGIC, self.capacity, self.width, self.count, self.last_p,
                            min(self.pending, 0xFFFFFFFF), len(text))
        return (head + self._values[order].astype("<f4", copy=False).tobytes()
                + self._skipped[order].astype("<u4", copy=False).tobytes() + text)

    @classmethod
    def from_bytes(cls, data: bytes) -> SampleRing:
        """Rebuild a ring written by :meth:`to_bytes` (or the older SDS1 layout, without
        AE-stage counts: they read as 0); rejects anything malformed."""
        v1 = data[:4] == _MAGIC_V1
        header = _HEADER_V1 if v1 else _HEADER
        if len(data) < header.size:
            raise ValueError("sample ring is truncated")
        if v1:
            magic, capacity, width, count, last_p, n_text = header.unpack_from(data)
            pending = 0
        else:
            magic, capacity, width, count, last_p, pending, n_text = header.unpack_from(data)
        if magic not in (_MAGIC, _MAGIC_V1) or count < 0:
            raise ValueError("not a sample ring (bad magic or counter)")
        ring = cls(capacity, width)
        n = min(count, capacity)
        n_counts = 0 if v1 else n * 4
        if len(data) != header.size + n * width * 4 + n_counts + n_text:
            raise ValueError("sample ring length does not match its header")
        rows = np.frombuffer(data, "<f4", n * width, header.size).reshape(n, width)
        at = header.size + n * width * 4
        skipped = np.frombuffer(data, "<u4", n, at) if not v1 else np.zeros(n, np.uint32)
        texts = data[at + n_counts :].decode("utf-8").split("\n") if n else []
        if len(texts) != n:
            raise ValueError("sample ring texts do not match its row count")
        ring.count, ring.last_p, ring.pending = count, last_p, pending
        for j, slot in enumerate(ring._order()):
            ring._values[slot] = rows[j]
            ring._texts[slot] = texts[j]
            ring._skipped[slot] = skipped[j]
        return ring


@dataclass(frozen=True)
class NPLMOutcome:
    """One NPLM test of a key's sample."""

    t: float
    dof: int
    p_value: float  # the sample's: shape and count combined (shape alone without a rate)
    alert: bool  # p_value < alpha
    p_shape: float = math.nan  # NPLM of the kept windows against the reference
    p_count: float = math.nan  # of the windows the AE stage took inside the span
    flagged: int = 0  # how many the AE stage took inside the span


class HybridStage:
    """A hybrid model's NPLM stage: reference basis cached once, tests run on key rings."""

    def __init__(self, card: ModelCard, section: NPLMCard) -> None:
        reference = np.asarray(section.reference, dtype=np.float64)
        self.section = section
        self.basis = nplm_numpy_basis(reference, section.degree)
        self.phi_reference = self.basis(reference)  # (N_R, dof): the costly part, once
        # sample events compare -log10 p with -log10 alpha: higher = more anomalous
        self.threshold = ResolvedThreshold(
            -math.log10(section.alpha),
            ThresholdSource(method="fpr", version=card.version, scope="card_default"),
        )

    @classmethod
    def from_card(cls, card: ModelCard) -> HybridStage | None:
        """The stage of a hybrid card with an ``nplm`` section; None for other models."""
        section = card.nplm_card()
        return None if section is None else cls(card, section)

    def new_ring(self) -> SampleRing:
        return SampleRing(self.section.sample_size, self.section.width)

    def fits(self, ring: SampleRing | None) -> bool:
        """Whether a key's existing ring has this stage's shape."""
        return ring is not None and (ring.capacity, ring.width) == (
            self.section.sample_size, self.section.width)

    def features(self, raw: float, errors: npt.NDArray[np.float32]) -> list[float]:
        """One window's NPLM features (:func:`~stream_detector.core.nplm.window_features`);
        ``errors`` (window, features)."""
        return window_features(raw, errors)

    def test(self, ring: SampleRing) -> NPLMResult:
        """The NPLM test of the ring's sample against the reference."""
        return nplm_numpy_test(self.basis, self.phi_reference, ring.sample(),
                               ridge=self.section.ridge, phi_reference=True)

    def observe(
        self, ring: SampleRing, raw: float, errors: npt.NDArray[np.float32], start_text: str
    ) -> NPLMOutcome | None:
        """Add one scored window to the key's ring; test when due, else None."""
        if not raw <= self.section.ae_threshold:  # the AE stage's (NaN too: a broken score)
            if raw == raw:
                ring.skip()
            return None
        ring.push(self.features(raw, errors), start_text)
        over = ring.count - ring.capacity
        if over < 0 or over % self.section.every:
            return None
        return self.outcome(ring, self.test(ring))

    def outcome(self, ring: SampleRing, shape: NPLMResult) -> NPLMOutcome:
        """The sample's p-value: the NPLM shape test of its kept windows, combined (Fisher)
        with how unlikely the number the AE stage took inside its span is at the card's
        ``flag_rate``. Under the null the two are independent (given the count, the kept
        windows are draws of the truncated reference), so the combination is calibrated."""
        rate, flagged = self.section.flag_rate, ring.flagged()
        p_value, p_count = shape.p_value, math.nan
        if rate is not None:
            p_count = flagged_count_sf(flagged, ring.capacity, rate)
            p_value = combine_p_values(shape.p_value, p_count)
        ring.last_p = p_value
        return NPLMOutcome(shape.t, shape.dof, p_value, p_value < self.section.alpha,
                           shape.p_value, p_count, flagged)

    def nplm_event(self, event: AnomalyEvent, ring: SampleRing, outcome: NPLMOutcome
                   ) -> AnomalyEvent:
        """Turn the newest window's event (built against :attr:`threshold`) into the
        sample's: its span, its test, ``score = -log10 p``, ``raw_score = t``."""
        quality = event.quality.model_copy(update={"warm_up": False})
        test = SampleTest(size=min(ring.count, ring.capacity),
                          reference_size=len(self.phi_reference), t=outcome.t,
                          dof=outcome.dof, p_value=outcome.p_value, alpha=self.section.alpha,
                          p_shape=outcome.p_shape, flagged=outcome.flagged,
                          p_count=None if math.isnan(outcome.p_count) else outcome.p_count)
        score = -math.log10(outcome.p_value) if outcome.p_value > 0 else math.inf
        return event.model_copy(update={
            "window_start": ring.oldest_text(), "p_value": outcome.p_value, "sample": test,
            "score": min(score, 1e300), "raw_score": outcome.t,
            "severity": p_value_severity(outcome.p_value), "quality": quality})
