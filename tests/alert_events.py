"""Anomaly events and a settable clock for the alerts tests (incidents, formats, sinks)."""

from __future__ import annotations

from schemas.events import (
    AnomalyEvent,
    Contributor,
    ModelRef,
    SourceRef,
    ThresholdSource,
    event_id_for,
)


class FakeClock:
    """A clock that moves only when a test sets ``now`` (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def event(key: str, end: str, severity: float = 50.0, p_value: float | None = None,
          score: float = 0.9) -> AnomalyEvent:
    """An anomaly event of model nab v3 for ``key``, its window ending at ``end``."""
    return AnomalyEvent(
        event_id=event_id_for("nab", "3", key, end), key=key, record_kind="series",
        window_start="2015-02-26T21:00:00", window_end=end,
        detected_at="2026-01-01T00:00:00.000Z", score=score, threshold=0.5,
        threshold_source=ThresholdSource(method="percentile", version="3", scope="default"),
        severity=severity, p_value=p_value, observed=[104.0],
        top_contributors=[Contributor(name="value", index=0, time_offset=0, error=0.2),
                          Contributor(name="value", index=0, time_offset=3, error=0.7)],
        model=ModelRef(name="nab", version="3", onnx_sha256="a" * 64, family="dense"),
        provider="CPUExecutionProvider", source=SourceRef(topic="records"),
    )
