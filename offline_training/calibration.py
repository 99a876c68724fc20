"""Threshold calibration: turn scores of normal data into a threshold, globally or per key.

Every method is a quantile of calibration scores (higher = more anomalous):

* ``percentile`` p:      the p-th percentile (95 is the seeds' default);
* ``contamination`` c:   the (1 - c) quantile, c being the expected share of anomalies;
* ``fpr`` f:             the (1 - f) quantile of scores of normal data, so that about a
  fraction f of normal windows would alert (Alibi Detect's ``infer_threshold``);
* ``sigma`` k:           k standard deviations above the mean of the calibration scores.
  Detection scores that are already z-scores against each key's own history (the default
  detector, see ``stream_detector.core.detection``) need no data at all: their threshold is k.
  That is the default model's method: a quantile of a short training part is noisy (the
  part holds its own spikes), while k = 4.5 means the same on every series.

>>> calibrate([1.0, 2.0, 3.0, 4.0, 5.0], "percentile", 50)
3.0
>>> calibrate([1.0, 2.0, 3.0, 4.0, 5.0], "fpr", 0.25)
4.0
>>> calibrate([1.0, 3.0], "sigma", 2)
4.0
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from schemas.kinds import CALIBRATION_METHODS, CalibrationMethod

__all__ = ["ThresholdResult", "calibrate", "calibrate_per_key", "check_method",
           "per_key_shortfall"]


def check_method(method: str, value: float) -> float:
    """The quantile (0-1) a method and its argument stand for (``sigma``: k itself);
    ValueError when out of range."""
    if method == "percentile":
        if not 0.0 < value < 100.0:
            raise ValueError(f"percentile must be in (0, 100), got {value}")
        return value / 100.0
    if method == "contamination":
        if not 0.0 < value < 0.5:
            raise ValueError(f"contamination must be in (0, 0.5), got {value}")
        return 1.0 - value
    if method == "fpr":
        if not 0.0 < value < 1.0:
            raise ValueError(f"target false-positive rate must be in (0, 1), got {value}")
        return 1.0 - value
    if method == "sigma":
        if not 0.0 < value <= 100.0:
            raise ValueError(f"sigma must be in (0, 100], got {value}")
        return value
    known = ", ".join(CALIBRATION_METHODS[:-1]) + f" or {CALIBRATION_METHODS[-1]}"
    raise ValueError(f"unknown threshold method {method!r}; use {known}")


def calibrate(scores: npt.ArrayLike, method: str, value: float) -> float:
    """Threshold from calibration ``scores`` (non-finite ones are ignored)."""
    q = check_method(method, value)
    x = np.asarray(scores, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise ValueError("no finite calibration scores: train on more data or a shorter window")
    if method == "sigma":
        return float(x.mean() + q * x.std())
    return float(np.quantile(x, q))


@dataclass(frozen=True)
class ThresholdResult:
    """A calibrated default and, when asked, per-key thresholds."""

    method: CalibrationMethod
    value_param: float
    default: float
    per_key: dict[str, float] = field(default_factory=dict)

    def to_card(self) -> dict[str, object]:
        return {"method": self.method, "value_param": self.value_param,
                "default": self.default, "per_key": dict(self.per_key)}


def calibrate_per_key(
    scores_by_key: Mapping[str, npt.ArrayLike], method: CalibrationMethod, value: float,
    per_key: bool = False, min_scores: int = 20, zscores: bool = False,
) -> ThresholdResult:
    """A pooled default plus, with ``per_key``, one threshold per key with enough scores.

    ``zscores``: the scores are already standardised per key, so ``sigma`` k is k itself.
    """
    if zscores and method == "sigma":
        check_method(method, value)
        return ThresholdResult(method, value, float(value))
    pooled = np.concatenate([np.asarray(s, dtype=np.float64).ravel()
                             for s in scores_by_key.values()]) if scores_by_key else np.array([])
    default = calibrate(pooled, method, value)
    keys: dict[str, float] = {}
    if per_key:
        for key, s in scores_by_key.items():
            arr = np.asarray(s, dtype=np.float64)
            if np.isfinite(arr).sum() >= min_scores:
                keys[key] = calibrate(arr, method, value)
    return ThresholdResult(method, value, default, keys)


def per_key_shortfall(result: ThresholdResult, keys: int, zscores: bool,
                      min_scores: int = 20) -> str:
    """Why :func:`calibrate_per_key`, asked for per-key thresholds, gave fewer than
    ``keys`` (one line for the train summary); "" when every key got one.

    >>> per_key_shortfall(ThresholdResult("percentile", 99.5, 1.0, {"a": 2.0}), 3, False)
    '--per-key-thresholds: 2 of 3 keys had under 20 training scores and use the default threshold'
    """
    if len(result.per_key) >= keys:
        return ""
    if zscores and result.method == "sigma":
        return ("--per-key-thresholds: none stored: the scores are z-scores against each "
                f"key's own history, so sigma {result.value_param:g} is the same for every "
                "key (use --threshold-method percentile for thresholds that differ by key)")
    short = keys - len(result.per_key)
    return (f"--per-key-thresholds: {short} of {keys} key{'s' if keys != 1 else ''} had under "
            f"{min_scores} training scores and use the default threshold")
