"""Turning a scored window into an :class:`~schemas.events.AnomalyEvent` (pure).

The same function builds events online (the worker) and offline (batch scoring of a
file), so both paths produce identical events for identical windows: same ``event_id``,
same severity, same contributors.

:func:`build_event` is on the worker's hot path (every alert): it validates the whole
event in one pydantic-core call over plain values, with the per-model parts cached. The
earlier construction (one validated model per nested object) lives on in
``benchmarks/event_building.py`` as the reference it is measured and tested against.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from schemas.card import ModelCard
from schemas.events import (
    AnomalyEvent,
    Contributor,
    ModelRef,
    Quality,
    SourceRef,
    event_id_for,
    utc_now_iso,
)
from schemas.kinds import ModelFamily
from stream_detector.core.explanations import Cell, top_cells, top_contributors
from stream_detector.core.thresholds import ResolvedThreshold
from stream_detector.core.timing import GAP, IMPUTED, LATE, REPEATED, SKEWED

__all__ = [
    "build_event",
    "event_json",
    "is_anomaly",
    "quality_flags",
    "severity",
]

_validate_event: Final = AnomalyEvent.__pydantic_validator__.validate_python
_to_json: Final = AnomalyEvent.__pydantic_serializer__.to_json
_NO_CAVEATS: Final = Quality()
_PYTHON_CHECK_MAX: Final = 256


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


def _finite_list(values: npt.ArrayLike | None) -> list[float] | None:
    """:func:`_floats`, checking a record's few values in Python (numpy's reduction costs
    more than the check for up to a few hundred values)."""
    if values is None:
        return None
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size > _PYTHON_CHECK_MAX:
        return _floats(arr)
    out: list[float] = arr.tolist()
    return out if all(map(math.isfinite, out)) else None


def event_json(event: AnomalyEvent) -> bytes:
    """The Kafka message value of an event: ``event.model_dump_json().encode()``.

    The same serializer, minus its bytes -> str -> bytes round trip.
    """
    return _to_json(event)


@functools.cache
def quality_flags(imputed: bool, late: bool, warm_up: bool, flags: int = 0) -> Quality:
    """The (frozen, shareable) :class:`Quality` with these flags.

    ``flags`` holds a window's timing bits (:mod:`stream_detector.core.timing`); its ``late``
    bit and ``late`` are the same thing, either sets it.
    """
    return Quality(imputed=imputed or bool(flags & IMPUTED), late=late or bool(flags & LATE),
                   warm_up=warm_up, repeated=bool(flags & REPEATED),
                   skewed=bool(flags & SKEWED), gap=bool(flags & GAP))


@functools.lru_cache(maxsize=256)
def _model_ref(name: str, version: str, onnx_sha256: str, family: ModelFamily) -> ModelRef:
    """A model's reference, validated once per model version (it is the same every event)."""
    return ModelRef(name=name, version=version, onnx_sha256=onnx_sha256, family=family)


def _contributors(
    errors: npt.ArrayLike, names: Sequence[str], k: int,
    cells: Sequence[Cell] | None = None,
) -> list[dict[str, Any]] | list[Contributor]:
    """Top contributors as plain values for the event's one validation pass.

    A cell the schema rejects (NaN, infinite or negative error) goes through
    :func:`~stream_detector.core.explanations.top_contributors`, which raises the same
    error it always raised.
    """
    out: list[dict[str, Any]] = []
    if cells is None:
        cells = top_cells(errors, len(names), k)
    for index, offset, error in cells:
        name = names[index]
        if not (0.0 <= error < math.inf and isinstance(name, str)):
            return top_contributors(errors, names, k)
        out.append({"name": name, "index": index, "time_offset": offset, "error": error})
    return out


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
    cells: Sequence[Cell] | None = None,
) -> AnomalyEvent:
    """Build the event for one window that crossed its threshold.

    Every field is validated against the schema in one pydantic-core call over plain
    values; the model reference is validated once per model version. Building each
    nested model on its own (eight ``BaseModel.__init__`` calls per alert) was a third of
    the old cost. ``model_construct`` would skip the checks and is slower still in
    pydantic 2: the schema's bounds (finite numbers, key length, non-negative errors) are
    all still enforced.

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
    cells
        ``top_cells(errors, n_features, top_k)`` when the caller computed it already
        (:func:`~stream_detector.core.explanations.top_cells_rows` for a batch's alerts);
        ``errors`` must be that window's.

    Raises
    ------
    ValueError
        ``score`` is not finite, or ``errors`` has the wrong shape.
    pydantic.ValidationError
        A field breaks the schema; the same error the earlier, model-by-model construction
        raised (``benchmarks.event_building.build_event_checked``, checked by tests).
    """
    if not math.isfinite(score):
        raise ValueError(f"score {score} is not finite: the model is broken, not the data")
    names = list(feature_names) if feature_names is not None else card.features
    event: AnomalyEvent = _validate_event({
        "event_id": event_id_for(card.name, card.version, key, window_end),
        "key": key,
        "record_kind": card.record_kind,
        "window_start": window_start,
        "window_end": window_end,
        "detected_at": detected_at if detected_at is not None else utc_now_iso(),
        "score": float(score),
        "raw_score": None if raw_score is None else float(raw_score),
        "threshold": threshold.value,
        "threshold_source": threshold.source,
        "severity": severity(float(score), threshold.value),
        "p_value": p_value,
        "observed": _finite_list(observed) or [],  # records are finite by validation
        "expected": _finite_list(expected),
        "top_contributors": _contributors(errors, names, top_k, cells),
        "model": _model_ref(card.name, card.version, card.onnx_sha256, card.family),
        "provider": provider,
        "source": source,
        "quality": quality if quality is not None else _NO_CAVEATS,
    })
    return event
