"""ORT thread count timed on the machine: the Scorer keeps the fastest candidate."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
from model_fixtures import window_mean_model

from stream_detector.core import ort_threads
from stream_detector.core.scoring import Scorer


def test_doctests() -> None:
    failures, tried = doctest.testmod(ort_threads)
    assert tried and not failures


def test_auto_keeps_one_of_the_candidates_and_scores_as_a_fixed_count(tmp_path: Path) -> None:
    model = window_mean_model(8, 2)
    auto = Scorer(model, window=8, features=2, preference="cpu", intra_op_threads=ort_threads.AUTO)
    one = Scorer(model, window=8, features=2, preference="cpu", intra_op_threads=1)
    assert auto.threads in ort_threads.candidates() and one.threads == 1
    x = np.random.default_rng(0).normal(size=(5, 8, 2)).astype(np.float32)
    assert np.array_equal(auto.score(x).scores, one.score(x).scores)


def test_time_sessions_alternates_every_candidate() -> None:
    calls: list[int] = []
    timings = ort_threads.time_sessions({1: 1, 2: 2}, lambda s, x: calls.append(s), 4, 1)
    assert calls[:2] == [1, 2] and calls[2:6] == [1, 2, 1, 2]
    assert {t: len(v) for t, v in timings.items()} == {1: 15, 2: 15}
