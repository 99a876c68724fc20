"""Feature scaling fitted on training rows only, stored in the model card, applied as numpy.

Every method reduces to ``(x - center) / scale`` per feature, the one formula the worker
applies from the card's ``scaler`` field, so offline and online inputs are identical:

========  ===============  ==========================
method    center           scale
========  ===============  ==========================
standard  mean             standard deviation (ddof 0)
minmax    minimum          maximum - minimum
robust    median           75th - 25th percentile
none      0                1
========  ===============  ==========================

A zero (constant feature) or non-finite scale becomes 1.0, so a feature that never moved
in training maps to ``x - center`` instead of dividing by zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from schemas.kinds import SCALER_METHODS, ScalerMethod

__all__ = ["GLOBAL_KEY", "ScaleParams", "Scaler", "fit_scaler", "fit_scaler_per_key"]
GLOBAL_KEY = "*"


@dataclass(frozen=True)
class ScaleParams:
    """``center`` and ``scale``, float64 arrays of length ``features``."""

    center: np.ndarray
    scale: np.ndarray


@dataclass(frozen=True)
class Scaler:
    """Fitted parameters: ``params["*"]`` always exists and serves unknown keys."""

    method: ScalerMethod
    per_key: bool
    params: dict[str, ScaleParams]

    def _for(self, key: str | None) -> ScaleParams:
        if key is not None and key in self.params:
            return self.params[key]
        return self.params[GLOBAL_KEY]

    def transform(
        self, x: np.ndarray, key: str | None = None, dtype: npt.DTypeLike = np.float32
    ) -> np.ndarray:
        """Scale ``x`` (..., features): rows, windows or batches of windows alike.

        >>> s = fit_scaler(np.array([[0.0], [2.0], [4.0]]), "minmax")
        >>> s.transform(np.array([[1.0], [4.0]])).ravel().tolist()
        [0.25, 1.0]
        """
        p = self._for(key)
        scaled: np.ndarray = (np.asarray(x, dtype=np.float64) - p.center) / p.scale
        return scaled.astype(dtype)

    def inverse_transform(
        self, z: np.ndarray, key: str | None = None, dtype: npt.DTypeLike = np.float64
    ) -> np.ndarray:
        """Undo :meth:`transform` (to report expected values in the data's units)."""
        p = self._for(key)
        restored: np.ndarray = np.asarray(z, dtype=np.float64) * p.scale + p.center
        return restored.astype(dtype)

    def to_card(self) -> dict[str, Any]:
        """The card's ``scaler`` field: method, per_key, params {key: {center, scale}}."""
        return {
            "method": self.method,
            "per_key": self.per_key,
            "params": {
                key: {"center": [float(v) for v in p.center], "scale": [float(v) for v in p.scale]}
                for key, p in self.params.items()
            },
        }

    @classmethod
    def from_card(cls, card: Mapping[str, Any]) -> Scaler:
        """Rebuild a scaler from :meth:`to_card` output (or a loaded card's ``scaler``)."""
        params = {
            str(key): ScaleParams(
                np.asarray(entry["center"], dtype=np.float64),
                _safe_scale(np.asarray(entry["scale"], dtype=np.float64)),
            )
            for key, entry in card["params"].items()
        }
        if GLOBAL_KEY not in params:
            raise ValueError(f"scaler params need a {GLOBAL_KEY!r} entry")
        return cls(_check_method(card["method"]), bool(card["per_key"]), params)


def _check_method(method: str) -> ScalerMethod:
    if method not in SCALER_METHODS:
        raise ValueError(f"method must be one of {SCALER_METHODS}, got {method!r}")
    return method


def _safe_scale(scale: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(scale) & (scale != 0.0), scale, 1.0)


def _fit(train: np.ndarray, method: ScalerMethod) -> ScaleParams:
    data = np.asarray(train, dtype=np.float64)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or data.shape[0] == 0:
        raise ValueError(f"training data must be non-empty (rows, features), got {data.shape}")
    if not np.isfinite(data).all():
        raise ValueError("training data contains NaN or inf; impute or drop them first")
    features = data.shape[1]
    if method == "standard":
        center, scale = data.mean(axis=0), data.std(axis=0)
    elif method == "minmax":
        center, scale = data.min(axis=0), data.max(axis=0) - data.min(axis=0)
    elif method == "robust":
        q25, center, q75 = np.percentile(data, [25.0, 50.0, 75.0], axis=0)
        scale = q75 - q25
    else:
        center, scale = np.zeros(features), np.ones(features)
    return ScaleParams(center, _safe_scale(scale))


def fit_scaler(train: np.ndarray, method: ScalerMethod | str = "standard") -> Scaler:
    """Fit one global scaler on ``train`` (rows, features); pass training rows only.

    Fitting on validation or test rows would leak their range into the model.

    >>> s = fit_scaler(np.array([[1.0, 5.0], [3.0, 5.0]]))
    >>> s.to_card()["params"]["*"]
    {'center': [2.0, 5.0], 'scale': [1.0, 1.0]}
    """
    chosen = _check_method(method)
    return Scaler(chosen, False, {GLOBAL_KEY: _fit(train, chosen)})


def fit_scaler_per_key(
    train: Mapping[str, np.ndarray], method: ScalerMethod | str = "standard"
) -> Scaler:
    """Fit one scaler per key plus a ``"*"`` fallback fitted on all keys' rows together.

    The fallback serves keys first seen after training (a new store/item).
    """
    chosen = _check_method(method)
    if not train:
        raise ValueError("no keys to fit")
    params = {key: _fit(rows, chosen) for key, rows in train.items()}
    stacked = [np.asarray(r, dtype=np.float64).reshape(len(r), -1) for r in train.values()]
    params[GLOBAL_KEY] = _fit(np.concatenate(stacked), chosen)
    return Scaler(chosen, True, params)
