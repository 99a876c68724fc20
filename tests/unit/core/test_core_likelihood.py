"""The anomaly-likelihood stage: a run of moderately high scores, none over the threshold."""

from __future__ import annotations

import numpy as np

from stream_detector.core.detection import DetectionParams, DetectorState, decide

_LIKELIHOOD = 5.5 / 4.265  # likelihood 0.99999 alerts at threshold 5.5


def _params(weight: float) -> DetectionParams:
    return DetectionParams(halflife=96, warmup=96, suppress=48, likelihood_weight=weight)


def _scores(windows: int, seed: int) -> np.ndarray:
    """Raw scores whose logs are Gaussian (sd 0.3): the AE z-score is about N(0, 1)."""
    return np.exp(np.random.default_rng(seed).normal(0.0, 0.3, windows))


def test_likelihood_catches_a_run_of_moderate_scores_the_plain_z_misses() -> None:
    scores = _scores(3000, seed=1)
    start = 2500
    scores[start : start + 40] *= np.exp(2.5 * 0.3)  # z about 2.5 for 40 windows
    alerts = {}
    for weight in (0.0, _LIKELIHOOD):
        s = DetectorState()
        alerts[weight] = [i for i, r in enumerate(scores)
                          if decide(s, float(r), 5.5, _params(weight)).alert]
    assert alerts[0.0] == []
    assert len(alerts[_LIKELIHOOD]) == 1  # one incident, one page, early inside it
    assert start <= alerts[_LIKELIHOOD][0] < start + 20


def test_likelihood_stays_quiet_on_scores_that_are_usual_for_the_key() -> None:
    for seed in range(3):
        s = DetectorState()
        assert not any(decide(s, float(r), 5.5, _params(_LIKELIHOOD)).alert
                       for r in _scores(6000, seed=10 + seed))
        assert s.lik_seen == 6000 - 96  # counted from the end of the warm-up


def test_likelihood_state_round_trips_and_states_without_it_start_it_fresh() -> None:
    p = _params(_LIKELIHOOD)
    a = DetectorState()
    for r in _scores(300, seed=2):
        decide(a, float(r), 5.5, p)
    assert a.lik_seen > 0 and a.value_start == -1  # the AE alone, with the likelihood
    b = DetectorState.from_bytes(a.to_bytes())
    assert b == a
    assert decide(a, 9.0, 5.5, p) == decide(b, 9.0, 5.5, p)
    older = DetectorState.from_bytes(a.to_bytes()[:-32])  # written before the stage existed
    assert older.lik_seen == 0 and older.mean == a.mean and older.season_rate == a.season_rate
