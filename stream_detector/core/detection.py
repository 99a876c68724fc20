"""Alerting decisions from raw model scores and values: normalise, combine, compare, suppress.

A reconstruction error means little on its own: a busy series has larger errors than a quiet
one, and a series drifts. So each key keeps running statistics of its own history and every
*component* is a z-score against them (how many standard deviations the newest observation
sits from the key's usual):

- ``ae``: the log of the model's raw score (reconstruction error), one-sided (high = odd);
- ``value``: the newest value minus a short-term forecast (its recent level and slope),
  two-sided (spikes and dips the AE smooths over), with a trust of its own
  (``value_gate``); it joins the detection score after the likelihood stage, which looks
  for runs, not single windows;
- ``burst``: the log of a short-term mean of squared ``value`` z-scores: a stretch of
  several times the usual noise (a variance burst) whose single windows stay under the
  threshold, and with ``collapse`` a stretch of far less noise than usual (a value stuck
  at one reading, a flat line); with a trust like ``value``'s, and joining where it does;
- ``season``: the newest value minus the value one season earlier (``season`` windows ago,
  a day by default, see :func:`season_rows`), two-sided: level shifts, a missing daily peak,
  a flattened day, values that are normal for the series but not at that time of day;
- ``shift``: a short-term mean (half-life ``shift_halflife``) of that seasonal difference,
  two-sided: a level shift or a slow ramp too small per window for ``season`` but sustained
  (a CUSUM-like statistic on the seasonal residuals, z-scored against its own history, so a
  series whose residuals wander anyway is not flagged). Its longer-term baseline can follow
  a slope (``shift_trend``: a weekly pattern's day-over-day drift) and hold still during a
  shift (``shift_hold``).

How each is computed lives in :mod:`stream_detector.core.components`, with the *trust* in
the seasonal component (``season_gate``): its weight shrinks on a key whose seasonal
z-scores exceed 3 far more often than Gaussian residuals would (bursty, heavy-tailed series),
so one threshold keeps meaning "rare for this key".

The *detection score* is the largest weighted component (``ae`` weighs 1), optionally
smoothed over a short half-life, and the threshold (from Redis, per model version and key)
applies to it. After an alert the key stays quiet for ``suppress`` windows, so one incident
pages once, at its start; on a key whose values burst often and far, the next page also
needs a score near the last page's (``habituate``, a bar that halves every
``habituate_halflife`` windows), since such an incident is followed by more bursts of its
size (``habituate_ae`` when the AE component leads the window: its isolated excursions are
heavy-tailed on such keys). With ``confirm`` a window pages only when the key's previous
window was high too (``confirm`` x threshold) or the short-term forecast alone sees a
spike, so a one-window blip of the AE does not page. A key may alert only after
``warmup`` windows; during the warm-up its statistics are plain running means (every
observation weighs the same), afterwards exponentially weighted (``halflife``) and
winsorised at ``clip`` deviations, so one burst
does not blind the key to the next.

The same :class:`DetectorState` (its fields and bytes in
:mod:`stream_detector.core.detector_state`) runs in the worker and in
``stream-detector score``, one window at a time in arrival order, so online and offline
decisions are identical::

    raw score     .2  .3  .2  .3  .2  9.0  8.0  .3  .2 ...
    z (history)    -   -   -   -   -  6.1  4.0 -.2  .. (the first window gives z = 0)
    z >= 4         .   .   .   .   .   A    s   .   .   (s: suppressed, same incident)

>>> params = DetectionParams(halflife=8, warmup=4, suppress=3)
>>> state = DetectorState()
>>> [decide(state, s, 4.0, params).alert for s in [.2, .3, .2, .3, .2, 9.0, 8.0, .3]]
[False, False, False, False, False, True, False, False]
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Final

from stream_detector.core.components import (
    habituation_bar,
    likelihood_z,
    running_z,
    value_components,
)
from stream_detector.core.detector_state import DetectorState
from stream_detector.core.recurrence import RECUR_MAX, RECUR_MEMORY_MAX, keep, observe, recurs
from stream_detector.exceptions import ModelCardError

__all__ = ["DetectionParams", "DetectorState", "Decision", "MAX_SEASON", "STATE_LIMITS",
           "alerts_of", "decide", "page", "season_rows"]

_EPS: Final = 1e-12
_DAY_NS: Final = 86_400 * 10**9
MAX_SEASON: Final = 2016  # longest seasonal ring (a week of 5-minute steps; 8 KiB per key)
# The settings that size every key's state, and their largest values.
STATE_LIMITS: Final = {"season": MAX_SEASON, "recur": RECUR_MAX,
                       "recur_memory": RECUR_MEMORY_MAX}


def season_rows(cadence_ns: float) -> int:
    """Windows per season for a cadence: a day, or a week when a day is one step or less;
    0 (no seasonal component) when that exceeds :data:`MAX_SEASON` or the cadence is unknown.

    >>> season_rows(300e9), season_rows(86_400e9), season_rows(1e9)
    (288, 7, 0)
    """
    if not cadence_ns > 0:
        return 0
    rows = round(_DAY_NS / cadence_ns)
    if rows <= 1:
        rows = round(7 * _DAY_NS / cadence_ns)
    return rows if 1 < rows <= MAX_SEASON else 0


@dataclass(frozen=True)
class DetectionParams:
    """How raw scores become alerts; stored in the model card's ``detection`` section.

    Parameters
    ----------
    halflife
        Windows after which an old observation weighs half as much in the key's history.
    warmup
        Windows a key must have seen before it may alert (its history is too short before).
    suppress
        Windows after an alert during which the key does not alert again.
    clip
        Largest |z| an outlier contributes to the history (winsorising).
    min_std
        Floor of the AE history's standard deviation (log units), so a flat series does not
        turn every tiny wobble into a huge z.
    normalise
        False compares the raw score with the threshold (no history), as plain detectors do.
    offset
        Added to raw scores before the log: about the median training score, so that tiny
        errors (whose logs swing wildly) count as "normal" rather than as huge drops.
    value_weight, season_weight, shift_weight
        Weights of the ``value``, ``season`` and ``shift`` components (0 switches one off;
        ``shift`` needs the ``season`` component).
    season
        Windows per season (:func:`season_rows`); 0 switches the ``season`` component off.
    rel_floor
        Floor of the value and seasonal standard deviations, as a share of the standard
        deviation of the values themselves (a noiseless series is not infinitely surprising).
    smooth
        Half-life (windows) of the short-term mean the threshold applies to; 0: none.
    season_alpha
        Weight of the newest season in the seasonal baseline (an exponentially weighted
        mean per step of the season; 1: the value one season ago).
    local_halflife, value_trend
        Half-life (windows) of the short-term level the ``value`` component forecasts with,
        and the smoothing of its slope (Holt's linear method; 0: the level alone).
    value_gate, value_ref
        Trust in the ``value`` component
        (:func:`~stream_detector.core.components.value_trust`; 0 switches it off): its rate
        of |z| > ``gate_cut`` episodes against ``value_ref`` and their size against Gaussian
        ones.
    shift_halflife, shift_base
        Half-lives (windows) of the short- and the longer-term mean of seasonal differences;
        ``shift`` is their difference (the longer one follows weekly drift and trends).
    shift_trend, shift_hold
        The longer-term mean's slope smoothing (Holt's linear method, so it follows the
        day-over-day drift of a weekly pattern without lag; 0: no slope), and the |z| of
        ``shift`` above which that mean and slope hold still (a level shift is not learnt
        while it lasts; 0: never).
    habituate, habituate_halflife
        The bar a key's last page sets for its next
        (:func:`~stream_detector.core.components.habituation_bar`): ``habituate`` times
        (1 - the ``value`` component's trust) times the last page's detection score, halving
        every ``habituate_halflife`` windows; 0 switches it off.
    burst_weight, burst_halflife, burst_gate
        The ``burst`` component (:func:`~stream_detector.core.components.burst_z`): weight
        (0 switches it off), half-life (windows) of its short-term mean of squared ``value``
        z-scores, and its trust (like ``value_gate``, with ``value_ref``; 0: none).
    collapse
        Weight of the ``burst`` component's lower side, a collapse of the noise (a sensor
        stuck at one reading; 0: more noise only, as a variance burst).
    habituate_ae
        ``habituate`` for a window whose detection score is the ``ae`` component's (a
        reconstruction-error excursion, heavy-tailed on bursty keys; 0: ``habituate``).
    value_excess
        Half-life, as a share of ``halflife``, of the part of the ``value`` residual's
        variance that its exceedances (|z| > ``gate_cut``) added
        (:func:`~stream_detector.core.components.residual_z`): below 1 the spread an anomaly
        widened comes back faster than the key's noise level changes; 1: as the rest.
    confirm
        Share of the threshold the key's previous window's detection score must reach for a
        window over the threshold to page (0: off): a one-window blip of the AE or the
        seasonal components does not page, the excursion's second window does; a window
        whose ``value`` or ``burst`` component alone reaches the threshold (a one-window
        spike the short-term forecast sees) pages at once. Training sets it only at steps
        of up to 15 minutes (:data:`offline_training.durations.CONFIRM_STEP_S`): an hourly
        or daily window is an incident on its own.
    recur, recur_memory, recur_corr, recur_size, recur_lag, recur_horizon, recur_trust
        Recurrence (:mod:`stream_detector.core.recurrence`): a key keeps the shapes (its last
        ``recur`` values, the model's window by default) of its last ``recur_memory`` pages
        (0: off), and a window that repeats one kept within ``recur_horizon`` windows
        (Pearson r >= ``recur_corr`` at a shift of up to ``recur_lag`` x ``recur`` values,
        at most ``recur_size`` times its size) does not page while the ``value``
        component's trust is below ``recur_trust`` (a bursty key; above 1: every key).
    season_gate, gate_ref, gate_cut, gate_halflife
        Trust in the ``season`` component (:func:`~stream_detector.core.components.season_trust`):
        its weight is scaled by ``min(1, gate_ref / rate) ** season_gate``, ``rate`` being
        the key's exponentially weighted (half-life ``gate_halflife`` windows) share of
        windows with a seasonal |z| above ``gate_cut``; 0 switches the scaling off.
    likelihood_weight, likelihood_halflife, likelihood_base
        The anomaly-likelihood stage (:func:`~stream_detector.core.components.likelihood_z`):
        weight of the z of a short-term mean (half-life ``likelihood_halflife`` windows) of
        the detection score against its long-term distribution (half-life
        ``likelihood_base`` x ``halflife``); 0 switches it off. 5.5 / 4.265 = 1.29 alerts
        at likelihood 0.99999 (Numenta's alert level) under the default threshold 5.5.
    """

    halflife: float = 288.0
    warmup: int = 288
    suppress: int = 288
    clip: float = 3.0
    min_std: float = 0.05
    normalise: bool = True
    offset: float = 1e-12
    value_weight: float = 0.0
    season_weight: float = 0.0
    season: int = 0
    rel_floor: float = 0.05
    smooth: float = 0.0
    season_alpha: float = 1.0
    local_halflife: float = 6.0
    shift_weight: float = 0.0
    shift_halflife: float = 6.0
    shift_base: float = 96.0
    season_gate: float = 0.0
    gate_ref: float = 0.006
    gate_cut: float = 3.0
    gate_halflife: float = 2016.0
    likelihood_weight: float = 0.0
    likelihood_halflife: float = 10.0
    likelihood_base: float = 7.0
    value_trend: float = 0.0
    value_gate: float = 0.0
    value_ref: float = 0.005
    shift_trend: float = 0.0
    shift_hold: float = 0.0
    burst_weight: float = 0.0
    burst_halflife: float = 12.0
    burst_gate: float = 0.0
    habituate: float = 0.0
    habituate_halflife: float = 720.0
    habituate_ae: float = 0.0
    value_excess: float = 1.0
    confirm: float = 0.0
    collapse: float = 0.0
    recur: int = 0
    recur_memory: int = 0
    recur_corr: float = 0.825
    recur_size: float = 1.2
    recur_lag: float = 0.25
    recur_horizon: int = 8640
    recur_trust: float = 0.5

    @classmethod
    def from_card(cls, section: dict[str, Any] | None) -> DetectionParams:
        """Parameters from a card's ``detection`` dict; unknown keys are ignored.

        Raises :class:`~stream_detector.exceptions.ModelCardError` when ``recur`` or
        ``recur_memory``, which size every key's state, is over its limit (a hand-edited
        card: ``train`` refuses such a config, and an explicit ``season`` over
        :data:`MAX_SEASON` too, which older cards may hold and still load)."""
        if not section:
            return cls()
        known = {k: v for k, v in section.items() if k in cls.__dataclass_fields__}
        for name in ("recur", "recur_memory"):
            most = STATE_LIMITS[name]
            if isinstance(known.get(name), int | float) and known[name] > most:
                raise ModelCardError(f"card.json detection.{name} is {known[name]}, over "
                                     f"its limit {most} (it sizes every key's state); "
                                     "retrain with a smaller value")
        return cls(**known)

    @property
    def alpha(self) -> float:
        return float(1.0 - 0.5 ** (1.0 / self.halflife))

    @property
    def smooth_alpha(self) -> float:
        return float(1.0 - 0.5 ** (1.0 / self.smooth)) if self.smooth > 0 else 1.0

    @property
    def local_alpha(self) -> float:
        return float(1.0 - 0.5 ** (1.0 / self.local_halflife))

    @property
    def shift_alpha(self) -> float:
        return float(1.0 - 0.5 ** (1.0 / self.shift_halflife))

    @property
    def shift_base_alpha(self) -> float:
        return float(1.0 - 0.5 ** (1.0 / self.shift_base))

    @property
    def value_excess_alpha(self) -> float:
        return float(1.0 - 0.5 ** (1.0 / max(self.value_excess * self.halflife, _EPS)))

    @property
    def burst_alpha(self) -> float:
        return float(1.0 - 0.5 ** (1.0 / self.burst_halflife))

    @property
    def gate_alpha(self) -> float:
        return float(1.0 - 0.5 ** (1.0 / self.gate_halflife))

    @property
    def likelihood_alpha(self) -> float:
        return float(1.0 - 0.5 ** (1.0 / self.likelihood_halflife))

    @property
    def likelihood_base_alpha(self) -> float:
        return float(1.0 - 0.5 ** (1.0 / (self.likelihood_base * self.halflife)))

    @property
    def uses_value(self) -> bool:
        """Whether :func:`decide` needs each window's newest value."""
        return self.normalise and (self.value_weight > 0 or self.season_weight > 0
                                   or self.burst_weight > 0 or self.recurrent)

    @property
    def recurrent(self) -> bool:
        """Whether pages keep their shapes and a recurrence of one does not page
        (:mod:`stream_detector.core.recurrence`)."""
        return self.normalise and self.recur > 0 and self.recur_memory > 0


_HISTORY: Final = tuple(f.name for f in fields(DetectorState) if f.name not in (
    "seen", "last_alert", "last_z", "alert_z", "recent", "shapes", "shape_at"))


@dataclass(frozen=True)
class Decision:
    """What one window's score means for its key."""

    alert: bool
    detection_score: float
    warm_up: bool
    suppressed: bool


def decide(
    state: DetectorState, raw_score: float, threshold: float, p: DetectionParams,
    value: float = math.nan, learn: bool = True,
) -> Decision:
    """Update ``state`` with the newest raw score (and ``value``, the window's newest value,
    when :attr:`DetectionParams.uses_value`) and say whether it alerts.

    ``learn=False`` judges the score against the history without adding it: the pipeline
    passes it for a window that spans a gap in the key's data (its score mixes two
    disconnected stretches, so it must not shift what is normal for the key). Such a window
    may still alert; its event carries the ``gap`` quality flag.
    """
    index = state.seen
    before = state.last_z  # the key's previous window's detection score
    z, point, ae = _update(state, raw_score, p, value, learn)
    warm_up = index < p.warmup
    over = z >= threshold and not warm_up
    alert = (over and _confirmed(before, point, threshold, p)
             and z >= habituation_bar(state, p, ae >= z) and _claim(state, p))
    return Decision(alert=alert, detection_score=z, warm_up=warm_up,
                    suppressed=over and not alert)


def alerts_of(
    state: DetectorState, raw_scores: Sequence[float], threshold: float, p: DetectionParams,
    values: Sequence[float] | None = None, learn: Sequence[bool] | None = None,
) -> list[tuple[int, float]]:
    """:func:`decide` for consecutive scores of one key (``values``, ``learn``: each
    one's, default NaN and True), keeping only the alerts: ``(index in raw_scores,
    detection score)``. The state ends as ``decide`` leaves it; an alert is never warm-up
    nor suppressed, so these pairs are its whole decision."""
    if not p.normalise and len(raw_scores) > 3 and not any(
            map(float(threshold).__le__, raw_scores)):
        # raw scores compared as they are and none reaches the threshold: what the loop
        # below would do (each one counted, none alerts), in one step
        state.seen += len(raw_scores)
        state.last_z = raw_scores[-1]
        return []
    out: list[tuple[int, float]] = []
    nan = math.nan
    for i, raw in enumerate(raw_scores):
        index = state.seen
        before = state.last_z
        z, point, ae = _update(state, raw, p, nan if values is None else values[i],
                               True if learn is None else learn[i])
        if z >= threshold and index >= p.warmup and _confirmed(
                before, point, threshold, p) and z >= habituation_bar(
                state, p, ae >= z) and _claim(state, p):
            out.append((i, z))
    return out


def _claim(state: DetectorState, p: DetectionParams) -> bool:
    """:func:`page`, unless the key's last values repeat the shape of one of its recent
    pages (``recur_memory``, :func:`~stream_detector.core.recurrence.recurs`; looked for
    only outside the quiet period); a page keeps its shape."""
    if not p.recurrent:
        return page(state, p)
    if not _quiet(state, p) and recurs(state, p):
        return False
    if not page(state, p):
        return False
    keep(state, p)
    return True


def _confirmed(before: float, point: float, threshold: float, p: DetectionParams) -> bool:
    """Whether a window over the threshold may page by ``confirm``: the key's previous
    window scored ``confirm`` x threshold too (``before``), or the ``value`` / ``burst``
    component alone (``point``) reaches the threshold (a one-window spike); always with
    ``confirm`` 0."""
    return p.confirm <= 0 or before >= p.confirm * threshold or point >= threshold


def _update(
    state: DetectorState, raw_score: float, p: DetectionParams, value: float, learn: bool
) -> tuple[float, float, float]:
    """Count the score into the key's history; return its detection score (z), the
    weighted ``value`` / ``burst`` component (0 without them) and the ``ae`` component
    (-inf without normalising)."""
    index = state.seen
    state.seen += 1
    point = 0.0
    ae = -math.inf
    if not p.normalise:
        z = raw_score
    else:
        x = math.log(max(raw_score, 0.0) + p.offset + _EPS)
        before = None if learn or index == 0 else replace(state, ring=array("f", state.ring))
        z, state.mean, state.var = running_z(state.mean, state.var, index, x, p.min_std, p)
        ae = z
        if p.uses_value and not math.isnan(value):
            seasonal, point = value_components(state, value, index, p)
            z = max(z, seasonal)
        if p.likelihood_weight > 0 and index >= p.warmup:
            z = max(z, p.likelihood_weight * likelihood_z(state, z, p))
        z = max(z, point)
        if p.smooth > 0:
            z = state.level = z if index == 0 else state.level + p.smooth_alpha * (
                z - state.level)
        if before is not None:  # judged against the history, not added to it
            for name in _HISTORY:
                setattr(state, name, getattr(before, name))
        if p.recurrent:  # the shape is what the key showed, gap or not
            observe(state, value, p)
    state.last_z = z
    return z, point, ae


def page(state: DetectorState, p: DetectionParams) -> bool:
    """Claim an alert for the key's newest window (already counted by :func:`decide`):
    False within ``suppress`` windows of its last alert, else True, starting a new quiet
    period (and, with ``habituate``, keeping the window's detection score as the bar's
    base). Every stage that alerts (the AE's :func:`decide`, a hybrid's NPLM test) asks
    here, so one incident pages once whichever stage saw it."""
    if _quiet(state, p):
        return False
    state.last_alert = state.seen - 1
    if p.habituate > 0 and state.value_start >= 0:
        state.alert_z = state.last_z
    return True


def _quiet(state: DetectorState, p: DetectionParams) -> bool:
    """Whether the key's newest window is within ``suppress`` windows of its last alert."""
    return state.seen - 1 - state.last_alert < p.suppress
