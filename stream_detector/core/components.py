"""The components of the detection score, each a z-score against the key's own history.

:mod:`stream_detector.core.detection` combines them (the largest weighted one) and decides;
this module holds how each is computed and learnt: the running statistics
(:func:`running_z`), the ``value``, ``season`` and ``shift`` components
(:func:`value_components`), and the trust in the seasonal component
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
"""

from __future__ import annotations

import math
from array import array
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from stream_detector.core.detection import DetectionParams, DetectorState

__all__ = ["GAUSSIAN_RATE", "likelihood_z", "running_z", "season_trust", "value_components"]

_EPS: Final = 1e-12
_SHIFT_WARMUP: Final = 2  # the shift component's warm-up, in multiples of ``warmup``
_LIK_SAMPLES: Final = 100  # the likelihood's warm-up, in half-lives of its short mean
GAUSSIAN_RATE: Final = 0.0027  # P(|z| > 3) for a Gaussian: every key's prior exceedance rate


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
                      ) -> float:
    """The weighted ``value`` and ``season`` components of the newest value (updates state).

    ``index`` counts the key's windows; the components count from the window they started at
    (a key state carried over from a model without them starts them fresh, with their own
    warm-up, instead of comparing against empty history).
    """
    if state.value_start < 0 or (p.season > 0 and p.season_weight > 0
                                 and len(state.ring) != p.season):
        _restart_values(state, index, p)
    index -= state.value_start
    if index == 0:
        state.local = value
    # value: the residual of a short-term forecast (the recent level), against its history
    z_value, state.vmean, state.vvar = running_z(state.vmean, state.vvar, index,
                                                 value - state.local, _EPS, p)
    std = math.sqrt(state.vvar)
    kept = value if index < p.warmup else state.local + state.vmean + max(
        -p.clip, min(p.clip, z_value)) * std  # a spike does not drag the level along
    state.local += p.local_alpha * (kept - state.local)
    best = p.value_weight * abs(z_value) if index >= p.warmup else 0.0  # own warm-up
    if p.season > 0 and p.season_weight > 0:
        z_season, z_shift = _season_z(state, value, index, std, p)
        weight = p.season_weight
        if index - p.season >= p.warmup:  # the seasonal z is valid: weigh it, then count it
            weight *= season_trust(state, z_season, p)
        best = max(best, weight * abs(z_season), p.shift_weight * abs(z_shift))
    return best


def _restart_values(state: DetectorState, index: int, p: DetectionParams) -> None:
    state.vmean = state.vvar = state.smean = state.svar = state.local = 0.0
    state.shift = state.shift_slow = state.shmean = state.shvar = 0.0
    state.shift_seen = 0
    state.season_rate = GAUSSIAN_RATE
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
    state.shift_slow += p.shift_base_alpha * (diff - state.shift_slow)
    state.shift_seen = n + 1
    # an EW mean's history is strongly autocorrelated (few independent samples per
    # warm-up), so its spread is trusted only after twice the usual warm-up
    return z if n >= _SHIFT_WARMUP * p.warmup else 0.0
