"""Alerting decisions from raw model scores: normalise, compare, suppress. Pure and per key.

A reconstruction error means little on its own: a busy series has larger errors than a quiet
one, and a series drifts. So each key keeps an exponentially weighted mean and variance of
its own recent log scores, and the *detection score* is how many standard deviations the
newest log score sits above them (a z-score against the key's own history). The threshold
(from Redis, per model version and key) applies to that detection score. After an alert the
key stays quiet for ``suppress`` windows, so one incident pages once.

The same :class:`DetectorState` runs in the worker and in ``stream-detector score``, one
score at a time in arrival order, so online and offline decisions are identical::

    raw score     .2  .3  .2  .3  .2  9.0  8.0  .3  .2 ...
    z (history)    -   -   -   -   -  6.1  4.0 -.2  .. (warm-up rows give z = 0)
    z >= 4         .   .   .   .   .   A    s   .   .   (s: suppressed, same incident)

Outliers are winsorised before they update the history, so one burst does not blind the
detector to the next.

>>> params = DetectionParams(halflife=8, warmup=4, suppress=3)
>>> state = DetectorState()
>>> [decide(state, s, 4.0, params).alert for s in [.2, .3, .2, .3, .2, 9.0, 8.0, .3]]
[False, False, False, False, False, True, False, False]
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["DetectionParams", "DetectorState", "Decision", "decide", "page"]

_STATE: Final = struct.Struct("<qqddd")
_EPS: Final = 1e-12


@dataclass(frozen=True)
class DetectionParams:
    """How raw scores become alerts; stored in the model card's ``detection`` section.

    Parameters
    ----------
    halflife
        Windows after which an old score weighs half as much in the key's history.
    warmup
        Windows a key must have seen before it may alert (its history is too short before).
    suppress
        Windows after an alert during which the key does not alert again.
    clip
        Largest |z| an outlier contributes to the history (winsorising).
    min_std
        Floor of the history's standard deviation (log units), so a flat series does not
        turn every tiny wobble into a huge z.
    normalise
        False compares the raw score with the threshold (no history), as plain detectors do.
    offset
        Added to raw scores before the log: about the median training score, so that tiny
        errors (whose logs swing wildly) count as "normal" rather than as huge drops.
    """

    halflife: float = 288.0
    warmup: int = 288
    suppress: int = 288
    clip: float = 3.0
    min_std: float = 0.05
    normalise: bool = True
    offset: float = 1e-12

    @classmethod
    def from_card(cls, section: dict[str, Any] | None) -> DetectionParams:
        """Parameters from a card's ``detection`` dict; unknown keys are ignored."""
        if not section:
            return cls()
        known = {k: v for k, v in section.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @property
    def alpha(self) -> float:
        return float(1.0 - 0.5 ** (1.0 / self.halflife))


@dataclass
class DetectorState:
    """One key's detection history: 40 bytes on the wire."""

    seen: int = 0
    last_alert: int = -(2**62)
    mean: float = 0.0
    var: float = 0.0
    last_z: float = 0.0

    def to_bytes(self) -> bytes:
        return _STATE.pack(self.seen, self.last_alert, self.mean, self.var, self.last_z)

    @classmethod
    def from_bytes(cls, data: bytes) -> DetectorState:
        return cls(*_STATE.unpack(data))


@dataclass(frozen=True)
class Decision:
    """What one window's score means for its key."""

    alert: bool
    detection_score: float
    warm_up: bool
    suppressed: bool


def decide(
    state: DetectorState, raw_score: float, threshold: float, p: DetectionParams,
    learn: bool = True,
) -> Decision:
    """Update ``state`` with the newest raw score and say whether it alerts.

    ``learn=False`` judges the score against the history without adding it: the pipeline
    passes it for a window that spans a gap in the key's data (its score mixes two
    disconnected stretches, so it must not shift what is normal for the key). Such a window
    may still alert; its event carries the ``gap`` quality flag.
    """
    index = state.seen
    state.seen += 1
    if not p.normalise:
        z = raw_score
    else:
        x = math.log(max(raw_score, 0.0) + p.offset + _EPS)
        if index == 0:
            state.mean, state.var = x, 0.0
        std = max(math.sqrt(state.var), p.min_std)
        z = (x - state.mean) / std
        if learn or index == 0:
            # winsorised update: an outlier moves the history at most ``clip`` deviations
            xu = state.mean + max(-p.clip, min(p.clip, z)) * std if index > 0 else x
            delta = xu - state.mean
            state.mean += p.alpha * delta
            state.var = (1.0 - p.alpha) * (state.var + p.alpha * delta * delta)
    state.last_z = z
    warm_up = index < p.warmup
    over = z >= threshold and not warm_up
    alert = over and page(state, p)
    return Decision(alert=alert, detection_score=z, warm_up=warm_up,
                    suppressed=over and not alert)


def page(state: DetectorState, p: DetectionParams) -> bool:
    """Claim an alert for the key's newest window (already counted by :func:`decide`):
    False within ``suppress`` windows of its last alert, else True, starting a new quiet
    period. Every stage that alerts (the AE's :func:`decide`, a hybrid's NPLM test) asks
    here, so one incident pages once whichever stage saw it."""
    index = state.seen - 1
    if index - state.last_alert < p.suppress:
        return False
    state.last_alert = index
    return True
