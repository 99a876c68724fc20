"""Export an autoencoder, wrapped in its :class:`ScoringHead`, to ONNX and check parity.

The exported graph is the scoring contract: input ``windows`` float32
``(batch, window, features)`` with a dynamic batch axis, outputs ``score`` ``(batch,)`` and
``errors`` ``(batch, window, features)``, plus ``reconstruction`` ``(batch, window, features)``
(scaled units; the worker turns its newest step into the events' expected values), opset 17.
The model is exported in eval mode (BatchNorm uses its running statistics, Dropout is the
identity) from a CPU copy, so the caller's model keeps its device and mode.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from offline_training.models import ExportHead, ScoringHead
from stream_detector.core.registry import sha256_file

__all__ = ["ONNX_INPUT", "ONNX_OUTPUTS", "export_onnx", "verify_parity", "sha256_file"]

ONNX_INPUT = "windows"
ONNX_OUTPUTS = ("score", "errors", "reconstruction")


def _head(model: nn.Module, window: int, time_weights: torch.Tensor | None) -> ScoringHead:
    # Deep copy on CPU: export must not move or switch the caller's model.
    if isinstance(model, ScoringHead):
        if time_weights is not None:
            raise ValueError("time_weights given twice: the ScoringHead already carries them")
        head = copy.deepcopy(model).cpu()
    else:
        head = ScoringHead(copy.deepcopy(model).cpu(), window, time_weights)
    return head.eval()


def export_onnx(
    model: nn.Module,
    window: int,
    features: int,
    path: str | Path,
    time_weights: torch.Tensor | None = None,
    opset: int = 17,
) -> str:
    """Write ``model`` (an AE or a ScoringHead) as ONNX to ``path``; return its sha256.

    Uses the TorchScript exporter (``dynamo=False``): it needs no extra packages and
    handles LSTMs with a dynamic batch; its deprecation warnings are silenced here.
    """
    head = _head(model, window, time_weights)
    dummy = torch.zeros(2, window, features, dtype=torch.float32)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    batch_axis = {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        # Shape checks inside nn.LSTM are traced as constants: harmless, the shapes are fixed.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # type: ignore[attr-defined]
        warnings.filterwarnings("ignore", message=".*batch_size other than 1.*")
        torch.onnx.export(
            ExportHead(head),
            (dummy,),
            str(path),
            input_names=[ONNX_INPUT],
            output_names=list(ONNX_OUTPUTS),
            dynamic_axes={ONNX_INPUT: batch_axis, **{name: batch_axis for name in ONNX_OUTPUTS}},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return sha256_file(path)


def verify_parity(
    model: nn.Module,
    onnx_path: str | Path,
    n: int = 64,
    atol: float = 1e-5,
    time_weights: torch.Tensor | None = None,
    seed: int = 0,
    rtol: float = 0.0,
) -> float:
    """Max abs difference of every output between PyTorch and ONNX Runtime (CPU).

    Inputs are standard normal (the scale the models see after scaling). Raises
    ``ValueError`` when the difference exceeds ``atol + rtol * max|output|``; returns it
    otherwise. ``rtol`` is for trained models: their errors on random input can be large,
    and float32 rounding grows with them (a trained LSTM differs by ~1e-5 at errors ~10),
    while a mistranslated op differs by the order of the output itself.
    """
    import onnxruntime as ort  # local: only export needs it in the training process

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape  # ["batch", window, features]
    window, features = int(shape[1]), int(shape[2])
    head = _head(model, window, time_weights)
    x = np.random.default_rng(seed).standard_normal((n, window, features)).astype(np.float32)
    with torch.no_grad():
        expected = [t.numpy() for t in head.parts(torch.from_numpy(x))]
    got = session.run(list(ONNX_OUTPUTS), {ONNX_INPUT: x})
    diff = max(float(np.max(np.abs(t - o))) for t, o in zip(expected, got, strict=True))
    scale = max(float(np.max(np.abs(t))) for t in expected)
    limit = atol + rtol * scale
    if not diff <= limit:  # also catches NaN
        raise ValueError(
            f"ONNX parity failed: max abs diff {diff:.3g} > {limit:.3g}; check for ops that "
            "behave differently in eval mode or a custom layer the exporter mistranslates"
        )
    return diff
