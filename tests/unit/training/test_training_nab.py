"""NAB scoring on small explicit timelines, and against NAB's published numbers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offline_training import nab
from offline_training.load_tables import load_series
from stream_detector.exceptions import DataError


def sig(x: float) -> float:
    """NAB's scaledSigmoid written out independently of the module under test."""
    return -1.0 if x > 3 else 2 * (1 / (1 + math.exp(5 * x))) - 1


def alerts(n: int, *rows: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[list(rows)] = True
    return out


# Timeline used by most tests (20 rows, no probation unless a test says so):
#
#   row:  0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19
#   win:                      [ W  W  W  W ]
#                             10          13   width 4
WIN = [(10, 13)]
N = 20


def score(*rows: int, profile: str = "standard") -> float:
    return nab.score_file(alerts(N, *rows), WIN, profile, probation_percent=0.0).score


def test_scaled_sigmoid_matches_nab_reference_points() -> None:
    got = nab.scaled_sigmoid(np.array([-1.0, -0.5, 0.0, 1.0, 3.0, 3.01, 1e6]))
    expected = [0.98661, 0.84828, 0.0, -0.98661, sig(3.0), -1.0, -1.0]
    assert got == pytest.approx(expected, abs=1e-5)


def test_probationary_length_is_15_percent_capped_at_750() -> None:
    assert nab.probationary_length(100) == 15
    assert nab.probationary_length(4999) == 749
    assert nab.probationary_length(15902) == 750


def test_detection_at_window_start_earns_full_tp_weight() -> None:
    assert score(10) == pytest.approx(1.0)


def test_detection_at_window_end_earns_little() -> None:
    # Last row of a width-4 window: position -(13 - 13 + 1) / 4 = -0.25.
    assert score(13) == pytest.approx(sig(-0.25) / sig(-1.0))
    assert 0 < score(13) < score(12) < score(11) < score(10)


def test_only_first_detection_in_a_window_counts() -> None:
    assert score(11, 12, 13) == pytest.approx(score(11))
    assert score(10, 13) == pytest.approx(score(10))


def test_missed_window_costs_fn_weight_per_profile() -> None:
    assert score() == pytest.approx(-1.0)
    assert score(profile="reward_low_FN_rate") == pytest.approx(-2.0)


def test_false_positive_before_any_window_costs_full_fp_weight() -> None:
    # Row 2 alerts, the window is missed: -0.11 (far FP) - 1.0 (FN).
    assert score(2) == pytest.approx(-1.11)
    assert score(2, profile="reward_low_FP_rate") == pytest.approx(-1.22)


def test_false_positive_after_a_window_is_weighted_by_distance() -> None:
    # Row 16 is 3 rows past the window end; NAB divides by width - 1 = 3: position 1.0.
    assert score(10, 16) == pytest.approx(1.0 + 0.11 * sig(1.0))
    # Right after the window the penalty is small, and it grows with distance.
    assert score(10, 14) > score(10, 16) > score(10, 19)
    # More than 3 widths away is as bad as no preceding window.
    far = nab.score_file(alerts(40, 10, 30), WIN, "standard", 0.0).score
    assert far == pytest.approx(1.0 - 0.11)


def test_probationary_rows_are_not_scored() -> None:
    # 100 rows -> rows 0..14 are probationary. Window 40..49.
    #   row: 0 .. 5 .. 14 | 15 .......... 40 [W ... W] 49 ..... 99
    windows = [(40, 49)]
    base = nab.score_file(alerts(100, 40), windows).score
    assert base == pytest.approx(1.0)
    assert nab.score_file(alerts(100, 40, 5), windows).score == pytest.approx(base)
    assert nab.score_file(alerts(100, 40, 15), windows).score == pytest.approx(base - 0.11)


def test_window_inside_probation_is_neither_hit_nor_missed() -> None:
    #   row: 0 [2 .. 5] .. 14 | 15 ..... 99   (window wholly probationary)
    result = nab.score_file(alerts(100), [(2, 5), (40, 49)])
    assert result.windows == 1
    assert result.score == pytest.approx(-1.0)


def test_counts_follow_nab_row_semantics() -> None:
    result = nab.score_file(alerts(N, 2, 10, 11, 16), WIN, probation_percent=0.0)
    assert (result.tp, result.fp, result.fn, result.tn) == (2, 2, 2, 14)
    assert result.detected_windows == 1


def test_perfect_detector_scores_100_and_null_scores_0() -> None:
    windows = {"a": [(10, 13)], "b": [(5, 6), (12, 18)]}
    perfect = {"a": alerts(N, 10), "b": alerts(N, 5, 12)}
    null = {name: alerts(N) for name in windows}
    assert nab.score_corpus(perfect, windows, probation_percent=0.0).normalized == pytest.approx(
        100
    )
    result = nab.score_corpus(null, windows, probation_percent=0.0)
    assert result.normalized == pytest.approx(0.0)
    assert (result.null, result.perfect) == pytest.approx((-3.0, 3.0))


def test_one_far_false_positive_has_known_normalised_score() -> None:
    windows = {"a": [(10, 13)]}
    result = nab.score_corpus({"a": alerts(N, 10, 2)}, windows, probation_percent=0.0)
    # raw = 1 - 0.11; null = -1; perfect = 1 -> 100 * 1.89 / 2
    assert result.normalized == pytest.approx(94.5)
    assert result.files["a"].to_dict()["fp"] == 1.0


def test_corpus_requires_labels_for_every_file() -> None:
    with pytest.raises(DataError, match="no label windows"):
        nab.score_corpus({"x": alerts(N)}, {})


@settings(max_examples=50, deadline=None)
@given(st.lists(st.booleans(), min_size=N, max_size=N))
def test_no_detector_beats_perfect(flags: list[bool]) -> None:
    windows = {"a": [(3, 5), (10, 13)]}
    result = nab.score_corpus({"a": np.array(flags)}, windows, probation_percent=0.0)
    assert result.raw <= result.perfect + 1e-12
    assert result.normalized <= 100 + 1e-9


def test_window_indices_map_times_inclusively_and_reject_bad_windows() -> None:
    stamps = np.arange("2015-01-01T00:00", "2015-01-01T01:00", 5, dtype="datetime64[m]")
    got = nab.window_indices(stamps, [("2015-01-01 00:10", "2015-01-01 00:20")])
    assert got == [(2, 4)]
    with pytest.raises(DataError, match="contains no row"):
        nab.window_indices(stamps, [("2015-01-02", "2015-01-03")])
    with pytest.raises(DataError, match="overlaps"):
        nab.window_indices(
            stamps,
            [("2015-01-01 00:10", "2015-01-01 00:20"), ("2015-01-01 00:15", "2015-01-01 00:30")],
        )


def test_load_windows_rejects_malformed_json(tmp_path: Path) -> None:
    bad = tmp_path / "w.json"
    bad.write_text('{"a.csv": [["2015-01-01"]]}')
    with pytest.raises(DataError, match="a.csv"):
        nab.load_windows(bad)


# Alerts of NAB's "numenta" detector at its standard-profile threshold (0.5421876907348634),
# taken from NAB's results/numenta/realTweets/*.csv; expected scores and counts are NAB's
# published results/numenta/numenta_standard_scores.csv rows for the same files.
NUMENTA_ALERTS = {
    "AAPL": (
        [
            2,
            3,
            5,
            7,
            8,
            234,
            1432,
            1433,
            1434,
            4368,
            4456,
            4831,
            4957,
            4958,
            4959,
            9172,
            9281,
            9284,
            9285,
            9489,
            13447,
            13551,
            15535,
        ],
        1.26389791486,
        (11, 6, 1577, 13558),
    ),
    "KO": (
        [3, 4, 25, 51, 69, 91, 92, 514, 617, 5793, 6241, 11691, 11832, 11833, 13454, 13455, 14386],
        2.46249313699,
        (6, 2, 1581, 13512),
    ),
}


@pytest.mark.parametrize("name", sorted(NUMENTA_ALERTS))
def test_matches_nab_published_score_for_numenta_detector(name: str, nab_dir: Path) -> None:
    rows, expected, counts = NUMENTA_ALERTS[name]
    series = load_series(nab_dir / f"data/realTweets/Twitter_volume_{name}.csv")
    labels = nab.load_windows(nab_dir / "labels/combined_windows.json")
    windows = nab.window_indices(series.timestamps, labels[f"realTweets/Twitter_volume_{name}.csv"])
    result = nab.score_file(alerts(len(series.values), *rows), windows)
    assert result.score == pytest.approx(expected, abs=1e-9)
    assert (result.tp, result.fp, result.fn, result.tn) == counts
