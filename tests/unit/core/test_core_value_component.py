"""The ``value`` component: a short-term forecast's residual with its own trust (issue #11:
one-step spikes that every other residual smooths over)."""

from __future__ import annotations

import doctest
from dataclasses import replace

import numpy as np

import stream_detector.core.components
from stream_detector.core.components import GAUSSIAN_RATE, gaussian_tail, value_trust
from stream_detector.core.detection import DetectionParams, DetectorState, decide

ROWS = 288  # windows per season: a day of 5-minute windows, as in the demo
NOISE = 5.0


def _params(**changes: float) -> DetectionParams:
    """The default detector's settings on 5-minute data (the demo's, quiet half a day)."""
    p = DetectionParams(halflife=ROWS, warmup=ROWS, suppress=ROWS // 2, season=ROWS,
                        season_weight=0.6, shift_weight=1.0, season_gate=1.0,
                        value_weight=1.0, value_trend=0.3, value_gate=1.0)
    return replace(p, **changes)


def _daily(days: int, seed: int) -> np.ndarray:
    """The demo's shape: a daily cycle of +-30% around 100, Gaussian noise of 5."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * ROWS)
    return 100 + 30 * np.sin(2 * np.pi * t / ROWS) + rng.normal(0, NOISE, t.size)


def _alerts(values: np.ndarray, p: DetectionParams) -> list[int]:
    s = DetectorState()
    return [i for i, v in enumerate(values) if decide(s, 1.0, 5.5, p, float(v)).alert]


def test_doctests() -> None:
    failures, tried = doctest.testmod(stream_detector.core.components)
    assert tried and not failures


def test_gaussian_tail_is_the_mean_log_size_of_gaussian_exceedances() -> None:
    z = np.abs(np.random.default_rng(0).normal(size=4_000_000))
    over = z[z > 3.0]
    assert abs(gaussian_tail(3.0) - float(np.mean(np.log(over / 3.0)))) < 0.005


def test_a_one_step_spike_of_8_sigma_pages_that_the_seasonal_difference_misses() -> None:
    found = {"with": 0, "without": 0}
    for seed in range(5):
        values = _daily(6, seed)
        at = 4 * ROWS + 70 + 30 * seed
        values[at] += 8.0 * NOISE  # one window; the AE's score stays flat
        for name, weight in (("with", 1.0), ("without", 0.0)):
            alerts = _alerts(values, _params(value_weight=weight))
            assert set(alerts) <= {at}  # nothing else pages
            found[name] += alerts == [at]
    assert found == {"with": 5, "without": 0}


def test_the_slope_follows_a_ramp_so_its_residual_stays_small() -> None:
    p = _params(season=0, season_weight=0.0)
    level, holt = DetectorState(), DetectorState()
    for i in range(600):  # a clean ramp, 2 units a window
        decide(level, 1.0, 5.5, replace(p, value_trend=0.0), 2.0 * i)
        decide(holt, 1.0, 5.5, p, 2.0 * i)
    assert abs(holt.slope - 2.0) < 0.01 and level.slope == 0.0
    assert abs(holt.local - 1198.0) < 1.0  # on the ramp, where the level alone lags
    assert level.local < 1190.0


def test_trust_quiets_a_bursty_key_and_stays_whole_on_a_gaussian_one() -> None:
    rng = np.random.default_rng(5)
    bursty = _daily(20, seed=5)
    hit = rng.random(bursty.size) < 0.02  # isolated bursts, 3-30 noise sigmas: ordinary here
    bursty[hit] += NOISE * rng.lognormal(2.0, 0.7, int(hit.sum()))
    without = _alerts(bursty, _params(value_weight=0.0))  # the seasonal components' pages
    assert len(_alerts(bursty, _params(value_gate=0.0))) >= len(without) + 10
    assert _alerts(bursty, _params()) == without  # trusted this little, it adds none
    s = DetectorState()
    for v in _daily(20, seed=6):
        decide(s, 1.0, 5.5, _params(), float(v))
    assert s.value_rate < 0.005 and s.value_tail < 0.2  # Gaussian: full trust left
    assert value_trust(s, 0.0, 10**6, _params()) == 1.0


def test_a_run_of_exceedances_is_one_episode() -> None:
    p, s = _params(), DetectorState()
    for i, z in enumerate([0.0] * 40 + [4.0, -5.0, 4.5, 0.0, 6.0]):  # one run, a gap of 2
        value_trust(s, z, i, p)
    assert s.value_last == 44
    after_one = DetectorState()
    for i, z in enumerate([0.0] * 40 + [4.0] + [0.0] * 4):
        value_trust(after_one, z, i, p)
    assert s.value_rate == after_one.value_rate
    later = DetectorState(value_rate=s.value_rate, value_tail=s.value_tail, value_last=44)
    value_trust(later, 4.0, 44 + 13, p)  # 13 windows on: a new episode
    assert later.value_rate > s.value_rate


def test_trust_learns_the_daily_steps_of_a_square_wave_on_its_first_day() -> None:
    rng = np.random.default_rng(7)
    t = np.arange(5 * ROWS)
    square = np.where(t % ROWS < ROWS // 2, 20.0, 80.0) + rng.normal(0, 0.5, t.size)
    # a forecast cannot know the steps (z in the hundreds); the season can
    bare = _alerts(square, _params(value_gate=0.0))
    assert bare == list(range(ROWS, 5 * ROWS, ROWS // 2))  # every step after the warm-up
    assert _alerts(square, _params()) == []
    assert _alerts(square, _params(value_weight=0.0)) == []


def test_the_likelihood_stage_does_not_learn_the_value_component() -> None:
    values = _daily(6, seed=8)
    values[4 * ROWS + 9] += 8.0 * NOISE
    states = {}
    for weight in (0.0, 1.0):
        s = states[weight] = DetectorState()
        for v in values:
            decide(s, 1.0, 5.5, _params(value_weight=weight, likelihood_weight=1.0,
                                        likelihood_halflife=2, likelihood_base=1), float(v))
    assert states[1.0].lik_seen > 0
    assert (states[0.0].lik_mean, states[0.0].lik_var) == (states[1.0].lik_mean,
                                                          states[1.0].lik_var)


def test_value_trust_state_round_trips_and_older_states_start_it_fresh() -> None:
    a = DetectorState()
    for v in _daily(5, seed=9):
        decide(a, 1.0, 5.5, _params(), float(v))
    assert a.slope != 0.0 and a.value_rate != GAUSSIAN_RATE
    b = DetectorState.from_bytes(a.to_bytes())
    assert b == a
    assert decide(a, 7.0, 5.5, _params(), 150.0) == decide(b, 7.0, 5.5, _params(), 150.0)
    older = DetectorState.from_bytes(a.to_bytes()[:-32])  # written before the trust existed
    assert older.value_rate == GAUSSIAN_RATE and older.slope == 0.0
    assert older.value_tail == gaussian_tail(3.0) and older.value_last == DetectorState().value_last
    assert older.season_rate == a.season_rate and older.lik_seen == a.lik_seen
