from __future__ import annotations

import numpy as np
import pytest

from offline_training.calibration import calibrate, calibrate_per_key, per_key_shortfall


@pytest.mark.parametrize(("method", "value"), [("percentile", 0), ("percentile", 100),
                                               ("contamination", 0.5), ("fpr", 1.0),
                                               ("fpr", 0.0), ("median", 0.5), ("sigma", 0),
                                               ("sigma", -1.0)])
def test_arguments_are_range_checked(method: str, value: float) -> None:
    with pytest.raises(ValueError):
        calibrate([1.0, 2.0], method, value)


def test_fpr_threshold_lets_about_that_share_of_normal_scores_through() -> None:
    normal = np.random.default_rng(0).normal(size=100_000)
    threshold = calibrate(normal, "fpr", 0.01)
    assert abs((normal > threshold).mean() - 0.01) < 0.001
    assert calibrate(normal, "percentile", 99.0) == pytest.approx(threshold)


def test_non_finite_scores_are_ignored_and_empty_is_an_error() -> None:
    assert calibrate([1.0, np.nan, np.inf, 3.0], "percentile", 50) == 2.0
    with pytest.raises(ValueError, match="no finite"):
        calibrate([np.nan], "fpr", 0.1)


def test_per_key_thresholds_only_for_keys_with_enough_scores() -> None:
    rng = np.random.default_rng(1)
    scores = {"quiet": rng.normal(0, 1, 500), "loud": rng.normal(10, 1, 500), "few": [1.0] * 5}
    result = calibrate_per_key(scores, "percentile", 95.0, per_key=True)
    assert set(result.per_key) == {"quiet", "loud"}
    assert result.per_key["loud"] > result.default > result.per_key["quiet"]
    assert result.to_card()["method"] == "percentile"


def test_sigma_is_k_standard_deviations_above_the_mean_of_raw_scores() -> None:
    scores = np.random.default_rng(2).normal(3.0, 2.0, 100_000)
    assert calibrate(scores, "sigma", 4.5) == pytest.approx(3.0 + 4.5 * 2.0, abs=0.05)


def test_sigma_on_z_scores_is_k_itself_whatever_the_calibration_part_held() -> None:
    # a training part with its own spikes: its quantiles move, the z threshold does not
    spiky = {"a": np.r_[np.random.default_rng(3).normal(0, 1, 500), [9.0, 12.0]]}
    result = calibrate_per_key(spiky, "sigma", 4.5, per_key=True, zscores=True)
    assert (result.default, result.per_key) == (4.5, {})
    assert calibrate_per_key(spiky, "sigma", 4.5).default > 4.5  # raw scores: from the data
    with pytest.raises(ValueError):
        calibrate_per_key(spiky, "sigma", 0.0, zscores=True)


def test_the_train_summary_says_why_per_key_thresholds_are_missing() -> None:
    rng = np.random.default_rng(4)
    scores = {"quiet": rng.normal(0, 1, 500), "loud": rng.normal(10, 1, 500), "few": [1.0] * 5}
    some = calibrate_per_key(scores, "percentile", 95.0, per_key=True)
    assert per_key_shortfall(some, len(scores), zscores=False) == (
        "--per-key-thresholds: 1 of 3 keys had under 20 training scores and use the default "
        "threshold")
    zs = calibrate_per_key(scores, "sigma", 4.5, per_key=True, zscores=True)
    line = per_key_shortfall(zs, len(scores), zscores=True)
    assert "none stored" in line and "sigma 4.5 is the same for every key" in line
    full = calibrate_per_key({"quiet": scores["quiet"]}, "percentile", 95.0, per_key=True)
    assert per_key_shortfall(full, 1, zscores=False) == ""
