"""One contract for every model family: shapes, ONNX parity, score direction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
from sklearn.metrics import roc_auc_score

from offline_training.export import export_onnx, sha256_file, verify_parity
from offline_training.models import ScoringHead, build_model, make_time_weights
from offline_training.trainer import TrainConfig, fit, reconstruction_scores
from schemas.kinds import AUTOENCODER_FAMILIES

WINDOW = 32  # the series fixture's window length
# a family not named here (a new one) runs on series windows with the dense settings
SHAPES = {"events": (1, 57)}
TRAIN = {
    "dense": TrainConfig(max_epochs=20, lr=3e-3, progress=False),
    "lstm": TrainConfig(max_epochs=12, lr=1e-2, batch_size=128, progress=False),
    "conv1d": TrainConfig(max_epochs=20, lr=3e-3, batch_size=128, progress=False),
    "events": TrainConfig(max_epochs=30, lr=3e-3, progress=False),
}


def shape(family: str) -> tuple[int, int]:
    """(window, features) of the family's test windows."""
    return SHAPES.get(family, (WINDOW, 1))
_trained: dict[str, torch.nn.Module] = {}


def _data(family: str, request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("events" if family == "events" else "series")


def _trained_model(family: str, request: pytest.FixtureRequest) -> torch.nn.Module:
    if family not in _trained:
        window, features = shape(family)
        model = build_model(family, window, features, seed=0)
        fit(model, _data(family, request).train, TRAIN.get(family, TRAIN["dense"]))
        _trained[family] = model
    return _trained[family]


@pytest.mark.parametrize("family", AUTOENCODER_FAMILIES)
@pytest.mark.parametrize("batch", [1, 5])
def test_output_shapes(family: str, batch: int) -> None:
    window, features = shape(family)
    head = ScoringHead(build_model(family, window, features, seed=0), window).eval()
    score, errors = head(torch.randn(batch, window, features))
    assert score.shape == (batch,)
    assert errors.shape == (batch, window, features)
    assert bool((errors >= 0).all())
    torch.testing.assert_close(score, errors.mean(dim=(1, 2)))  # uniform time weights


@pytest.mark.parametrize("family", AUTOENCODER_FAMILIES)
def test_onnx_parity_and_dynamic_batch(family: str, tmp_path: Path) -> None:
    window, features = shape(family)
    model = build_model(family, window, features, seed=1)
    path = tmp_path / "model.onnx"
    digest = export_onnx(model, window, features, path)
    assert digest == sha256_file(path) and len(digest) == 64
    assert model.training  # export worked on a copy
    assert verify_parity(model, path, n=64) <= 1e-5
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["windows"]
    assert [o.name for o in session.get_outputs()] == ["score", "errors", "reconstruction"]
    for batch in (1, 7):
        x = np.random.default_rng(batch).normal(size=(batch, window, features)).astype(np.float32)
        score, errors, recon = session.run(None, {"windows": x})
        assert score.shape == (batch,) and errors.shape == (batch, window, features)
        np.testing.assert_allclose(errors, (recon - x) ** 2, rtol=1e-4, atol=1e-5)


def test_parity_with_time_weights_and_batch_norm(tmp_path: Path) -> None:
    model = build_model("dense", WINDOW, 2, {"batch_norm": True, "dropout": 0.3}, seed=2)
    model.train()
    with torch.no_grad():  # move the running stats away from their defaults
        model(torch.randn(64, WINDOW, 2) * 3 + 1)
    weights = make_time_weights(WINDOW, last=4)
    export_onnx(model, WINDOW, 2, tmp_path / "m.onnx", time_weights=weights)
    assert verify_parity(model, tmp_path / "m.onnx", time_weights=weights) <= 1e-5
    with pytest.raises(ValueError, match="parity"):  # uniform weights give other scores
        verify_parity(model, tmp_path / "m.onnx", atol=1e-5)
    with pytest.raises(ValueError, match="parity"):  # a relative allowance does not hide it
        verify_parity(model, tmp_path / "m.onnx", atol=1e-5, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("family", AUTOENCODER_FAMILIES)
def test_score_direction(family: str, request: pytest.FixtureRequest) -> None:
    data = _data(family, request)
    scores, _ = reconstruction_scores(_trained_model(family, request), data.test)
    auc = roc_auc_score(data.labels, scores)
    print(f"{family} AUC {auc:.3f}")
    assert auc >= (0.9 if family == "events" else 0.95)


@pytest.mark.slow
@pytest.mark.parametrize("family", AUTOENCODER_FAMILIES)
def test_trained_model_onnx_scores_match(
    family: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    model = _trained_model(family, request)
    window, features = shape(family)
    export_onnx(model, window, features, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    x = _data(family, request).test[:256]
    onnx_score = session.run(["score"], {"windows": x})[0]
    torch_score, _ = reconstruction_scores(model, x)
    np.testing.assert_allclose(onnx_score, torch_score, rtol=1e-4, atol=1e-6)


class _Zero(torch.nn.Module):
    """An "AE" that reconstructs every input as 0, so the errors are the inputs squared."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(1))  # export needs a parameter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0.0 + self.bias


def test_feature_scale_and_rms_aggregate_by_hand() -> None:
    x = torch.tensor([[[2.0, 4.0, 0.0]], [[1.0, 0.0, 3.0]]])  # errors [4, 16, 0], [1, 0, 9]
    mean = ScoringHead(_Zero(), 1)
    scaled = ScoringHead(_Zero(), 1, feature_scale=np.array([1.0, 4.0, 9.0]))
    rms = ScoringHead(_Zero(), 1, feature_scale=np.array([1.0, 4.0, 9.0]), aggregate="rms")
    torch.testing.assert_close(mean(x)[0], torch.tensor([20 / 3, 10 / 3]))
    torch.testing.assert_close(scaled(x)[0], torch.tensor([8 / 3, 2 / 3]))  # [4,4,0], [1,0,1]
    torch.testing.assert_close(rms(x)[0], torch.tensor([(32 / 3) ** 0.5, (2 / 3) ** 0.5]))
    torch.testing.assert_close(rms(x)[1], mean(x)[1])  # errors stay plain squared errors
    assert rms.card_section() == {"aggregate": "rms", "feature_scale": [1.0, 4.0, 9.0]}
    with pytest.raises(ValueError, match="positive"):
        ScoringHead(_Zero(), 1, feature_scale=np.array([1.0, 0.0, 2.0]))


def test_scaled_rms_head_exports_with_parity(tmp_path: Path) -> None:
    model = build_model("events", 1, 57, seed=3)
    scale = np.random.default_rng(0).uniform(0.1, 5.0, 57)
    head = ScoringHead(model, 1, feature_scale=scale, aggregate="rms")
    export_onnx(head, 1, 57, tmp_path / "m.onnx")
    assert verify_parity(head, tmp_path / "m.onnx") <= 1e-5
    with pytest.raises(ValueError, match="parity"):  # the plain mean gives other scores
        verify_parity(model, tmp_path / "m.onnx")
