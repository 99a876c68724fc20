"""Anomaly events for the explorer's tests, built with the worker's own event builder."""

from __future__ import annotations

from datetime import datetime, timedelta

from schemas.events import AnomalyEvent, ModelRef, SourceRef, ThresholdSource, event_id_for

T0 = datetime(2026, 1, 1)


def event(key: str, step: int, severity: float, *, version: str = "1",
          expected: float | None = 10.0, observed: float = 50.0,
          threshold: float = 4.0) -> AnomalyEvent:
    """An event of model ``m`` for ``key`` whose window ends ``step`` minutes after T0."""
    end = (T0 + timedelta(minutes=step)).isoformat()
    start = (T0 + timedelta(minutes=step - 7)).isoformat()
    return AnomalyEvent(
        event_id=event_id_for("m", version, key, end), key=key, record_kind="series",
        window_start=start, window_end=end, detected_at="2026-11-30T00:00:00.000Z",
        score=threshold + severity / 10, raw_score=1.0, threshold=threshold,
        threshold_source=ThresholdSource(method="manual", version=version, scope="key",
                                         set_by="alice"),
        severity=severity, p_value=None, observed=[observed],
        expected=None if expected is None else [expected], top_contributors=[],
        model=ModelRef(name="m", version=version, onnx_sha256="a" * 64, family="dense"),
        provider="CPUExecutionProvider", source=SourceRef(topic="t"))


def ns(step: int) -> int:
    """T0 + ``step`` minutes in ns since the epoch."""
    return ((T0 - datetime(1970, 1, 1)) + timedelta(minutes=step)) // timedelta(microseconds=1) \
        * 1000
