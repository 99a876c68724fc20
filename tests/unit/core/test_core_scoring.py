"""Provider choice, the Scorer on a tiny hand-built ONNX graph, scaling
and the model registry (verification and hot-swap)."""

from __future__ import annotations

import glob
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from schemas.card import ModelCard, ScalerCard
from stream_detector.core import providers as providers_module
from stream_detector.core import registry as registry_module
from stream_detector.core.providers import CPU, select_providers
from stream_detector.core.registry import ModelRegistry, load_model, read_card
from stream_detector.core.scoring import (
    BATCH_BYTES,
    ScaleTable,
    Scorer,
    apply_scaler,
)
from stream_detector.exceptions import ConfigurationError, ModelCardError, ModelCardMismatch

HAS_GPU = bool(glob.glob("/dev/nvidia[0-9]*"))
NOISE = ("CUDA", "cuda", "Failed to load", "onnxruntime", "libcu", "[E:", "[W:")


def tiny_onnx(
    window: int = 4,
    features: int = 2,
    factor: float = 0.5,
    *,
    static: bool = False,
    reconstruction: bool = False,
    input_name: str = "windows",
) -> bytes:
    """recon = factor * x; errors = (x - recon)^2; score = mean(errors) per window."""
    batch: int | str = 3 if static else "batch"
    shape = [batch, window, features]
    x = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, shape)
    outputs = [
        helper.make_tensor_value_info("score", TensorProto.FLOAT, [batch]),
        helper.make_tensor_value_info("errors", TensorProto.FLOAT, shape),
    ]
    if reconstruction:
        outputs.append(helper.make_tensor_value_info("reconstruction", TensorProto.FLOAT, shape))
    nodes = [
        helper.make_node("Mul", [input_name, "factor"], ["reconstruction"]),
        helper.make_node("Sub", [input_name, "reconstruction"], ["diff"]),
        helper.make_node("Mul", ["diff", "diff"], ["errors"]),
        helper.make_node("ReduceMean", ["errors"], ["score"], axes=[1, 2], keepdims=0),
    ]
    factor_t = helper.make_tensor("factor", TensorProto.FLOAT, [], [factor])
    graph = helper.make_graph(nodes, "tiny", [x], outputs, initializer=[factor_t])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def card_dict(onnx_bytes: bytes, **over: Any) -> dict[str, Any]:
    card: dict[str, Any] = {
        "name": "tiny",
        "version": "1",
        "family": "dense",
        "created_at": "2026-11-22T07:00:00Z",
        "onnx_sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "record_kind": "series",
        "window": 4,
        "stride": 1,
        "features": ["a", "b"],
        "scaler": {"method": "none"},
        "thresholds": {"method": "percentile", "value_param": 99.0, "default": 1.0},
        "data_sha256": "0" * 64,
    }
    card.update(over)
    return card


def write_model(directory: Path, onnx_bytes: bytes | None = None, **over: Any) -> Path:
    onnx_bytes = onnx_bytes if onnx_bytes is not None else tiny_onnx()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.onnx").write_bytes(onnx_bytes)
    (directory / "card.json").write_text(json.dumps(card_dict(onnx_bytes, **over)))
    return directory


# --- providers ------------------------------------------------------------------------


def test_cpu_preference_is_cpu() -> None:
    assert select_providers("cpu") == [CPU]


def test_auto_is_quiet_and_cpu_without_gpu(capfd: pytest.CaptureFixture[str]) -> None:
    providers = select_providers("auto")
    scorer = Scorer(tiny_onnx(), window=4, features=2, preference="auto")
    scorer.score(np.ones((2, 4, 2), np.float32))
    out, err = capfd.readouterr()
    assert not any(n in out + err for n in NOISE), out + err
    assert providers[-1] == CPU
    if not HAS_GPU:
        assert providers == [CPU]
        assert scorer.provider == CPU


@pytest.mark.skipif(HAS_GPU, reason="needs a machine without an NVIDIA GPU")
@pytest.mark.parametrize("preference", ["cuda", "tensorrt"])
def test_forced_gpu_without_gpu_is_a_clear_error(
    preference: str, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigurationError, match="STREAM_DETECTOR_PROVIDER=auto"):
        select_providers(preference)
    out, err = capfd.readouterr()
    assert out + err == ""


def test_unknown_preference() -> None:
    with pytest.raises(ConfigurationError, match="unknown provider"):
        select_providers("tpu")


# --- Scorer ---------------------------------------------------------------------------


def test_scores_follow_the_graph() -> None:
    scorer = Scorer(tiny_onnx(factor=0.5), window=4, features=2, preference="cpu")
    x = np.random.default_rng(0).normal(size=(5, 4, 2)).astype(np.float32)
    out = scorer.score(x)
    errors = (0.5 * x) ** 2
    np.testing.assert_allclose(out.errors, errors, rtol=1e-6)
    np.testing.assert_allclose(out.scores, errors.mean(axis=(1, 2)), rtol=1e-6)
    assert out.scores.shape == (5,) and out.scores.dtype == np.float32
    assert out.reconstructions is None


@pytest.mark.parametrize("recon", [False, True])
def test_score_ready_returns_what_the_session_returns(recon: bool) -> None:
    """The stage's call (ORT's C-level run on a CPU session) gives session.run's arrays."""
    scorer = Scorer(tiny_onnx(reconstruction=recon), window=4, features=2, preference="cpu")
    assert scorer.c_level_run  # the CPU fast path is taken here
    x = np.random.default_rng(2).normal(size=(6, 4, 2)).astype(np.float32)
    want = scorer.session.run(list(scorer.outputs), {"windows": x})
    got = scorer.score_ready(x)
    parts = [got.scores, got.errors] + ([got.reconstructions] if recon else [])
    assert len(parts) == len(want) and (got.reconstructions is None) != recon
    for g, w in zip(parts, want, strict=True):
        assert g.dtype == np.float32
        np.testing.assert_array_equal(g, w)
    np.testing.assert_array_equal(scorer.score(x).errors, got.errors)


def test_chunking_gives_the_same_result() -> None:
    x = np.random.default_rng(1).normal(size=(10, 4, 2)).astype(np.float32)
    whole = Scorer(tiny_onnx(), window=4, features=2, preference="cpu").score(x)
    chunked = Scorer(tiny_onnx(), window=4, features=2, preference="cpu", max_batch=3).score(x)
    np.testing.assert_array_equal(whole.scores, chunked.scores)
    np.testing.assert_array_equal(whole.errors, chunked.errors)


def test_the_default_call_size_is_a_megabyte_of_input_windows() -> None:
    """A batch of small windows is one ONNX Runtime call (not calls of 1,024 joined);
    large windows are cut so that a call takes about BATCH_BYTES of input, 64 at least."""
    small = Scorer(tiny_onnx(), window=4, features=2, preference="cpu")
    assert small.max_batch == BATCH_BYTES // (4 * 4 * 2) > 1024
    x = np.random.default_rng(2).normal(size=(small.max_batch + 5, 4, 2)).astype(np.float32)
    whole, cut = small.score(x), small.score(x[:-5])
    np.testing.assert_array_equal(whole.scores[:-5], cut.scores)
    assert Scorer(tiny_onnx(), window=4, features=2, preference="cpu",
                  max_batch=3).max_batch == 3


def test_empty_batch_and_float64_input() -> None:
    scorer = Scorer(tiny_onnx(reconstruction=True), window=4, features=2, preference="cpu")
    empty = scorer.score(np.zeros((0, 4, 2)))
    assert empty.scores.shape == (0,) and empty.errors.shape == (0, 4, 2)
    out = scorer.score(np.full((1, 4, 2), 2.0))  # float64 in, converted
    assert out.reconstructions is not None
    np.testing.assert_allclose(out.reconstructions, 1.0)


@pytest.mark.parametrize("shape", [(2, 3, 2), (2, 4, 3), (4, 2), (1, 1, 4, 2)])
def test_wrong_input_shape_is_rejected_before_onnx(shape: tuple[int, ...]) -> None:
    scorer = Scorer(tiny_onnx(), window=4, features=2, preference="cpu")
    with pytest.raises(ValueError, match=r"windows must have shape \(batch, 4, 2\)"):
        scorer.score(np.zeros(shape, np.float32))


def test_model_not_following_the_contract() -> None:
    with pytest.raises(ModelCardError, match="input 'windows'"):
        Scorer(tiny_onnx(input_name="x"), window=4, features=2, preference="cpu")
    with pytest.raises(ModelCardError, match="axis 1 is 4 but the card says 5"):
        Scorer(tiny_onnx(static=True), window=5, features=2, preference="cpu")


def test_scorer_accepts_a_path(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(tiny_onnx())
    assert Scorer(path, window=4, features=2, preference="cpu").provider == CPU
    with pytest.raises(ConfigurationError):
        Scorer(path, window=4, features=2, preference="cpu", max_batch=0)


# --- scaling and contributors ---------------------------------------------------------

SCALER = {
    "method": "standard",
    "per_key": True,
    "params": {
        "*": {"center": [0.0, 10.0], "scale": [1.0, 2.0]},
        "k": {"center": [5.0, 5.0], "scale": [5.0, 0.5]},
    },
}


def test_apply_scaler_per_key_with_fallback() -> None:
    x = np.stack([np.full((3, 2), 10.0), np.full((3, 2), 10.0)])
    scaled = apply_scaler(x, ["k", "unknown"], SCALER)
    np.testing.assert_allclose(scaled[0], [[1.0, 10.0]] * 3)  # (10-5)/5, (10-5)/0.5
    np.testing.assert_allclose(scaled[1], [[10.0, 0.0]] * 3)  # "*": (10-0)/1, (10-10)/2
    assert scaled.dtype == np.float32


def test_global_scaler_ignores_keys_and_inverse_round_trips() -> None:
    table = ScaleTable(ScalerCard.model_validate({**SCALER, "per_key": False}), 2)
    x = np.random.default_rng(2).normal(size=(4, 3, 2)).astype(np.float32)
    keys = ["k", "a", "b", "k"]
    scaled = table.transform(x, keys)
    np.testing.assert_allclose(scaled, (x - [0.0, 10.0]) / [1.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(table.inverse(scaled, keys), x, rtol=1e-5, atol=1e-5)


def test_none_scaler_is_identity_and_shapes_are_checked() -> None:
    x = np.ones((2, 3, 2), np.float32)
    np.testing.assert_array_equal(apply_scaler(x, ["a", "b"], {"method": "none"}), x)
    with pytest.raises(ValueError, match="one key per window"):
        apply_scaler(x, ["a"], SCALER)
    with pytest.raises(ModelCardError, match="do not have 3 values per feature"):
        ScaleTable(ScalerCard.model_validate(SCALER), 3)


# --- registry -------------------------------------------------------------------------


def test_load_model_verifies_and_scores(tmp_path: Path) -> None:
    loaded = load_model(write_model(tmp_path / "m"), preference="cpu")
    assert loaded.card.name == "tiny" and loaded.path == tmp_path / "m"
    assert loaded.scorer.score(np.ones((1, 4, 2))).scores.shape == (1,)


def test_sha_mismatch_fails_before_any_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = write_model(tmp_path / "m")
    (directory / "model.onnx").write_bytes(tiny_onnx(factor=0.25))  # swapped model

    def no_session(*args: object, **kwargs: object) -> None:
        raise AssertionError("a session was created for an unverified model")

    monkeypatch.setattr(registry_module, "Scorer", no_session)
    with pytest.raises(ModelCardMismatch,
                       match="the card does not describe this model. Train it again"):
        load_model(directory)


def test_card_problems_are_model_card_errors(tmp_path: Path) -> None:
    directory = write_model(tmp_path / "m", window=0)
    with pytest.raises(ModelCardError, match="invalid"):
        load_model(directory)
    (directory / "card.json").write_text("{" * 100)
    with pytest.raises(ModelCardError):
        read_card(directory, max_bytes=50)
    with pytest.raises(ModelCardError, match="cannot read"):
        read_card(tmp_path / "missing")


def test_registry_picks_latest_natural_version(tmp_path: Path) -> None:
    for version in ("v2", "v10", "v9"):
        write_model(tmp_path / "tiny" / version, version=version)
    (tmp_path / "tiny" / "v11").mkdir()  # incomplete: no files yet
    (tmp_path / "tiny" / "v11" / "card.json").write_text("{}")
    registry = ModelRegistry(tmp_path)
    assert [v.version for v in registry.versions()] == ["v2", "v9", "v10"]
    assert registry.load_latest().card.version == "v10"
    assert registry.refresh() is None


def test_hot_swap_detects_a_new_version(tmp_path: Path) -> None:
    write_model(tmp_path / "tiny" / "1")
    registry = ModelRegistry(tmp_path, "tiny", preference="cpu")
    first = registry.refresh()
    assert first is not None and first.card.version == "1"
    assert registry.refresh() is None
    write_model(tmp_path / "tiny" / "2", version="2")
    swapped = registry.refresh()
    assert swapped is not None and swapped.card.version == "2"
    assert registry.current is swapped


def test_broken_new_version_keeps_serving_and_is_not_retried(tmp_path: Path) -> None:
    write_model(tmp_path / "tiny" / "1")
    registry = ModelRegistry(tmp_path, preference="cpu")
    current = registry.load_latest()
    bad = write_model(tmp_path / "tiny" / "2", version="2")
    (bad / "model.onnx").write_bytes(b"not the model the card describes")
    assert registry.refresh() is None
    assert registry.current is current
    assert registry.last_error is not None and "sha256" in registry.last_error
    registry.last_error = None
    assert registry.refresh() is None and registry.last_error is None  # remembered
    fixed = tiny_onnx(factor=0.1)
    (bad / "model.onnx").write_bytes(fixed)
    (bad / "card.json").write_text(json.dumps(card_dict(fixed, version="2")))
    os.utime(bad / "card.json", ns=(10**19, 10**19))  # files changed: retried
    swapped = registry.refresh()
    assert swapped is not None and swapped.card.version == "2"


def test_direct_model_dir_and_ambiguous_roots(tmp_path: Path) -> None:
    direct = write_model(tmp_path / "direct", name="solo", version="7")
    assert ModelRegistry(direct, preference="cpu").load_latest().card.name == "solo"
    write_model(tmp_path / "many" / "a" / "1", name="a")
    write_model(tmp_path / "many" / "b" / "1", name="b")
    with pytest.raises(ModelCardError, match="several models"):
        ModelRegistry(tmp_path / "many").latest()
    assert ModelRegistry(tmp_path / "many", "b").latest().name == "b"
    with pytest.raises(ModelCardError, match="train and export one first"):
        ModelRegistry(tmp_path / "empty").latest()


def test_card_model_is_validated_type() -> None:
    card = ModelCard.model_validate(card_dict(tiny_onnx()))
    assert card.features == ["a", "b"]


def test_gpu_without_usable_libraries_falls_back_quietly(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # pretend the driver reports a device: the provider-library check must decide, quietly
    monkeypatch.setattr(providers_module, "_cuda_device_count", lambda: 1)
    providers_module.gpu_available.cache_clear()
    try:
        providers = select_providers("auto")
        usable = providers_module.gpu_available(providers_module.CUDA)
        if not usable:
            with pytest.raises(ConfigurationError):
                select_providers("cuda")
    finally:
        providers_module.gpu_available.cache_clear()
    out, err = capfd.readouterr()
    assert out + err == ""
    assert providers == ([providers_module.CUDA, CPU] if usable else [CPU])
