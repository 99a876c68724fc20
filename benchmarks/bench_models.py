"""Registry models for the benchmarks: the three trained families (untrained weights are
fine for timing) and a torch-free window-mean ONNX model for the worker runs.

The window-mean builder is a copy of ``tests/model_fixtures.py`` (benchmarks never import
tests): the reconstruction of a window is its mean, so every window costs the same.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

__all__ = ["family_model", "window_mean_model", "write_registry_model"]

STANDARD_SCALER: dict[str, Any] = {
    "method": "standard", "per_key": False, "params": {"*": {"center": [0.0], "scale": [1.0]}}
}


def window_mean_model(window: int, features: int) -> bytes:
    """ONNX scoring-contract model: score = mean squared deviation from the window mean."""
    import onnx
    from onnx import TensorProto, helper

    shape: list[int | str] = ["batch", window, features]
    nodes = [
        helper.make_node("ReduceMean", ["windows"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["windows", "mean"], ["diff"]),
        helper.make_node("Mul", ["diff", "diff"], ["errors"]),
        helper.make_node("Sub", ["windows", "diff"], ["reconstruction"]),
        helper.make_node("Mul", ["errors", "time_weights"], ["weighted"]),
        helper.make_node("ReduceSum", ["weighted", "axes12"], ["score"], keepdims=0),
    ]
    inits = [
        helper.make_tensor("time_weights", TensorProto.FLOAT, [window, 1],
                           [1.0 / (window * features)] * window),
        helper.make_tensor("axes12", TensorProto.INT64, [2], [1, 2]),
    ]
    graph = helper.make_graph(
        nodes, "window_mean",
        [helper.make_tensor_value_info("windows", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch"]),
         helper.make_tensor_value_info("errors", TensorProto.FLOAT, shape),
         helper.make_tensor_value_info("reconstruction", TensorProto.FLOAT, shape)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def write_registry_model(
    directory: Path, onnx_bytes: bytes, *, name: str, window: int, family: str = "dense",
    threshold: float = 4.0, scaler: dict[str, Any] | None = None,
    detection: dict[str, Any] | None = None,
) -> Path:
    """``model.onnx`` then ``card.json`` (card last, as a registry expects) for one series."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.onnx").write_bytes(onnx_bytes)
    card = {
        "name": name, "version": "1", "family": family,
        "created_at": "2026-11-22T08:00:00Z",
        "onnx_sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "record_kind": "series", "window": window, "stride": 1, "features": ["value"],
        "scaler": scaler or {"method": "none"},
        "thresholds": {"method": "percentile", "value_param": 99.0, "default": threshold,
                       "per_key": {}},
        "detection": detection or {},
        "data_sha256": "0" * 64,
    }
    (directory / "card.json").write_text(json.dumps(card))
    return directory


def family_model(directory: Path, family: str, window: int = 50, seed: int = 0) -> Path:
    """An untrained ``family`` AE (default config) exported as a registry entry.

    Inference cost does not depend on the weights' values, so no training is needed.
    """
    from offline_training.export import export_onnx
    from offline_training.models import build_model

    model = build_model(family, window, 1, seed=seed)
    staging = directory / f"{family}.onnx"
    export_onnx(model, window, 1, staging)
    data = staging.read_bytes()
    staging.unlink()
    return write_registry_model(directory / family, data, name=f"bench-{family}",
                                window=window, family=family, scaler=STANDARD_SCALER)
