"""Alert decisions: normalisation against a key's own history, warm-up, suppression."""

from __future__ import annotations

import doctest

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import stream_detector.detection
from stream_detector.detection import DetectionParams, DetectorState, alerts_of, decide


def test_doctests() -> None:
    failures, tried = doctest.testmod(stream_detector.detection)
    assert tried and not failures


def test_no_alert_during_warm_up_even_for_a_huge_score() -> None:
    p = DetectionParams(halflife=10, warmup=5, suppress=1)
    s = DetectorState()
    decisions = [decide(s, v, 3.0, p) for v in [1, 1, 1, 1, 1000, 1, 1, 1000]]
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


@settings(max_examples=100, deadline=None)
@given(scores=st.lists(st.floats(0.0, 50.0), max_size=60), normalise=st.booleans(),
       warmup=st.integers(0, 10), suppress=st.integers(1, 6), threshold=st.floats(0.0, 5.0))
def test_alerts_of_takes_decides_decisions_keeping_only_the_alerts(
    scores: list[float], normalise: bool, warmup: int, suppress: int, threshold: float
) -> None:
    p = DetectionParams(halflife=4, warmup=warmup, suppress=suppress, normalise=normalise)
    one, many = DetectorState(), DetectorState()
    decisions = [decide(one, s, threshold, p) for s in scores]
    want = [(i, d.detection_score) for i, d in enumerate(decisions) if d.alert]
    assert alerts_of(many, scores, threshold, p) == want
    assert many == one  # the key's history ends the same
