"""Evaluation metrics: how well a model reconstructs, and how well its scores separate labels.

Label 1 = anomaly, and scores follow the scoring contract (higher = more anomalous), so a
detection is ``score > threshold``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
    roc_curve,
)

__all__ = [
    "DetectionMetrics",
    "EvaluationReport",
    "ReconstructionMetrics",
    "detection_metrics",
    "evaluate",
    "reconstruction_metrics",
    "tpr_at_fpr",
]


@dataclass(frozen=True)
class ReconstructionMetrics:
    """Errors of ``reconstruction`` against ``inputs`` over every value."""

    mse: float
    mae: float
    rmse: float
    r2: float


@dataclass(frozen=True)
class DetectionMetrics:
    """Threshold-free (AUCs) and thresholded (confusion matrix and rates) quality."""

    roc_auc: float  # NaN when only one class is present
    pr_auc: float  # average precision; NaN when only one class is present
    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int
    precision: float
    recall: float
    f1: float
    tnr: float
    fpr: float
    tpr_at_fpr: dict[float, float] = field(default_factory=dict)

    @property
    def tpr(self) -> float:
        """Sensitivity; the same number as ``recall``."""
        return self.recall


@dataclass(frozen=True)
class EvaluationReport:
    """Whatever could be computed from the inputs given to :func:`evaluate`."""

    reconstruction: ReconstructionMetrics | None = None
    detection: DetectionMetrics | None = None

    def to_dict(self) -> dict[str, float]:
        """Flat ``{name: value}`` for the card's ``metrics``; undefined (NaN) ones are left out
        so the card stays valid JSON."""
        out: dict[str, float] = {}
        if self.reconstruction is not None:
            out.update({k: float(v) for k, v in asdict(self.reconstruction).items()})
        if self.detection is not None:
            d = self.detection
            flat = {k: v for k, v in asdict(d).items() if k != "tpr_at_fpr"}
            out.update({k: float(v) for k, v in flat.items()})
            out["tpr"] = float(d.tpr)
            out.update({f"tpr_at_fpr_{f:g}": float(v) for f, v in d.tpr_at_fpr.items()})
        return {k: v for k, v in out.items() if np.isfinite(v)}


def reconstruction_metrics(inputs: np.ndarray, reconstruction: np.ndarray) -> ReconstructionMetrics:
    """MSE, MAE, RMSE and R2 (mean over features) of (n, ...) arrays of equal shape."""
    x = np.asarray(inputs, dtype=np.float64)
    y = np.asarray(reconstruction, dtype=np.float64)
    if x.shape != y.shape or x.size == 0:
        raise ValueError(f"inputs {x.shape} and reconstruction {y.shape} must match, non-empty")
    features = x.shape[-1] if x.ndim > 1 else 1
    x2, y2 = x.reshape(-1, features), y.reshape(-1, features)
    mse = float(mean_squared_error(x2, y2))
    return ReconstructionMetrics(
        mse=mse,
        mae=float(mean_absolute_error(x2, y2)),
        rmse=float(np.sqrt(mse)),
        r2=float(r2_score(x2, y2)) if x2.shape[0] > 1 else float("nan"),
    )


def _checked(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape or y.size == 0:
        raise ValueError(f"labels {y.shape} and scores {s.shape} must match and be non-empty")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (normal) or 1 (anomaly)")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or inf")
    return y, s


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """Highest true-positive rate reachable with a false-positive rate of at most ``fpr``.

    >>> tpr_at_fpr(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]), 0.0)
    0.5
    """
    if not 0.0 <= fpr <= 1.0:
        raise ValueError(f"fpr must be in [0, 1], got {fpr}")
    y, s = _checked(labels, scores)
    if y.min() == y.max():
        return float("nan")
    fprs, tprs, _ = roc_curve(y, s)
    return float(tprs[fprs <= fpr + 1e-12].max())


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def detection_metrics(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    target_fprs: Sequence[float] = (0.001, 0.01, 0.1),
) -> DetectionMetrics:
    """Detection quality of ``scores`` against 0/1 ``labels`` at ``threshold``.

    Rates with an empty denominator are 0.0 rather than a warning, since a validation split
    may hold no anomaly at all.
    """
    y, s = _checked(labels, scores)
    predicted = (s > threshold).astype(np.int64)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y, predicted, labels=[0, 1]).ravel())
    both = y.min() != y.max()
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return DetectionMetrics(
        roc_auc=float(roc_auc_score(y, s)) if both else float("nan"),
        pr_auc=float(average_precision_score(y, s)) if both else float("nan"),
        threshold=float(threshold),
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        precision=precision,
        recall=recall,
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
        tnr=_ratio(tn, tn + fp),
        fpr=_ratio(fp, tn + fp),
        tpr_at_fpr={float(f): tpr_at_fpr(y, s, f) for f in target_fprs},
    )


def evaluate(
    *,
    inputs: np.ndarray | None = None,
    reconstruction: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    threshold: float | None = None,
    target_fprs: Sequence[float] = (0.001, 0.01, 0.1),
) -> EvaluationReport:
    """One call for the evaluation step: reconstruction metrics when inputs and
    reconstruction are given, detection metrics when labels, scores and threshold are."""
    rec = None
    if inputs is not None and reconstruction is not None:
        rec = reconstruction_metrics(inputs, reconstruction)
    det = None
    if labels is not None and scores is not None:
        if threshold is None:
            raise ValueError("threshold is required with labels and scores")
        det = detection_metrics(labels, scores, threshold, target_fprs)
    return EvaluationReport(rec, det)
