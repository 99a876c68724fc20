"""What the worker's runtime takes and gives per batch: Kafka messages (decoupled from
Faust's events) and what a batch produced."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from schemas.events import AnomalyEvent, DeadLetter, SourceRef

__all__ = ["BatchResult", "Message"]


@dataclass
class BatchResult:
    """What one batch produced (for metrics, logs and tests)."""

    records: int = 0
    windows: int = 0
    events: list[AnomalyEvent] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


@dataclass
class Message:
    """The parts of a Kafka message the worker needs (Faust's event.message, decoupled).

    ``first_record``/``stop_record`` select a slice of the message's records: fault
    isolation splits a failing multi-record message down to the record that fails.
    """

    value: bytes | None
    topic: str
    partition: int | None
    offset: int | None
    timestamp: float | None = None
    first_record: int = 0
    stop_record: int | None = None

    @property
    def source(self) -> SourceRef:
        return SourceRef(topic=self.topic, partition=self.partition, offset=self.offset)

    @property
    def ident(self) -> tuple[str, int | None, int | None]:
        return (self.topic, self.partition, self.offset)

    def records_slice(self, first: int, stop: int) -> Message:
        return replace(self, first_record=first, stop_record=stop)
