"""Small real ONNX models and registry entries for tests, built without torch.

``window_mean_model``: the reconstruction of a window is its mean, so the error of the newest
step is large exactly when it jumps away from the window's level -- a genuine (if simple)
anomaly detector that honours the scoring contract (input ``windows``, outputs ``score``,
``errors``, ``reconstruction``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto, helper


def window_mean_model(window: int, features: int, last_k: int | None = None) -> bytes:
    """score = mean squared error of the last ``last_k`` steps (all steps by default)."""
    last_k = last_k or window
    shape: list[int | str] = ["batch", window, features]
    weights = [0.0] * (window - last_k) + [1.0 / (last_k * features)] * last_k
    nodes = [
        helper.make_node("ReduceMean", ["windows"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["windows", "mean"], ["diff"]),
        helper.make_node("Mul", ["diff", "diff"], ["errors"]),
        helper.make_node("Sub", ["windows", "diff"], ["reconstruction"]),
        helper.make_node("Mul", ["errors", "time_weights"], ["weighted"]),
        helper.make_node("ReduceSum", ["weighted", "axes12"], ["score"], keepdims=0),
    ]
    inits = [
        helper.make_tensor("time_weights", TensorProto.FLOAT, [window, 1], weights),
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
    return model.SerializeToString()


def card_dict(**changes: Any) -> dict[str, Any]:
    """A valid model card as a plain dict (no model file behind it); ``changes`` override."""
    card: dict[str, Any] = {
        "name": "nab-dense", "version": "3", "family": "dense",
        "created_at": "2026-11-22T07:00:00Z", "onnx_sha256": "ab" * 32,
        "record_kind": "series", "window": 50, "stride": 1, "features": ["value"],
        "scaler": {"method": "none", "per_key": False, "params": {}},
        "thresholds": {"method": "percentile", "value_param": 99.0, "default": 0.5,
                       "per_key": {}},
        "data_sha256": "cd" * 32,
    }
    card.update(changes)
    return card


def write_registry_model(
    directory: Path, onnx_bytes: bytes, *, name: str = "tiny", version: str = "1",
    window: int, features: list[str], record_kind: str = "series",
    threshold: float = 4.0, per_key: dict[str, float] | None = None,
    scaler: dict[str, Any] | None = None, detection: dict[str, Any] | None = None,
) -> Path:
    """Write ``model.onnx`` then ``card.json`` (card last: a registry sees complete dirs)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.onnx").write_bytes(onnx_bytes)
    card = {
        "name": name, "version": version, "family": "dense",
        "created_at": "2026-11-22T08:00:00Z",
        "onnx_sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "record_kind": record_kind, "window": window, "stride": 1, "features": features,
        "scaler": scaler or {"method": "none"},
        "thresholds": {"method": "percentile", "value_param": 99.0, "default": threshold,
                       "per_key": per_key or {}},
        "detection": detection or {},
        "data_sha256": "0" * 64,
    }
    (directory / "card.json").write_text(json.dumps(card))
    return directory


def energy_model(features: int) -> bytes:
    """Window 1: reconstruction 0, so errors = scaled values squared, score = their mean.

    With a standard scaler this is the mean squared z-score of an event: a crude but real
    event detector (hard objects far out in a tail score high) without any training.
    """
    shape: list[int | str] = ["batch", 1, features]
    nodes = [
        helper.make_node("Mul", ["windows", "windows"], ["errors"]),
        helper.make_node("Sub", ["windows", "windows"], ["reconstruction"]),
        helper.make_node("ReduceMean", ["errors"], ["score"], axes=[1, 2], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "energy",
        [helper.make_tensor_value_info("windows", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch"]),
         helper.make_tensor_value_info("errors", TensorProto.FLOAT, shape),
         helper.make_tensor_value_info("reconstruction", TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()
