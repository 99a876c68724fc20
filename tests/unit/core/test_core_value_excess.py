"""The ``value`` residual's spread after an anomaly (``value_excess``, issue #11: on unseen
demo seeds spikes and dips were missed hundreds of windows after a contextual anomaly or a
variance burst, whose exceedances had widened the residual's spread by a third or more)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from stream_detector.core.components import residual_z, running_z
from stream_detector.core.detection import DetectionParams, DetectorState, decide

ROWS = 288  # windows per season: a day of 5-minute windows, as in the demo
NOISE = 5.0
ANOMALY = 4 * ROWS  # a 24-window contextual anomaly: the day's peak values at its trough
SPIKE = ANOMALY + 24 + 300  # then a spike of 9.5 noise sigmas, 300 windows after it ends


def _params(**changes: float) -> DetectionParams:
    """The default detector's settings on 5-minute data (the demo's, quiet half a day)."""
    p = DetectionParams(halflife=ROWS, warmup=ROWS, suppress=ROWS // 2, season=ROWS,
                        season_weight=0.6, shift_weight=1.0, season_gate=1.0,
                        likelihood_weight=1.0, value_weight=1.0, value_trend=0.3,
                        value_gate=1.0, shift_trend=0.015, shift_hold=3.0, burst_weight=1.0,
                        burst_gate=1.0, value_excess=0.4)
    return replace(p, **changes)


def _series(seed: int, spike: float = 9.5) -> np.ndarray:
    """The demo's shape (a daily cycle of +-30 around 100, noise 5) with the anomaly and
    the spike."""
    rng = np.random.default_rng(seed)
    t = np.arange(6 * ROWS)
    values = 100 + 30 * np.sin(2 * np.pi * t / ROWS) + rng.normal(0, NOISE, t.size)
    values[ANOMALY:ANOMALY + 24] += 60.0
    values[SPIKE] += spike * NOISE
    return values


def _run(values: np.ndarray, p: DetectionParams, until: int | None = None
         ) -> tuple[list[int], DetectorState]:
    s = DetectorState()
    alerts = [i for i, v in enumerate(values[:until]) if decide(s, 1.0, 5.5, p, float(v)).alert]
    return alerts, s


def _spread(s: DetectorState) -> float:
    return math.sqrt(s.vvar + s.vexcess)


def test_the_spread_an_anomaly_widened_comes_back_to_the_noise() -> None:
    clean, wide, back = [], [], []
    for seed in range(4):
        values = _series(seed, spike=0.0)
        clean.append(_spread(_run(values, _params(), ANOMALY)[1]))
        wide.append(_spread(_run(values, _params(value_excess=1.0), SPIKE)[1]))
        back.append(_spread(_run(values, _params(), SPIKE)[1]))
    for c, w, b in zip(clean, wide, back, strict=True):
        assert w > 1.25 * c  # as it was: still a quarter wider 300 windows later
        assert c < b < c + 0.6 * (w - c)  # the forecast's ringing still counts, at 288


def test_a_spike_after_a_contextual_anomaly_still_pages() -> None:
    found = {0.4: 0, 1.0: 0}
    for seed in range(8):
        values = _series(seed)
        for excess in found:
            alerts, _ = _run(values, _params(value_excess=excess))
            assert ANOMALY in alerts or ANOMALY + 1 in alerts  # the anomaly itself pages
            found[excess] += SPIKE in alerts
    assert found[0.4] >= 7
    assert found[1.0] <= 4  # the same spike, measured against the anomaly's spread


def test_a_lasting_rise_of_the_noise_is_still_learnt() -> None:
    """Every window of a tripled noise exceeds the old spread for a while: the spread still
    follows it (the excess fades only once exceedances stop), so the new noise does not
    page for ever."""
    rng = np.random.default_rng(3)
    values = 100 + rng.normal(0, NOISE, 8 * ROWS)
    values[3 * ROWS:] += rng.normal(0, 3 * NOISE, 5 * ROWS)
    alerts, s = _run(values, _params(season=0, season_weight=0.0, shift_weight=0.0))
    assert _spread(s) > 2.5 * NOISE
    assert not [i for i in alerts if i > 5 * ROWS]


@pytest.mark.parametrize("seed", [0, 1])
def test_at_one_the_split_variance_is_the_running_variance(seed: int) -> None:
    """``value_excess`` 1 is the old spread: the two parts fade at the same rate, so their
    sum follows :func:`running_z` (here through the split path, just under 1)."""
    p = DetectionParams(halflife=30, warmup=30, value_excess=1 - 1e-9)
    rng = np.random.default_rng(seed)
    xs = np.concatenate([rng.normal(0, 1, 200), rng.normal(5, 4, 20), rng.normal(0, 1, 100)])
    s, mean, var = DetectorState(), 0.0, 0.0
    for i, x in enumerate(xs):
        z_old, mean, var = running_z(mean, var, i, float(x), 1e-12, p)
        assert residual_z(s, float(x), i, p) == pytest.approx(z_old, rel=1e-6, abs=1e-9)
    assert s.vmean == pytest.approx(mean) and s.vvar + s.vexcess == pytest.approx(var)
    assert s.vexcess > 0


def test_the_excess_survives_the_state_bytes_and_older_states_load_without_it() -> None:
    values = _series(0)
    _, s = _run(values, _params(), ANOMALY + 40)
    assert s.vexcess > 0
    data = s.to_bytes()
    assert DetectorState.from_bytes(data) == s
    old = DetectorState.from_bytes(data[:-8])  # written before value_excess: its layout
    assert old.vexcess == 0.0 and old == replace(s, vexcess=0.0)
    # a state carried on with value_excess 1 folds its excess back into the variance
    p = _params(value_excess=1.0)
    residual_z(s, 0.0, ANOMALY + 40, p)
    assert s.vexcess == 0.0
