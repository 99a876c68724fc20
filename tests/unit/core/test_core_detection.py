"""Alert decisions: normalisation against a key's own history, warm-up, suppression."""

from __future__ import annotations

import doctest
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import stream_detector.core.detection
from stream_detector.core.detection import DetectionParams, DetectorState, alerts_of, decide


def test_doctests() -> None:
    failures, tried = doctest.testmod(stream_detector.core.detection)
    assert tried and not failures


def test_no_alert_during_warm_up_even_for_a_huge_score() -> None:
    p = DetectionParams(halflife=10, warmup=5, suppress=1)
    s = DetectorState()
    # the warm-up burst joins the plain running statistics; a far larger one alerts after
    decisions = [decide(s, v, 3.0, p) for v in [1, 1, 1, 1, 1000, 1, 1, 1e7]]
    assert [d.alert for d in decisions] == [False] * 7 + [True]
    assert decisions[4].warm_up and not decisions[7].warm_up


def test_suppression_pages_once_per_incident_then_rearms() -> None:
    p = DetectionParams(halflife=50, warmup=10, suppress=5)
    s = DetectorState()
    scores = [1.0] * 20 + [500.0] * 3 + [1.0] * 10 + [500.0]
    alerts = [i for i, v in enumerate(scores) if decide(s, v, 3.0, p).alert]
    assert alerts == [20, 33]


def test_normalisation_adapts_to_a_key_that_is_always_noisier() -> None:
    rng = np.random.default_rng(0)
    p = DetectionParams(halflife=20, warmup=20, suppress=1)
    quiet, loud = DetectorState(), DetectorState()
    qa = [decide(quiet, float(v), 4.0, p).alert for v in rng.lognormal(0, 0.2, 300)]
    la = [decide(loud, float(v), 4.0, p).alert for v in 50 * rng.lognormal(0, 0.2, 300)]
    assert sum(qa) <= 3 and sum(la) <= 3  # the scale of a key's scores does not matter


def test_raw_mode_compares_the_score_itself() -> None:
    p = DetectionParams(normalise=False, warmup=0, suppress=1)
    s = DetectorState()
    assert [decide(s, v, 2.0, p).alert for v in [1.0, 2.5, 1.0]] == [False, True, False]


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=50))
def test_state_round_trips_through_bytes(scores: list[float]) -> None:
    p = DetectionParams(halflife=5, warmup=2, suppress=2)
    a = DetectorState()
    for v in scores:
        decide(a, v, 3.0, p)
    b = DetectorState.from_bytes(a.to_bytes())
    assert b == a
    assert decide(a, 7.0, 3.0, p) == decide(b, 7.0, 3.0, p)


def _daily(days: int, rows: int = 48, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(days * rows)
    return 100 + 30 * np.sin(2 * np.pi * t / rows) + rng.normal(0, 1, t.size)


def test_season_component_catches_a_missing_daily_peak_the_flat_ae_score_misses() -> None:
    values = _daily(8)
    values[6 * 48 + 6 : 6 * 48 + 18] = 100.0  # day 7: the peak does not come
    with_season = DetectionParams(halflife=96, warmup=96, suppress=48, season=48,
                                  season_weight=1.0)
    ae_only = DetectionParams(halflife=96, warmup=96, suppress=48)
    alerts = {}
    for name, p in (("season", with_season), ("ae", ae_only)):
        s = DetectorState()
        alerts[name] = [i for i, v in enumerate(values)
                        if decide(s, 1.0, 5.0, p, float(v)).alert]  # the AE sees nothing
    assert alerts["ae"] == []
    assert alerts["season"] and 6 * 48 + 6 <= alerts["season"][0] < 6 * 48 + 18
    assert len(alerts["season"]) == 1  # one incident, one page


def test_value_components_stay_quiet_on_a_clean_seasonal_series() -> None:
    p = DetectionParams(halflife=96, warmup=96, suppress=1, season=48, season_weight=1.0,
                        value_weight=1.0)
    s = DetectorState()
    assert not any(decide(s, 1.0, 5.0, p, float(v)).alert for v in _daily(10, seed=1))


def test_value_state_round_trips_and_old_states_still_read() -> None:
    p = DetectionParams(halflife=5, warmup=2, suppress=2, season=7, season_weight=1.0,
                        value_weight=0.5, smooth=2)
    a = DetectorState()
    for i, v in enumerate(_daily(2, rows=7)):
        decide(a, 1.0 + i % 3, 3.0, p, float(v))
    b = DetectorState.from_bytes(a.to_bytes())
    assert b == a and len(a.ring) == 7
    assert decide(a, 7.0, 3.0, p, 150.0) == decide(b, 7.0, 3.0, p, 150.0)
    old = DetectorState(seen=3, last_alert=1, mean=0.5, var=0.1, last_z=2.0)
    assert len(old.to_bytes()) == 40 and DetectorState.from_bytes(old.to_bytes()) == old


def test_value_components_start_fresh_on_a_state_carried_from_a_model_without_them() -> None:
    ae_only = DetectionParams(halflife=96, warmup=96, suppress=1)
    seasonal = DetectionParams(halflife=96, warmup=96, suppress=1, season=48,
                               season_weight=1.0, value_weight=1.0)
    s = DetectorState()
    values = _daily(12, seed=2)
    for v in values[:300]:
        decide(s, 1.0, 5.0, ae_only, float(v))
    assert s.value_start == -1 and len(s.to_bytes()) == 40
    # the next model version weighs the value in: no alert against an empty seasonal ring
    assert not any(decide(s, 1.0, 5.0, seasonal, float(v)).alert for v in values[300:])
    assert s.value_start == 300 and len(s.ring) == 48
    assert DetectorState.from_bytes(s.to_bytes()) == s


def _shift_params(weight: float) -> DetectionParams:
    return DetectionParams(halflife=96, warmup=96, suppress=48, season=48, season_weight=0.6,
                           shift_weight=weight, shift_halflife=4, shift_base=48)


def test_shift_component_catches_a_level_shift_too_small_per_window_and_pages_once() -> None:
    values = _daily(10, seed=3)
    start = 7 * 48 + 10
    values[start : start + 24] += 6.0  # 6 noise sigmas for half a day: small per window
    alerts = {}
    for name, weight in (("shift", 1.0), ("season only", 0.0)):
        s = DetectorState()
        alerts[name] = [i for i, v in enumerate(values)
                        if decide(s, 1.0, 5.0, _shift_params(weight), float(v)).alert]
    assert alerts["season only"] == []
    assert len(alerts["shift"]) == 1  # one page, and no echo one season later
    assert start <= alerts["shift"][0] < start + 24


def test_shift_component_stays_quiet_on_clean_seasonal_series() -> None:
    for seed in range(3):
        s = DetectorState()
        assert not any(decide(s, 1.0, 5.0, _shift_params(1.0), float(v)).alert
                       for v in _daily(12, seed=10 + seed))


def test_shift_state_round_trips_and_states_without_it_start_it_fresh() -> None:
    p = _shift_params(1.0)
    a = DetectorState()
    for v in _daily(3, seed=4):
        decide(a, 1.0, 5.0, p, float(v))
    assert a.shift_seen == 3 * 48 - 48
    b = DetectorState.from_bytes(a.to_bytes())
    assert b == a
    assert decide(a, 7.0, 3.0, p, 150.0) == decide(b, 7.0, 3.0, p, 150.0)
    older = DetectorState.from_bytes(a.to_bytes()[:-40])  # written before the shift existed
    assert older.shift_seen == 0 and older.ring == a.ring and older.value_start == 0


@settings(max_examples=100, deadline=None)
@given(scores=st.lists(st.floats(0.0, 50.0), max_size=60), normalise=st.booleans(),
       warmup=st.integers(0, 10), suppress=st.integers(1, 6), threshold=st.floats(0.0, 5.0))
def test_alerts_of_takes_decides_decisions_keeping_only_the_alerts(
    scores: list[float], normalise: bool, warmup: int, suppress: int, threshold: float
) -> None:
    p = DetectionParams(halflife=4, warmup=warmup, suppress=suppress, normalise=normalise,
                        season=7, season_weight=1.0, value_weight=0.5, value_trend=0.3,
                        value_gate=1.0, shift_trend=0.1, shift_hold=2.0, burst_weight=0.5,
                        burst_halflife=2, burst_gate=1.0, value_excess=0.5, habituate=1.5,
                        habituate_ae=2.0, habituate_halflife=4, shift_weight=1.0, shift_halflife=2,
                        shift_base=4, season_gate=1.0,
                        gate_halflife=3, likelihood_weight=1.0, likelihood_halflife=2,
                        likelihood_base=0.5)
    one, many = DetectorState(), DetectorState()
    values = [float(i % 7) for i in range(len(scores))]
    learn = [i % 5 != 3 for i in range(len(scores))]
    decisions = [decide(one, s, threshold, p, values[i], learn[i]) for i, s in enumerate(scores)]
    want = [(i, d.detection_score) for i, d in enumerate(decisions) if d.alert]
    assert alerts_of(many, scores, threshold, p, values, learn) == want
    assert many == one  # the key's history ends the same


def _gated(gate: float) -> DetectionParams:
    return DetectionParams(halflife=96, warmup=96, suppress=48, season=48, season_weight=1.0,
                           season_gate=gate, gate_halflife=480)


def test_season_trust_quiets_a_bursty_key_and_keeps_a_gaussian_one_sensitive() -> None:
    rng = np.random.default_rng(5)
    bursty = _daily(20, seed=5)
    hit = rng.random(bursty.size) < 0.03  # bursts in 3% of windows, ~7 noise sigmas each:
    bursty[hit] += rng.lognormal(2.0, 0.7, int(hit.sum()))  # ordinary for this key
    alerts = {}
    for gate in (0.0, 1.0):
        s = DetectorState()
        alerts[gate] = sum(decide(s, 1.0, 5.0, _gated(gate), float(v)).alert for v in bursty)
        assert s.season_rate > 0.01 if gate else s.season_rate == 0.0027
    assert alerts[0.0] >= 5 and alerts[1.0] <= 1
    # on Gaussian residuals the trust stays full: the missing daily peak is still caught
    values = _daily(8)
    values[6 * 48 + 6 : 6 * 48 + 18] = 100.0
    s = DetectorState()
    found = [i for i, v in enumerate(values) if decide(s, 1.0, 5.0, _gated(1.0), float(v)).alert]
    assert len(found) == 1 and 6 * 48 + 6 <= found[0] < 6 * 48 + 18


def test_season_trust_state_round_trips_and_older_states_start_at_the_prior() -> None:
    a = DetectorState()
    for v in _daily(5, seed=6):
        decide(a, 1.0, 5.0, _gated(1.0), float(v))
    assert a.season_rate != 0.0027
    b = DetectorState.from_bytes(a.to_bytes())
    assert b == a
    assert decide(a, 7.0, 3.0, _gated(1.0), 150.0) == decide(b, 7.0, 3.0, _gated(1.0), 150.0)
    older = DetectorState.from_bytes(a.to_bytes()[:-8])  # written before the trust existed
    assert older.season_rate == 0.0027 and older.shift_seen == a.shift_seen


@settings(max_examples=100, deadline=None)
@given(scores=st.lists(st.one_of(st.floats(0.0, 50.0), st.just(math.nan)), max_size=60),
       threshold=st.sampled_from([10.0, 50.0, 60.0]), warmup=st.integers(0, 3))
def test_raw_scores_under_the_threshold_are_counted_as_decide_counts_them(
    scores: list[float], threshold: float, warmup: int
) -> None:
    p = DetectionParams(normalise=False, warmup=warmup, suppress=1)
    one, many = DetectorState(seen=5, last_z=1.5), DetectorState(seen=5, last_z=1.5)
    decisions = [decide(one, s, threshold, p) for s in scores]
    want = [(i, d.detection_score) for i, d in enumerate(decisions) if d.alert]
    got = alerts_of(many, scores, threshold, p)
    assert got == want
    assert many.seen == one.seen and many.last_alert == one.last_alert
    assert many.last_z == one.last_z or (math.isnan(many.last_z) and math.isnan(one.last_z))
