"""The generated held-out proxy: NAB's windowed-Gaussian baseline, the per-family scoring,
and one real scoring pass of two irregular families through the worker's pipeline."""

from __future__ import annotations

import doctest
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks import detection_heldout
from benchmarks.detection_heldout import (
    GAUSSIAN,
    family_scores,
    gaussian_score,
    gaussian_thresholds,
    heldout_detections,
    markdown,
    windowed_gaussian,
)
from offline_training.synthetic_heldout import make_heldout
from offline_training.train import train
from offline_training.train_options import TrainOptions
from offline_training.trainer import TrainConfig


def test_doctests() -> None:
    result = doctest.testmod(detection_heldout)
    assert result.attempted > 0 and result.failed == 0


def test_a_spike_in_gaussian_noise_scores_high_and_the_noise_does_not() -> None:
    values = np.random.default_rng(0).normal(10.0, 1.0, 2000)
    values[1500] += 8.0
    z = windowed_gaussian(values)
    assert z[1500] > 6.0
    assert np.delete(z[100:], 1400).max() < 4.5
    assert gaussian_score(z[1500:1501])[0] > 0.999999


def test_each_value_is_judged_against_its_past_only() -> None:
    values = np.random.default_rng(1).normal(0.0, 1.0, 500)
    changed = values.copy()
    changed[300:] += 50.0
    before, after = windowed_gaussian(values), windowed_gaussian(changed)
    assert np.array_equal(before[:300], after[:300])
    assert after[300] > 20.0 > before[300]


def test_the_window_moves_by_steps_once_full() -> None:
    values = np.concatenate([np.zeros(30), np.ones(30) * 5.0, [5.0]])
    values += np.random.default_rng(2).normal(0.0, 0.1, values.size)
    # window 20, step 10: at row 60 the window holds rows 30-49 (row 50-59 wait in the step)
    z = windowed_gaussian(values, window=20, step=10)
    assert z[60] < 4.0 and z[30] > 20.0


def test_a_constant_series_divides_by_no_zero() -> None:
    # pytest turns warnings (RuntimeWarning: divide by zero) into errors
    z = windowed_gaussian(np.full(300, 7.0))
    assert np.all(np.isfinite(z)) and np.all(z == 0.0)
    jump = windowed_gaussian(np.concatenate([np.full(300, 7.0), [8.0]]))
    assert np.isfinite(jump[-1]) and jump[-1] > 1e5


def test_family_scores_perfect_null_and_kinds() -> None:
    series = {f"cpu/{s}": make_heldout("cpu", s) for s in range(2)}
    perfect = {}
    for k, one in series.items():
        flags = np.zeros(one.values.size, bool)
        for a in one.anomalies:
            flags[a.window_start] = True
        perfect[k] = flags
    got = family_scores(perfect, series)["cpu"]
    assert got["standard"] == 100.0 and got["false_positives"] == 0
    assert got["windows_found"] == got["windows"] == 4
    assert got["recall"] == {"saturation": 1.0, "step_change": 1.0}
    null = {k: np.zeros(v.values.size, bool) for k, v in series.items()}
    assert family_scores(null, series)["cpu"]["standard"] == 0.0
    one_kind = {k: v.copy() for k, v in perfect.items()}
    for k, one in series.items():
        a = next(a for a in one.anomalies if a.kind == "saturation")
        one_kind[k][a.window_start] = False
    assert family_scores(one_kind, series)["cpu"]["recall"]["saturation"] == 0.0


def test_the_gaussian_threshold_is_chosen_on_the_corpus() -> None:
    series = {"price/0": make_heldout("price", 0)}
    z = windowed_gaussian(series["price/0"].values)
    chosen = gaussian_thresholds({"price/0": z}, series)
    assert set(chosen) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}
    # the chosen threshold is at least as good as every other one on the grid
    best = family_scores({"price/0": z >= chosen["standard"]}, series)["price"]["standard"]
    for other in (2.0, 4.0, 8.0):
        assert family_scores({"price/0": z >= other}, series)["price"]["standard"] <= best


def _result() -> dict[str, Any]:
    cell = {"standard": 50.0, "reward_low_FP_rate": 40.0, "reward_low_FN_rate": 60.0,
            "windows_found": 1, "windows": 2, "false_positives": 3,
            "recall": {"a": 0.5}}
    families = ("cpu", "sensor", "traffic", "price", "demand")
    return {"seeds": [0, 1], "seconds": 12, "gaussian_z": {"standard": 4.0},
            "detectors": {"default": dict.fromkeys(families, cell),
                          GAUSSIAN: dict.fromkeys(families, cell)}}


def test_markdown_gives_each_family_and_the_mean() -> None:
    md = "\n".join(markdown(_result()))
    assert "| default | 50.0 / 40.0 / 60.0 | 50.0 / 40.0 / 60.0 |" in md
    assert "| 50.0 |" in md and "seeds 0-1" in md and "took 12 s" in md
    assert "| demand | default | 1/2 | 3 | a 0.5 |" in md


def _train(path: Path, registry: Path, epochs: int, **options: Any) -> Path:
    """detection_quality's trainer: the default options, ``epochs`` epochs, one thread."""
    return train(TrainOptions(data=path, out=registry, plots=False,
                              train=TrainConfig(max_epochs=epochs, progress=False,
                                                num_threads=1), **options)).path


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_irregular_families_are_scored_row_by_row(tmp_path: Path) -> None:
    """A real model per file (2 epochs): every window's alert lands on its own row, gaps
    and jitter included, and the replayed variant differs only where it should."""
    out, series, gauss = heldout_detections(
        2, tmp_path, _train, {"default": {}, "never": {"warmup": 10**9}}, range(1),
        ("price", "sensor"))
    assert set(series) == {"price/0", "sensor/0"}
    for name, one in series.items():
        assert out["default"][name].shape == one.values.shape == gauss[name].shape
        assert not out["never"][name].any()
    assert sum(int(v.sum()) for v in out["default"].values()) >= 1
