"""Turning a scored window into an :class:`~schemas.events.AnomalyEvent` (pure).

The same function builds events online (the worker) and offline (batch scoring of a
file), so both paths produce identical events for identical windows: same ``event_id``,
same severity, same contributors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from schemas.card import ModelCard
from schemas.events import (
    AnomalyEvent,
    ModelRef,
    Quality,
    SourceRef,
    event_id_for,
    utc_now_iso,
)
from stream_detector.scoring import top_contributors
from stream_detector.thresholds import ResolvedThreshold

__all__ = ["build_event", "is_anomaly", "severity"]


def is_anomaly(score: float, threshold: float) -> bool:
    """A window is anomalous when its score is strictly above the threshold.

    NaN scores (a broken model) never alert: they are a model fault, not an anomaly.
    """
    return score > threshold


def severity(score: float, threshold: float) -> float:
    """Map a score to 0-100: 0 at the threshold, rising quickly, saturating at 100.

    ``100 * (1 - exp(-(score / threshold - 1)))``: one threshold above the threshold
    (score = 2x) gives 63, 3x gives 86, 5x gives 98. Ratios rather than differences, so
    models with different score scales share one severity scale. A non-positive threshold
    has no scale: any score above it is 100.

    >>> [round(severity(s, 1.0)) for s in (0.5, 1.0, 2.0, 3.0, 100.0)]
    [0, 0, 63, 86, 100]
    """
    if not math.isfinite(score) or score <= threshold:
        return 100.0 if score == math.inf else 0.0
    if threshold <= 0.0:
        return 100.0
    value = 100.0 * (1.0 - math.exp(-(score / threshold - 1.0)))
    return min(100.0, max(0.0, value))


def _floats(values: npt.ArrayLike | None) -> list[float] | None:
    """Plain floats for JSON; None when absent or not all finite (a broken output)."""
    if values is None:
        return None
    arr = np.asarray(values, dtype=np.float64).ravel()
    return arr.tolist() if bool(np.isfinite(arr).all()) else None


def build_event(
    card: ModelCard,
    *,
    key: str,
    window_start: str,
    window_end: str,
    score: float,
    threshold: ResolvedThreshold,
    errors: npt.ArrayLike,
    observed: npt.ArrayLike,
    provider: str,
    source: SourceRef,
    expected: npt.ArrayLike | None = None,
    quality: Quality | None = None,
    p_value: float | None = None,
    raw_score: float | None = None,
    detected_at: str | None = None,
    top_k: int = 5,
    feature_names: Sequence[str] | None = None,
) -> AnomalyEvent:
    """Build the event for one window that crossed its threshold.

    Parameters
    ----------
    card
        The scoring model's card (name, version, hash, family, feature names).
    window_start, window_end
        Timestamps of the window's first and last record, as the producer sent them;
        ``window_end`` feeds the deterministic ``event_id``.
    errors
        The window's ``(window, features)`` squared errors, for the top contributors.
    observed, expected
        The last record's values in original units, and the model's reconstruction of
        them if it exports one.
    detected_at
        Pass a fixed value for reproducible offline output; defaults to now (UTC).
    """
    if not math.isfinite(score):
        raise ValueError(f"score {score} is not finite: the model is broken, not the data")
    names = list(feature_names) if feature_names is not None else card.features
    return AnomalyEvent(
        event_id=event_id_for(card.name, card.version, key, window_end),
        key=key,
        record_kind=card.record_kind,
        window_start=window_start,
        window_end=window_end,
        detected_at=detected_at if detected_at is not None else utc_now_iso(),
        score=float(score),
        raw_score=None if raw_score is None else float(raw_score),
        threshold=threshold.value,
        threshold_source=threshold.source,
        severity=severity(float(score), threshold.value),
        p_value=p_value,
        observed=_floats(observed) or [],  # records are finite by validation
        expected=_floats(expected),
        top_contributors=top_contributors(errors, names, top_k),
        model=ModelRef(
            name=card.name,
            version=card.version,
            onnx_sha256=card.onnx_sha256,
            family=card.family,
        ),
        provider=provider,
        source=source,
        quality=quality if quality is not None else Quality(),
    )
