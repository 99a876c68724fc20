"""The components of the detection score, each a z-score against the key's own history.

:mod:`stream_detector.core.detection` combines them (the largest weighted one) and decides;
this module holds how each is computed and learnt: the running statistics
(:func:`running_z`; the forecast residual's own, :func:`residual_z`, lets the width an
anomaly's exceedances added fade faster), the ``value``, ``season`` and ``shift``
components (:func:`value_components`), and the trust in the seasonal component
(:func:`season_trust`).

Trust (``season_gate``): a z-score means "this rare" only when the key's residuals are
about Gaussian. On a key whose seasonal residuals are heavy-tailed (bursty counts such as
tweet volumes) |z| > 3 happens far more often than 0.27% of windows, and so does
|z| > 5.5 on ordinary days. Each key therefore keeps the exponentially weighted rate of its
own seasonal exceedances (|z| > ``gate_cut``, half-life ``gate_halflife`` windows) and the
seasonal component is weighed by ``min(1, gate_ref / rate) ** season_gate``: full weight
while the rate stays within ``gate_ref`` (about twice the Gaussian rate), less the more
often the key exceeds it. Nothing is tuned per series; the key's past decides::

    rate of |z| > 3     0.003   0.006   0.012   0.03
    trust (gate 1)      1       1       0.5     0.2

The ``value`` component (the newest value against a short-term forecast, Holt's level and
slope) sees what the others smooth over: one step of 8 noise sigmas is about 7 sigma of its
residual, but 3-5 of the day-over-day difference and less of the AE's 8-step mean. It has
a trust of its own (``value_gate``, :func:`value_trust`): bursty, heavy-tailed keys (tweet
counts) exceed |z| > 3 in more separate *episodes* than Gaussian residuals do, and by much
more when they do (their exceedances' mean log size), so both shrink its weight; a run of
exceedances counts once, so one variance burst or level shift does not blind the key to the
next spike (a step a square wave takes every day, which a forecast cannot know, is such
a pattern too: the key learns it on its first day).
"""

from __future__ import annotations

import math
from array import array
from functools import lru_cache
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from stream_detector.core.detection import DetectionParams
    from stream_detector.core.detector_state import DetectorState

__all__ = ["GAUSSIAN_RATE", "burst_z", "flat", "gaussian_tail", "habituation_bar", "likelihood_z",
           "residual_z",
           "running_z", "season_trust", "trust_now", "value_components", "value_trust"]

_EPS: Final = 1e-12
_NEVER: Final = -(2**62)
_SHIFT_WARMUP: Final = 2  # the shift component's warm-up, in multiples of ``warmup``
_LIK_SAMPLES: Final = 100  # the likelihood's warm-up, in half-lives of its short mean
GAUSSIAN_RATE: Final = 0.0027  # P(|z| > 3) for a Gaussian: every key's prior exceedance rate
_EPISODE_GAP: Final = 12  # windows: an exceedance this close to the last one is the same episode
_TRUST_START: Final = 30  # windows: the value z before this (few observations) is not counted
_RATE_PRIOR: Final = 100.0  # windows the prior rate counts as, while the key's own are fewer
_TAIL_ALPHA: Final = 0.05  # weight of an episode in the mean log size of exceedances
_BURST_CAP: Final = 36.0  # largest squared value z a window adds to the burst level (6 sigma)
_BURST_FLOOR: Final = 1e-6  # smallest burst level whose log is taken
_FLAT: Final = 1e-9  # a spread under this share of the values' size is none (float32: 6e-8)


def season_trust(state: DetectorState, z_season: float, p: DetectionParams) -> float:
    """Weight factor (0, 1] of the seasonal component from the key's exceedance rate so
    far, then ``z_season`` counted into that rate (updates ``state.season_rate``).

    >>> from stream_detector.core.detection import DetectionParams, DetectorState
    >>> p, s = DetectionParams(season_gate=1.0, gate_ref=0.006, gate_halflife=10), DetectorState()
    >>> round(season_trust(s, 4.0, p), 3), round(s.season_rate, 3)  # prior rate: full trust
    (1.0, 0.069)
    >>> round(season_trust(s, 0.0, p), 3)  # one exceedance in ~15 windows: much less
    0.086
    """
    if p.season_gate <= 0:
        return 1.0
    trust = min(1.0, p.gate_ref / max(state.season_rate, _EPS)) ** p.season_gate
    state.season_rate += p.gate_alpha * (float(abs(z_season) > p.gate_cut) - state.season_rate)
    return float(trust)


@lru_cache(maxsize=8)
def gaussian_tail(cut: float) -> float:
    """E[log(|z| / cut) | |z| > cut] for a standard Gaussian z: how far past ``cut`` the
    exceedances of Gaussian residuals go (log units; a trapezoid sum over cut..cut+12).

    >>> round(gaussian_tail(3.0), 4)
    0.0871
    """
    xs = [cut + 12.0 * i / 4000 for i in range(4001)]
    ws = [math.exp(-0.5 * x * x) * (0.5 if i in (0, 4000) else 1.0) for i, x in enumerate(xs)]
    return sum(w * math.log(x / cut) for w, x in zip(ws, xs, strict=True)) / sum(ws)


def value_trust(state: DetectorState, z_value: float, index: int, p: DetectionParams
                ) -> float:
    """Weight factor (0, 1] of the ``value`` component from the key's history so far, then
    ``z_value`` (the component's ``index``-th z) counted into it (updates ``state``).

    ``(min(1, value_ref / rate) * min(1, exp(2 (tail0 - tail)))) ** value_gate``: ``rate``
    is the share of windows that start an episode of |z| > ``gate_cut`` (an exceedance more
    than :data:`_EPISODE_GAP` windows after the last one), a running mean from a prior of
    :data:`GAUSSIAN_RATE` worth :data:`_RATE_PRIOR` windows, later exponentially weighted
    (half-life ``gate_halflife``); ``tail`` is the exponentially weighted mean of
    ``log(|z| / gate_cut)`` at episode starts and ``tail0`` its Gaussian value
    (:func:`gaussian_tail`). Windows before :data:`_TRUST_START` (or the warm-up) are not
    counted.

    >>> from stream_detector.core.detection import DetectionParams, DetectorState
    >>> p, s = DetectionParams(value_gate=1.0), DetectorState()
    >>> value_trust(s, 30.0, 300, p)  # the prior: full trust; then an episode 10x past 3
    1.0
    >>> round(s.value_rate, 4), round(s.value_tail, 3)  # one in 400 windows, log size up
    (0.0052, 0.198)
    >>> round(value_trust(s, 3.5, 305, p), 2)  # the same episode, not counted again
    0.77
    >>> round(value_trust(s, 2.0, 306, p), 2), round(s.value_rate, 4)
    (0.77, 0.0052)
    """
    if p.value_gate <= 0:
        return 1.0
    if index < min(_TRUST_START, p.warmup):
        return _trust(state.value_rate, state.value_tail, p.value_gate, p)
    trust, state.value_rate, state.value_tail, state.value_last = _episode_trust(
        state.value_rate, state.value_tail, state.value_last, z_value, index, p.value_gate, p)
    return trust


def habituation_bar(state: DetectorState, p: DetectionParams, ae_led: bool = False) -> float:
    """The detection score the key's next page must reach besides the threshold (0: none):
    ``habituate * (1 - trust) * z_last * 0.5 ** (age / habituate_halflife)``.

    ``z_last`` is the detection score of the key's last page (``state.alert_z``), ``age``
    the windows since it and ``trust`` the ``value`` component's trust as it stands
    (:func:`value_trust`, not updated here). On a key whose values burst often and far
    (tweet counts: trust 0.1-0.4) an incident is followed by more bursts of its size, so a
    new page needs about as large a score as the last one, the bar halving every
    ``habituate_halflife`` windows; on a key whose residuals look Gaussian (trust near
    1) the bar stays far below the threshold. No bar without the ``value`` component's
    trust or a page so far.

    >>> from stream_detector.core.detection import DetectionParams, DetectorState
    >>> p = DetectionParams(value_gate=1.0, habituate=2.0, habituate_halflife=20)
    >>> busy = DetectorState(seen=21, last_alert=0, alert_z=12.0, value_start=0,
    ...                      value_rate=0.02, value_tail=0.5)  # trust 0.25 * 0.44 = 0.11
    >>> round(habituation_bar(busy, p), 1)  # 2 * 0.89 * 12 * 0.5 ** (20 / 20)
    10.7
    >>> calm = DetectorState(seen=21, last_alert=0, alert_z=12.0, value_start=0)
    >>> habituation_bar(calm, p)  # prior rate and tail: full trust, no bar
    0.0
    """
    if p.habituate <= 0 or p.value_gate <= 0 or state.value_start < 0 or not state.alert_z:
        return 0.0
    trust = trust_now(state, p)
    age = state.seen - 1 - state.last_alert
    factor = p.habituate_ae if ae_led and p.habituate_ae > 0 else p.habituate
    return float(factor * (1.0 - trust) * state.alert_z
                 * 0.5 ** (age / max(p.habituate_halflife, _EPS)))


def trust_now(state: DetectorState, p: DetectionParams) -> float:
    """The ``value`` component's trust as it stands (:func:`value_trust`, not updated); 1
    without ``value_gate``."""
    return _trust(state.value_rate, state.value_tail, p.value_gate, p) if p.value_gate > 0 \
        else 1.0


def burst_z(state: DetectorState, z_value: float, p: DetectionParams) -> float:
    """The ``burst`` component before its weight: a variance-change statistic (updates
    ``state``).

    ``level``, the exponentially weighted mean (half-life ``burst_halflife`` windows) of
    ``min(z_value**2, 36)``, is about 1 on Gaussian residuals and several times that while
    the noise is; ``log(level)`` is z-scored against its own history (like every component's,
    after its own warm-up of ``warmup`` levels; before it, 0), one-sided (more noise), or
    with ``collapse`` > 0 also ``collapse`` x its size below the history (far less noise:
    a value stuck at one reading, whose forecast residuals fade to nothing), then weighed
    by a trust like :func:`value_trust` (``burst_gate``, ``value_ref``) counted over its
    own z-scores. A lone spike adds at most ``36 * alpha`` to ``level``.

    >>> from stream_detector.core.detection import DetectionParams, DetectorState
    >>> import random
    >>> p, s, rng = DetectionParams(warmup=50), DetectorState(), random.Random(0)
    >>> quiet = [burst_z(s, rng.gauss(0, 1), p) for _ in range(400)]  # Gaussian residuals
    >>> round(s.burst_level, 1), round(max(quiet), 1)
    (0.9, 3.0)
    >>> [round(burst_z(s, rng.gauss(0, 4), p)) for _ in range(12)]  # four times the noise
    [0, 5, 5, 5, 6, 5, 7, 8, 8, 8, 9, 9]
    >>> from dataclasses import replace
    >>> s, q = DetectorState(), replace(p, collapse=1.0)
    >>> quiet = [burst_z(s, rng.gauss(0, 1), q) for _ in range(400)]
    >>> stuck = [burst_z(s, 0.0, q) for _ in range(36)]  # a stuck reading: no noise at all
    >>> [round(stuck[i]) for i in (0, 11, 23, 35)]
    [1, 2, 5, 7]
    """
    n = state.burst_seen
    state.burst_level += p.burst_alpha * (min(z_value * z_value, _BURST_CAP) - state.burst_level)
    z, state.burst_mean, state.burst_var = running_z(
        state.burst_mean, state.burst_var, n, math.log(max(state.burst_level, _BURST_FLOOR)),
        p.min_std, p)
    state.burst_seen = n + 1
    if n < p.warmup:
        return 0.0
    z = max(z, -p.collapse * z, 0.0)  # more noise; with ``collapse``, less noise too
    if p.burst_gate <= 0:
        return z
    trust, state.burst_rate, state.burst_tail, state.burst_last = _episode_trust(
        state.burst_rate, state.burst_tail, state.burst_last, z, n, p.burst_gate, p)
    return trust * z


def _trust(rate: float, tail: float, gate: float, p: DetectionParams) -> float:
    """``(min(1, value_ref / rate) * min(1, exp(2 (tail0 - tail)))) ** gate``."""
    trust = min(1.0, p.value_ref / max(rate, _EPS)) * min(
        1.0, math.exp(2.0 * (gaussian_tail(p.gate_cut) - tail)))
    return float(trust ** gate)


def _episode_trust(rate: float, tail: float, last: int, z: float, index: int, gate: float,
                   p: DetectionParams) -> tuple[float, float, float, int]:
    """The trust from (rate, tail) so far, then ``z`` (the ``index``-th) counted into them:
    ``(trust, rate, tail, last)``, ``last`` the index of the latest exceedance."""
    trust = _trust(rate, tail, gate, p)
    exceeds = abs(z) > p.gate_cut
    starts = exceeds and index - last > _EPISODE_GAP
    if exceeds:
        last = index
    if starts:
        tail += _TAIL_ALPHA * (math.log(abs(z) / p.gate_cut) - tail)
    a = max(p.gate_alpha, 1.0 / (index + _RATE_PRIOR))
    return trust, rate + a * (float(starts) - rate), tail, last


def running_z(
    mean: float, var: float, n: int, x: float, floor: float, p: DetectionParams,
    alpha: float | None = None,
) -> tuple[float, float, float]:
    """z of ``x`` against (mean, var) after ``n`` observations, and the updated pair.

    The first ``warmup`` updates are plain running means (weight ``1/n``), later ones
    exponentially weighted (``alpha``, default ``p.alpha``) and winsorised at ``clip``
    deviations.
    """
    if n == 0:
        return 0.0, x, 0.0
    std = max(math.sqrt(var), floor)
    z = (x - mean) / std
    a = max(p.alpha if alpha is None else alpha, 1.0 / (n + 1))
    xu = mean + max(-p.clip, min(p.clip, z)) * std if n + 1 > p.warmup else x
    delta = xu - mean
    return z, mean + a * delta, (1.0 - a) * (var + a * delta * delta)


def likelihood_z(state: DetectorState, z: float, p: DetectionParams) -> float:
    """The anomaly-likelihood stage (Ahmad et al., Neurocomputing 262, 2017) as a z-score:
    the short-term mean (half-life ``likelihood_halflife``) of the detection score's size
    against the long-term distribution of that mean (half-life ``likelihood_base`` x
    ``halflife``, winsorised like every history); 0 until that history has seen twice the
    warm-up and :data:`_LIK_SAMPLES` short half-lives (about as long as Numenta's own
    start: a tail read from fewer nearly independent short means means little). Updates
    ``state``. A run of moderately high scores, none over the threshold alone, stands out
    here; a key whose scores are high all the time does not.

    >>> from stream_detector.core.detection import DetectionParams, DetectorState
    >>> # a short mean of about one window, for the example
    >>> p = DetectionParams(halflife=4, warmup=2, likelihood_halflife=0.04, likelihood_base=2)
    >>> s = DetectorState()  # scores of 1-2 are this key's usual, 4 is not
    >>> [round(likelihood_z(s, z, p), 1) for z in (1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 4.0, 4.0)]
    [0.0, 0.0, 0.0, 0.0, -1.0, 1.2, 5.0, 3.3]
    """
    x = abs(z)
    n = state.lik_seen
    short = x if n == 0 else state.lik_short + p.likelihood_alpha * (x - state.lik_short)
    zl, state.lik_mean, state.lik_var = running_z(state.lik_mean, state.lik_var, n, short,
                                                  p.min_std, p, p.likelihood_base_alpha)
    state.lik_short, state.lik_seen = short, n + 1
    ready = n >= max(_SHIFT_WARMUP * p.warmup, _LIK_SAMPLES * p.likelihood_halflife)
    return zl if ready else 0.0


def value_components(state: DetectorState, value: float, index: int, p: DetectionParams
                     ) -> tuple[float, float]:
    """The weighted ``season`` and ``shift`` components of the newest value (the larger),
    and the larger of the weighted ``value`` and ``burst`` components (updates state).

    ``index`` counts the key's windows; the components count from the window they started at
    (a key state carried over from a model without them starts them fresh, with their own
    warm-up, instead of comparing against empty history).
    """
    if state.value_start < 0 or (p.season > 0 and p.season_weight > 0
                                 and len(state.ring) != p.season):
        _restart_values(state, index, p)
    index -= state.value_start
    if index >= p.warmup and flat(math.sqrt(state.vvar + state.vexcess), abs(state.local)) \
            and not flat(abs(value - state.local - state.slope), abs(state.local) + abs(value)):
        # the first change after a flat start that outlasted the warm-up (every value so
        # far the same): its spread is none, and once winsorising starts no change can widen
        # it (the first scored 1e12 and the components' trust never recovered). They start
        # here, with their own warm-up, and so does the likelihood stage, whose history held
        # only the flat stretch's scores. A change inside the warm-up is learnt whole.
        _restart_values(state, state.value_start + index, p)
        state.lik_mean = state.lik_var = state.lik_short = 0.0
        state.lik_seen = 0
        index = 0
    if index == 0:
        state.local = value
    # value: the residual of a short-term forecast (recent level and slope), against its
    # history
    forecast = state.local + state.slope
    z_value = residual_z(state, value - forecast, index, p)
    std = math.sqrt(state.vvar + state.vexcess)
    kept = value if index < p.warmup else forecast + state.vmean + max(
        -p.clip, min(p.clip, z_value)) * std  # a spike does not drag the level along
    local = forecast + p.local_alpha * (kept - forecast)
    state.slope += p.value_trend * (local - state.local - state.slope)
    state.local = local
    point = 0.0
    if p.value_weight > 0:
        trust = value_trust(state, z_value, index, p) if index > 0 else 1.0
        point = p.value_weight * trust * abs(z_value) if index >= p.warmup else 0.0  # own warm-up
    if p.burst_weight > 0 and index >= p.warmup:
        point = max(point, p.burst_weight * burst_z(state, z_value, p))
    best = 0.0
    if p.season > 0 and p.season_weight > 0:
        z_season, z_shift = _season_z(state, value, index, std, p)
        weight = p.season_weight
        if index - p.season >= p.warmup:  # the seasonal z is valid: weigh it, then count it
            weight *= season_trust(state, z_season, p)
        best = max(weight * abs(z_season), p.shift_weight * abs(z_shift))
    return best, point


def residual_z(state: DetectorState, residual: float, index: int, p: DetectionParams
               ) -> float:
    """The ``value`` component's z before its weight: the forecast ``residual`` against
    the key's history of them, then counted into it (updates ``vmean``, ``vvar`` and
    ``vexcess``; the spread is ``sqrt(vvar + vexcess)``).

    As :func:`running_z`, except after the warm-up: the winsorised square of an exceedance
    (|z| > ``gate_cut``) goes to ``vexcess``, which fades with half-life ``value_excess`` x
    ``halflife``, and the other windows' to ``vvar``, which fades with ``halflife``. An
    anomaly (and the forecast's ringing after it) widens the spread while it lasts, as
    before, but the width it left goes 2.5 times sooner at the trained default 0.4: a spike
    a day later is measured against the key's usual noise, not against the anomaly's. A
    lasting rise of the noise is still learnt (its exceedances keep the excess up while it
    lasts, and the rest of its windows raise ``vvar``). With ``value_excess`` 1 the sum is
    exactly :func:`running_z`'s variance.

    >>> from stream_detector.core.detection import DetectionParams, DetectorState
    >>> noise, spread = [1.0, -1.0] * 10, {}
    >>> for excess in (1.0, 0.25):  # 3 windows of 9 sigma, then 40 of the usual noise
    ...     p, s = DetectionParams(halflife=20, warmup=20, value_excess=excess), DetectorState()
    ...     zs = [residual_z(s, x, i, p) for i, x in enumerate(noise + [9.0] * 3 + noise * 2)]
    ...     spread[excess] = round(math.sqrt(s.vvar + s.vexcess), 2)
    >>> [round(z, 1) for z in zs[20:23]], spread  # they widen it; at 0.25 that goes sooner
    ([9.0, 7.7, 6.7], {1.0: 1.18, 0.25: 1.01})
    """
    if index < p.warmup or p.value_excess >= 1.0:
        z, state.vmean, state.vvar = running_z(state.vmean, state.vvar + state.vexcess, index,
                                               residual, _EPS, p)
        state.vexcess = 0.0
        return z
    std = max(math.sqrt(state.vvar + state.vexcess), _EPS)
    z = (residual - state.vmean) / std
    a = max(p.alpha, 1.0 / (index + 1))
    delta = max(-p.clip, min(p.clip, z)) * std
    state.vmean += a * delta
    if abs(z) > p.gate_cut:
        state.vexcess += a * delta * delta
    else:
        state.vvar += a * delta * delta
    state.vvar *= 1.0 - a
    state.vexcess *= 1.0 - max(a, p.value_excess_alpha)
    return z


def flat(spread: float, scale: float) -> bool:
    """Whether a history's ``spread`` is none at all for values of size ``scale`` (at most
    :data:`_FLAT` of it, below float32's resolution, or at most 1e-12).

    >>> flat(0.0, 0.0), flat(1e-14, 50.0), flat(0.01, 1e6), flat(1e-6, 1e-3)
    (True, True, False, False)
    """
    return spread <= _FLAT * scale or spread <= _EPS


def _restart_values(state: DetectorState, index: int, p: DetectionParams) -> None:
    state.vmean = state.vvar = state.smean = state.svar = state.local = 0.0
    state.vexcess = 0.0
    state.shift = state.shift_slow = state.shmean = state.shvar = 0.0
    state.shift_seen = 0
    state.season_rate = state.value_rate = GAUSSIAN_RATE
    state.slope, state.value_tail = 0.0, gaussian_tail(p.gate_cut)
    state.value_last = state.burst_last = _NEVER
    state.shift_slope = state.burst_mean = state.burst_var = 0.0
    state.burst_level, state.burst_seen, state.burst_rate = 1.0, 0, GAUSSIAN_RATE
    state.burst_tail = gaussian_tail(p.gate_cut)
    state.ring = array("f", bytes(4 * p.season)) if p.season > 0 else array("f")
    state.value_start = index


def _season_z(state: DetectorState, value: float, index: int, spread: float,
              p: DetectionParams) -> tuple[float, float]:
    """z of the value against its seasonal baseline, and z of the short-term mean of such
    differences (``shift``) against its own history (updates baselines and histories)."""
    slot, stored, z, z_shift = index % p.season, value, 0.0, 0.0
    if index >= p.season:
        floor = max(p.rel_floor * spread, _EPS)
        before, mean, std = state.ring[slot], state.smean, max(math.sqrt(state.svar), floor)
        z, state.smean, state.svar = running_z(mean, state.svar, index - p.season,
                                               value - before, floor, p)
        if p.shift_weight > 0:
            z_shift = _shift_z(state, value - before, p.rel_floor * floor, p)
        if index - p.season < p.warmup:
            z = 0.0  # its own history is too short yet
        elif abs(z_shift) > p.clip:  # inside a shift: remember what was expected, so the
            stored = before + mean  # shift does not come back one season later
        else:  # an outlier is remembered winsorised, so it does not come back as a
            # second alert one season later
            stored = before + mean + max(-p.clip, min(p.clip, z)) * std
        stored = before + p.season_alpha * (stored - before)
    state.ring[slot] = stored
    return z, z_shift


def _shift_z(state: DetectorState, diff: float, floor: float, p: DetectionParams) -> float:
    """z of the short-term mean of seasonal differences against its own history."""
    n = state.shift_seen
    if n == 0:
        state.shift = state.shift_slow = diff
    state.shift += p.shift_alpha * (diff - state.shift)
    z, state.shmean, state.shvar = running_z(state.shmean, state.shvar, n,
                                             state.shift - state.shift_slow, max(floor, _EPS),
                                             p)
    # an EW mean's history is strongly autocorrelated (few independent samples per
    # warm-up), so its spread is trusted only after twice the usual warm-up
    ready = n >= _SHIFT_WARMUP * p.warmup
    state.shift_seen = n + 1
    if ready and 0 < p.shift_hold < abs(z):  # inside a shift: the baseline holds still
        return z
    if p.shift_trend > 0:  # Holt: the baseline follows the drift of a weekly pattern
        before = state.shift_slow
        state.shift_slow += state.shift_slope + p.shift_base_alpha * (
            diff - state.shift_slow - state.shift_slope)
        state.shift_slope += p.shift_trend * (state.shift_slow - before - state.shift_slope)
    else:
        state.shift_slow += p.shift_base_alpha * (diff - state.shift_slow)
    return z if ready else 0.0
