"""The ``burst`` component and the level-shift baseline's slope and hold (issue #11: the
demo's variance bursts and level shifts stayed under the threshold)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from stream_detector.core.components import burst_z
from stream_detector.core.detection import DetectionParams, DetectorState, decide

ROWS = 288  # windows per season: a day of 5-minute windows, as in the demo
NOISE = 5.0


def _params(**changes: float) -> DetectionParams:
    """The default detector's settings on 5-minute data (the demo's, quiet half a day)."""
    p = DetectionParams(halflife=ROWS, warmup=ROWS, suppress=ROWS // 2, season=ROWS,
                        season_weight=0.6, shift_weight=1.0, season_gate=1.0,
                        likelihood_weight=1.0, value_weight=1.0, value_trend=0.3,
                        value_gate=1.0, shift_trend=0.015, shift_hold=3.0, burst_weight=1.0,
                        burst_gate=1.0)
    return replace(p, **changes)


def _weekly(days: int, seed: int) -> np.ndarray:
    """The demo's shape: a daily cycle of +-30 around 100, a weekly one of +-15, noise 5."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * ROWS)
    return (100 + 30 * np.sin(2 * np.pi * t / ROWS) + 15 * np.cos(2 * np.pi * t / (7 * ROWS))
            + rng.normal(0, NOISE, t.size))


def _run(values: np.ndarray, p: DetectionParams) -> tuple[list[int], DetectorState]:
    s = DetectorState()
    return [i for i, v in enumerate(values) if decide(s, 1.0, 5.5, p, float(v)).alert], s


def _found(inject: str, **changes: float) -> int:
    """Of 8 seeds, how many page inside the injected stretch; nothing pages elsewhere."""
    found = 0
    for seed in range(8):
        values, at = _weekly(9, seed), 6 * ROWS + 40 * seed
        if inject == "burst":  # 24 windows of 2.5 times the noise
            values[at:at + 24] += np.random.default_rng(100 + seed).normal(0, 2.5 * NOISE, 24)
        else:  # a level shift of 3.5 noise sigmas for 36 windows
            values[at:at + 36] += 3.5 * NOISE
        alerts, _ = _run(values, _params(**changes))
        assert all(at <= i < at + 60 for i in alerts)
        found += any(at <= i < at + 40 for i in alerts)
    return found


def test_a_variance_burst_pages_with_the_burst_component() -> None:
    assert _found("burst") >= 7
    assert _found("burst", burst_weight=0.0) <= 3


def test_a_level_shift_on_a_weekly_pattern_pages_with_the_baselines_slope_and_hold() -> None:
    assert _found("shift") == 8
    assert _found("shift", shift_trend=0.0, shift_hold=0.0) <= 2


def test_the_baselines_slope_follows_a_weekly_pattern_so_the_shift_history_stays_narrow() -> None:
    spread = {}
    for trend in (0.0, 0.015):
        _, s = _run(_weekly(9, 0), _params(shift_trend=trend))
        spread[trend] = math.sqrt(s.shvar)
    # the shift's EW mean of day-over-day differences has a spread of about 1.7 on noise 5;
    # a baseline without slope lags the weekly drift of those differences (+-13 a week)
    assert spread[0.015] < 2.2 < 0.8 * spread[0.0]


def test_the_baseline_holds_still_during_a_level_shift() -> None:
    moved = {}
    for hold in (0.0, 3.0):
        values = _weekly(8, 1)
        values[6 * ROWS:6 * ROWS + 36] += 6.0 * NOISE
        s = DetectorState()
        p = _params(shift_hold=hold)
        for v in values[:6 * ROWS]:
            decide(s, 1.0, 5.5, p, float(v))
        before = s.shift_slow
        for v in values[6 * ROWS:6 * ROWS + 36]:
            decide(s, 1.0, 5.5, p, float(v))
        moved[hold] = s.shift_slow - before
    assert abs(moved[3.0]) < 2.0 < moved[0.0]  # a 30-unit shift: learnt only without hold


def test_the_burst_trust_shrinks_it_on_a_key_whose_bursts_are_frequent_and_large() -> None:
    rng = np.random.default_rng(0)
    p = replace(_params(), warmup=50)
    calm = DetectorState()
    for z in rng.normal(0, 1, 400):  # Gaussian residuals: rate and tail at their priors
        burst_z(calm, float(z), p)
    busy = replace(calm, burst_rate=0.02, burst_tail=0.5)  # 4x value_ref, big exceedances
    noise = rng.normal(0, 4, 12)
    for gate in (0.0, 1.0):
        q, b = replace(calm), replace(busy)
        pg = replace(p, burst_gate=gate)
        zq, zb = ([burst_z(st, float(z), pg) for z in noise] for st in (q, b))
        assert max(zq) > 6
        if gate:  # trust (0.005 / 0.02) * exp(2 (0.087 - 0.5)) = 0.11 on the busy key
            assert max(zb) < 0.15 * max(zq)
        else:
            assert zb == zq


def test_burst_and_slope_state_round_trips_and_older_states_start_them_fresh() -> None:
    values = _weekly(5, 2)
    values[3 * ROWS:3 * ROWS + 24] += np.random.default_rng(0).normal(0, 4 * NOISE, 24)
    _, a = _run(values, _params())
    assert a.burst_seen > 0 and a.shift_slope != 0.0 and a.burst_rate != _params().value_ref
    b = DetectorState.from_bytes(a.to_bytes())
    assert b == a
    older = DetectorState.from_bytes(a.to_bytes()[:-64])  # written before the burst existed
    fresh = DetectorState()
    assert older == replace(a, shift_slope=0.0, burst_level=fresh.burst_level, burst_mean=0.0,
                            burst_var=0.0, burst_seen=0, burst_rate=fresh.burst_rate,
                            burst_tail=fresh.burst_tail, burst_last=fresh.burst_last)
