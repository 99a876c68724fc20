"""Anomaly events, a settable clock and a fake Kafka consumer for the alerts tests (incidents,
formats, sinks, the consumer loop)."""

from __future__ import annotations

from typing import Any

from schemas.events import (
    AnomalyEvent,
    Contributor,
    ModelRef,
    SourceRef,
    ThresholdSource,
    event_id_for,
)


class Msg:
    """A consumed Kafka message of the anomaly topic, partition 0."""

    def __init__(self, value: bytes, offset: int = 0) -> None:
        self._value, self._offset = value, offset

    def value(self) -> bytes:
        return self._value

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return "anomalies"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


class FakeConsumer:
    """Hands out ``values`` one per poll, at offsets 0, 1, ...; each poll advances the clock
    (anything with a settable ``now``) by its timeout; commits must be synchronous."""

    def __init__(self, values: list[bytes], clock: Any) -> None:
        self.queue = [Msg(v, i) for i, v in enumerate(values)]
        self.clock = clock
        self.committed: list[int] = []

    def poll(self, timeout: float) -> Msg | None:
        self.clock.now += timeout
        return self.queue.pop(0) if self.queue else None

    def commit(self, *, message: Msg, asynchronous: bool) -> None:
        assert asynchronous is False
        self.committed.append(message.offset())


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
