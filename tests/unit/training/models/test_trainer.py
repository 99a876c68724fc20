"""Trainer behaviour: early stopping, determinism, history, chronological validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from offline_training.models import ScoringHead, build_model, make_time_weights
from offline_training.trainer import TrainConfig, fit, reconstruction_scores

W, F = 16, 2


def _data(n: int = 600, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n + W)[:, None]
    x = np.sin(2 * np.pi * t / 12 + np.array([0.0, 1.0])) + 0.05 * rng.normal(size=(n + W, F))
    return (
        np.lib.stride_tricks.sliding_window_view(x, W, axis=0)
        .transpose(0, 2, 1)[:n]
        .astype(np.float32)
    )


def _cfg(**kw: object) -> TrainConfig:
    base: dict[str, object] = {"max_epochs": 8, "batch_size": 64, "progress": False}
    return TrainConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_history_recorded_and_best_weights_restored() -> None:
    model = build_model("dense", W, F, {"hidden": [16, 4]}, seed=0)
    result = fit(model, _data(), _cfg())
    assert [h["epoch"] for h in result.history] == list(range(1, len(result.history) + 1))
    assert all({"epoch", "loss", "val_loss"} <= h.keys() for h in result.history)
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.device == "cpu" and result.seconds > 0
    best = min(h["val_loss"] for h in result.history)
    assert result.history[result.best_epoch - 1]["val_loss"] == best
    val = _data()[-60:]  # val_fraction 0.1 of 600: the last 60 windows
    scores, _ = reconstruction_scores(model, val)
    assert float(scores.mean()) == pytest.approx(best, rel=1e-4)
    assert not model.training


def test_early_stopping_triggers() -> None:
    model = build_model("dense", W, F, seed=0)
    # demand a 90% improvement per epoch: the second or third epoch cannot deliver it
    result = fit(model, _data(), _cfg(max_epochs=50, patience=2, min_delta=0.9))
    assert result.stopped_early
    assert len(result.history) == result.best_epoch + 2 < 50


def test_same_seed_same_weights_other_seed_differs() -> None:
    def trained(seed: int) -> dict[str, torch.Tensor]:
        model = build_model("conv1d", W, F, seed=seed)
        fit(model, _data(), _cfg(max_epochs=3, seed=seed))
        return model.state_dict()

    a, b, c = trained(0), trained(0), trained(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_validation_is_the_chronologically_last_part() -> None:
    data = _data()
    data[-60:] += 5.0  # only the most recent 10% moved: a random split would mix them in
    result = fit(build_model("dense", W, F, seed=0), data, _cfg(max_epochs=3))
    assert result.history[-1]["val_loss"] > 10 * result.history[-1]["loss"]


def test_rejects_bad_input() -> None:
    model = build_model("dense", W, F, seed=0)
    with pytest.raises(ValueError, match="NaN"):
        bad = _data()
        bad[3, 2, 1] = np.nan
        fit(model, bad, _cfg())
    with pytest.raises(ValueError, match="window, features"):
        fit(model, _data()[:, :, 0], _cfg())


def test_reconstruction_scores_follow_time_weights() -> None:
    model = build_model("lstm", W, F, seed=0).eval()
    x = _data()[:32]
    weights = make_time_weights(W, last=3)
    scores, errors = reconstruction_scores(model, x, time_weights=weights)
    np.testing.assert_allclose(scores, errors[:, -3:, :].mean(axis=(1, 2)), rtol=1e-5)
    head_scores, _ = ScoringHead(model, W, weights)(torch.from_numpy(x))
    np.testing.assert_allclose(scores, head_scores.detach().numpy(), rtol=1e-6)


def test_time_weights_validation() -> None:
    w = make_time_weights(10, last=2, emphasis=4.0)
    assert float(w.sum()) == pytest.approx(1.0)
    assert float(w[-1]) == pytest.approx(4 * float(w[0]))
    with pytest.raises(ValueError):
        make_time_weights(10, last=11)
    with pytest.raises(ValueError):
        ScoringHead(build_model("dense", 10, 1), 10, torch.ones(10))


def test_build_model_matches_seed_000_and_rejects_typos() -> None:
    model = build_model("dense", 50, 1, {"hidden": [64, 32], "output_activation": "sigmoid"})
    assert sum(p.numel() for p in model.parameters()) == 10_706  # seed 000's table
    with pytest.raises(ValueError, match="unknown dense config keys"):
        build_model("dense", 50, 1, {"hiden": [8]})
    with pytest.raises(ValueError, match="unknown model family"):
        build_model("gru", 50, 1)


@pytest.mark.parametrize("window", [1, 2, 7, 31, 50, 51])
def test_conv1d_reconstructs_exact_window(window: int) -> None:
    model = build_model("conv1d", window, 3, seed=0)
    assert model(torch.randn(4, window, 3)).shape == (4, window, 3)
