"""The fast event path emits what the validated reference path emits, and rejects alike.

:func:`build_event` (one validation pass, cached model parts) against
:func:`build_event_checked` (every nested model validated on its own, as before; kept in
``benchmarks/event_building.py``): the same JSON bytes for valid input, the same exception
for invalid input.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from benchmarks.event_building import build_event_checked
from schemas.card import ModelCard
from schemas.events import AnomalyEvent, Quality, SourceRef, ThresholdSource
from schemas.records import MAX_KEY_LENGTH
from stream_detector.core.events import (
    build_event,
    event_json,
    quality_flags,
)
from stream_detector.core.scoring import ScaleTable
from stream_detector.core.thresholds import ResolvedThreshold

FEATURES = ["a", "b", "c", "d", "e", "f"]
FINITE = st.floats(allow_nan=False, allow_infinity=False, width=32)
# few distinct values, so equal errors (ties at the top-k boundary) are common
ERROR = st.one_of(st.sampled_from([0.0, 0.5, 1.0, 2.5]), st.floats(0.0, 2.0**100, width=32))
ANY_FLOAT = st.floats(width=32)  # NaN and infinities too: they must be sanitised alike


def card(n_features: int, window: int) -> ModelCard:
    return ModelCard.model_validate({
        "name": "nab", "version": "7", "family": "dense", "created_at": "2026-11-22T07:00:00Z",
        "onnx_sha256": "ab" * 32, "record_kind": "series", "window": window,
        "features": FEATURES[:n_features], "scaler": {"method": "none"},
        "thresholds": {"method": "percentile", "value_param": 99.0, "default": 0.5},
        "data_sha256": "0" * 64,
    })


@st.composite
def inputs(draw: st.DrawFn) -> tuple[ModelCard, dict[str, Any]]:
    """A card and build_event keyword arguments, valid except where values are sanitised."""
    width, window = draw(st.integers(1, len(FEATURES))), draw(st.integers(1, 40))
    errors = draw(st.lists(ERROR, min_size=width * window, max_size=width * window))
    score = draw(FINITE)
    source = draw(st.builds(SourceRef, topic=st.text(min_size=1, max_size=8),
                            partition=st.none() | st.integers(0, 64),
                            offset=st.none() | st.integers(0, 2**40)))
    kwargs: dict[str, Any] = {
        "key": draw(st.text(min_size=1, max_size=MAX_KEY_LENGTH)),
        "window_start": draw(st.text(max_size=30)),
        "window_end": draw(st.text(max_size=30)),
        "score": score,
        "raw_score": draw(st.none() | FINITE),
        "threshold": ResolvedThreshold(draw(FINITE), ThresholdSource(
            method="sigma", version="7", scope=draw(st.sampled_from(["key", "card_default"])))),
        "errors": np.asarray(errors, np.float32).reshape(window, width),
        "observed": np.asarray(draw(st.lists(ANY_FLOAT, min_size=width, max_size=width)),
                               np.float32),
        "expected": draw(st.none() | st.lists(ANY_FLOAT, min_size=width, max_size=width)),
        "provider": "CPUExecutionProvider",
        "source": source,
        "quality": draw(st.none() | st.builds(Quality, imputed=st.booleans(),
                                               late=st.booleans(), warm_up=st.booleans())),
        "p_value": draw(st.none() | st.floats(0.0, 1.0)),
        "detected_at": draw(st.none() | st.just("2026-11-22T08:00:00.000Z")),
        "top_k": draw(st.integers(0, 8)),
    }
    if kwargs["detected_at"] is None:  # "now" differs between two calls: pin it
        kwargs["detected_at"] = "2026-11-22T08:00:00.001Z"
    return card(width, window), kwargs


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs())
def test_fast_path_emits_the_same_json_as_the_validated_path(
    case: tuple[ModelCard, dict[str, Any]],
) -> None:
    model_card, kwargs = case
    old = build_event_checked(model_card, **kwargs)
    new = build_event(model_card, **kwargs)
    wire = event_json(new)
    assert wire == old.model_dump_json().encode()
    assert json.loads(wire) == json.loads(old.model_dump_json())
    assert new == old and new.model_fields_set == old.model_fields_set
    assert AnomalyEvent.model_validate_json(wire) == new
    assert len(new.top_contributors) <= kwargs["top_k"]
    assert all(math.isfinite(v) for v in new.observed + (new.expected or []))


BASE: dict[str, Any] = {
    "key": "AAPL", "window_start": "t0", "window_end": "t1", "score": 2.0, "raw_score": 1.0,
    "threshold": ResolvedThreshold(1.0, ThresholdSource(method="manual", version="7",
                                                        scope="default")),
    "errors": np.array([[0.1], [0.7], [2.2]], np.float32), "observed": np.array([3.0]),
    "provider": "CPUExecutionProvider", "source": SourceRef(topic="records", offset=1),
    "detected_at": "2026-11-22T08:00:00.000Z",
}


@pytest.mark.parametrize(
    "change",
    [
        {"score": math.nan},
        {"score": math.inf},
        {"score": -math.inf},
        {"errors": np.array([[0.1], [math.nan], [2.2]], np.float32)},
        {"errors": np.array([[0.1], [math.inf], [2.2]], np.float32)},
        {"errors": np.array([[0.1], [-0.5], [2.2]], np.float32)},
        {"errors": np.array([[0.1, 0.2]], np.float32)},  # wrong width
        {"errors": np.array([0.1, 0.2], np.float32)},  # not 2-D
        {"raw_score": math.nan},
        {"raw_score": math.inf},
        {"p_value": 1.5},
        {"p_value": math.nan},
        {"threshold": ResolvedThreshold(math.inf, BASE["threshold"].source)},
        {"key": ""},
        {"key": "k" * (MAX_KEY_LENGTH + 1)},
        {"feature_names": [7]},
    ],
)
def test_invalid_input_is_rejected_exactly_as_before(change: dict[str, Any]) -> None:
    kwargs = {**BASE, **change}
    with pytest.raises((ValueError, ValidationError)) as old:
        build_event_checked(card(1, 3), **kwargs)
    with pytest.raises(old.type) as new:
        build_event(card(1, 3), **kwargs)
    assert str(new.value) == str(old.value)


@pytest.mark.parametrize(
    ("change", "field", "want"),
    [
        ({"observed": np.array([math.nan])}, "observed", []),
        ({"observed": np.array([math.inf])}, "observed", []),
        ({"expected": np.array([-math.inf])}, "expected", None),
        ({"expected": np.array([math.nan])}, "expected", None),
    ],
)
def test_non_finite_values_are_dropped_as_before(
    change: dict[str, Any], field: str, want: object
) -> None:
    old = build_event_checked(card(1, 3), **{**BASE, **change})
    new = build_event(card(1, 3), **{**BASE, **change})
    assert getattr(new, field) == getattr(old, field) == want
    assert event_json(new) == old.model_dump_json().encode()


def test_contributors_stay_bounded_for_wide_windows() -> None:
    wide = ModelCard.model_validate({
        **card(1, 50).model_dump(), "features": [f"f{i}" for i in range(300)]})
    errors = np.random.default_rng(0).random((50, 300)).astype(np.float32)
    kwargs = {**BASE, "errors": errors, "observed": np.ones(300), "expected": np.ones(300)}
    new = build_event(wide, **kwargs)
    assert len(new.top_contributors) == 5 and len(new.observed) == 300
    assert event_json(new) == build_event_checked(wide, **kwargs).model_dump_json().encode()


def test_quality_flags_are_shared_and_equal_to_fresh_ones() -> None:
    assert quality_flags(True, False, True) is quality_flags(True, False, True)
    assert quality_flags(True, False, True) == Quality(imputed=True, warm_up=True)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 16), st.integers(1, 20), st.integers(1, 4), st.booleans(), st.data())
def test_last_step_inverse_equals_whole_window_inverse(
    batch: int, window: int, width: int, log1p: bool, data: st.DataObject
) -> None:
    """The pipeline inverts only the windows' last steps, once per batch: same values."""
    # bounded so that expm1 of the log1p transform stays finite (no overflow warning)
    params = {k: {"center": [data.draw(st.floats(-10, 10)) for _ in range(width)],
                  "scale": [data.draw(st.floats(0.01, 3)) for _ in range(width)]}
              for k in ("*", "k0", "k1")}
    table = ScaleTable({"method": "standard", "per_key": True, "params": params,
                        "transform": "log1p" if log1p else "none"}, width)
    recon = np.asarray(data.draw(st.lists(st.floats(-5, 5, width=32), min_size=batch * window
                                          * width, max_size=batch * window * width)),
                       np.float32).reshape(batch, window, width)
    keys = [data.draw(st.sampled_from(["k0", "k1", "other"])) for _ in range(batch)]
    at_once = table.inverse(recon[:, -1:], keys)[:, 0]
    for i, key in enumerate(keys):
        one = table.inverse(recon[i : i + 1], [key])[0, -1]
        assert one.tobytes() == at_once[i].tobytes()
