"""Building anomaly events from scored windows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from schemas.card import ModelCard
from schemas.events import AnomalyEvent, Quality, SourceRef, ThresholdSource, event_id_for
from stream_detector.core.events import build_event, is_anomaly, severity
from stream_detector.core.thresholds import ResolvedThreshold

CARD = ModelCard.model_validate(
    {
        "name": "nab",
        "version": "2",
        "family": "conv1d",
        "created_at": "2026-11-22T07:00:00Z",
        "onnx_sha256": "ef" * 32,
        "record_kind": "series",
        "window": 3,
        "features": ["value"],
        "scaler": {"method": "none"},
        "thresholds": {"method": "percentile", "value_param": 99.0, "default": 0.5},
        "data_sha256": "0" * 64,
    }
)
THRESHOLD = ResolvedThreshold(
    0.5,
    ThresholdSource(method="percentile", version="2", scope="key", set_by="ops", set_at="t"),
)


def make(**over: object) -> AnomalyEvent:
    kwargs: dict[str, object] = {
        "key": "AAPL",
        "window_start": "2015-02-26T21:40:00",
        "window_end": "2015-02-26T21:42:00",
        "score": 1.0,
        "threshold": THRESHOLD,
        "errors": np.array([[0.1], [0.7], [2.2]], np.float32),
        "observed": np.array([104.0]),
        "provider": "CPUExecutionProvider",
        "source": SourceRef(topic="records", partition=2, offset=99),
        "detected_at": "2026-11-22T08:00:00.000Z",
    }
    kwargs.update(over)
    return build_event(CARD, **kwargs)  # type: ignore[arg-type]


def test_event_fields() -> None:
    event = make()
    assert event.event_id == event_id_for("nab", "2", "AAPL", "2015-02-26T21:42:00")
    assert (event.window_start, event.window_end) == ("2015-02-26T21:40:00", "2015-02-26T21:42:00")
    assert event.threshold == 0.5 and event.threshold_source.set_by == "ops"
    assert event.severity == pytest.approx(100 * (1 - math.exp(-1)))
    assert event.model.onnx_sha256 == "ef" * 32 and event.model.family == "conv1d"
    assert event.record_kind == "series" and event.provider == "CPUExecutionProvider"
    assert event.source.partition == 2 and event.source.offset == 99
    assert [c.time_offset for c in event.top_contributors] == [0, 1, 2]
    assert event.top_contributors[0].error == pytest.approx(2.2)
    assert event.observed == [104.0] and event.expected is None
    assert AnomalyEvent.model_validate_json(event.model_dump_json()) == event


def test_same_window_same_event_regardless_of_delivery() -> None:
    a = make(source=SourceRef(topic="records", partition=0, offset=1))
    b = make(source=SourceRef(topic="records", partition=0, offset=5))  # redelivered
    assert a.event_id == b.event_id
    assert make(key="MSFT").event_id != a.event_id


def test_quality_expected_and_top_k() -> None:
    event = make(
        quality=Quality(late=True, warm_up=True),
        expected=[101.5],
        top_k=1,
        p_value=0.001,
    )
    assert event.quality.late and event.quality.warm_up and not event.quality.imputed
    assert event.expected == [101.5] and event.p_value == 0.001
    assert len(event.top_contributors) == 1
    assert make(expected=[float("nan")]).expected is None  # broken output is not shown


def test_detected_at_defaults_to_now_utc() -> None:
    event = make(detected_at=None)
    assert event.detected_at.endswith("Z") and event.detected_at.startswith("20")


def test_non_finite_score_is_a_model_fault() -> None:
    with pytest.raises(ValueError, match="not finite"):
        make(score=float("nan"))


@pytest.mark.parametrize(
    ("score", "threshold", "expected"),
    [
        (0.5, 1.0, 0.0),
        (1.0, 1.0, 0.0),
        (2.0, 1.0, 100 * (1 - math.exp(-1))),
        (0.2, 0.1, 100 * (1 - math.exp(-1))),  # scale-free: ratio, not difference
        (1e9, 1.0, 100.0),
        (float("inf"), 1.0, 100.0),
        (float("nan"), 1.0, 0.0),
        (0.1, 0.0, 100.0),
        (-1.0, 0.0, 0.0),
    ],
)
def test_severity(score: float, threshold: float, expected: float) -> None:
    assert severity(score, threshold) == pytest.approx(expected)


def test_severity_is_monotonic_and_bounded() -> None:
    values = [severity(s, 0.3) for s in np.linspace(0.0, 10.0, 200)]
    assert all(0.0 <= v <= 100.0 for v in values)
    assert all(b >= a for a, b in zip(values, values[1:], strict=False))


def test_is_anomaly_is_strict_and_ignores_nan() -> None:
    assert is_anomaly(1.1, 1.0) and not is_anomaly(1.0, 1.0)
    assert not is_anomaly(float("nan"), 1.0)
