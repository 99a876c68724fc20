"""Small real ONNX models and registry entries for tests, built without torch.

``window_mean_model`` and ``write_registry_model`` are the benchmarks' (one definition): the
reconstruction of a window is its mean, so the error of the newest step is large exactly
when it jumps away from the window's level -- a genuine (if simple) anomaly detector that
honours the scoring contract.
"""

from __future__ import annotations

from typing import Any

import onnx
from onnx import TensorProto, helper

from benchmarks.bench_models import window_mean_model, write_registry_model

__all__ = ["card_dict", "energy_model", "window_mean_model", "write_registry_model"]


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
