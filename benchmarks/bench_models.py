"""Registry models for the benchmarks: the three trained families (untrained weights are
fine for timing) and a torch-free window-mean ONNX model for the worker runs.

The window-mean model's reconstruction of a window is its mean, so every window costs the
same. Tests build their registry entries with the same two functions (benchmarks never
import tests; tests import these).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

__all__ = ["family_model", "window_mean_model", "write_registry_model"]

STANDARD_SCALER: dict[str, Any] = {
    "method": "standard", "per_key": False, "params": {"*": {"center": [0.0], "scale": [1.0]}}
}


def window_mean_model(window: int, features: int, last_k: int | None = None) -> bytes:
    """ONNX scoring-contract model (input ``windows``; outputs ``score``, ``errors``,
    ``reconstruction``): score = mean squared deviation from the window mean over the last
    ``last_k`` steps (all by default), so it is large exactly when the newest steps jump."""
    import onnx
    from onnx import TensorProto, helper

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
    return bytes(model.SerializeToString())


def write_registry_model(
    directory: Path, onnx_bytes: bytes, *, name: str = "tiny", version: str = "1",
    window: int, features: list[str] | None = None, record_kind: str = "series",
    family: str = "dense", threshold: float = 4.0, per_key: dict[str, float] | None = None,
    scaler: dict[str, Any] | None = None, detection: dict[str, Any] | None = None,
    time: dict[str, Any] | None = None,
    serves: dict[str, Any] | None = None,
) -> Path:
    """``model.onnx`` and ``card.json`` in a staging folder, renamed into place when new.

    A worker polling the registry never sees a half-written version (an existing folder is
    rewritten in place: files first, card last).
    """
    final = directory
    if not final.exists():
        directory = final.parent / f".{final.name}.partial"
        shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.onnx").write_bytes(onnx_bytes)
    card = {
        "name": name, "version": version, "family": family,
        "created_at": "2026-11-22T08:00:00Z",
        "onnx_sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "record_kind": record_kind, "window": window, "stride": 1,
        "features": features or ["value"], "scaler": scaler or {"method": "none"},
        "thresholds": {"method": "percentile", "value_param": 99.0, "default": threshold,
                       "per_key": per_key or {}},
        "detection": detection or {},
        "time": time,
        "serves": serves or {},
        "data_sha256": "0" * 64,
    }
    (directory / "card.json").write_text(json.dumps(card))
    if directory != final:
        directory.rename(final)
    return final


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
