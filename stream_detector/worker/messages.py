"""What the worker's runtime takes and gives per batch: Kafka messages (decoupled from
Faust's events) and what a batch produced."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, overload

from schemas.events import AnomalyEvent, DeadLetter, SourceRef

__all__ = ["BatchResult", "Message", "MessageSources", "messages_of"]


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
    ``key`` and ``headers`` (Kafka's, as received) go into the message's dead letter.
    """

    value: bytes | None
    topic: str
    partition: int | None
    offset: int | None
    timestamp: float | None = None
    first_record: int = 0
    stop_record: int | None = None
    key: bytes | None = None
    headers: Sequence[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None = None

    @property
    def source(self) -> SourceRef:
        return SourceRef(topic=self.topic, partition=self.partition, offset=self.offset)

    @property
    def ident(self) -> tuple[str, int | None, int | None]:
        return (self.topic, self.partition, self.offset)

    def dead_letter(self, reason: str, text: str) -> DeadLetter:
        """This message's dead letter: its value, key and headers, ``reason`` (a machine-
        readable code) and ``text`` (what was wrong, for people)."""
        headers = self.headers
        pairs = list(headers.items()) if isinstance(headers, Mapping) else headers or ()
        return DeadLetter.for_message(self.value or b"", reason, text, self.source,
                                      self.key, pairs)

    def records_slice(self, first: int, stop: int) -> Message:
        return replace(self, first_record=first, stop_record=stop)


def messages_of(records: Iterable[Any]) -> list[Message]:
    """Messages from aiokafka ``ConsumerRecord`` values (the worker's bulk delivery):
    the Kafka timestamp in seconds, as Faust's ``Consumer._to_message`` gives it."""
    return [Message(r.value, r.topic, r.partition, r.offset,
                    None if r.timestamp is None else r.timestamp / 1000.0,
                    key=r.key, headers=r.headers) for r in records]


class MessageSources(Sequence[SourceRef]):
    """The :attr:`Message.source` of each of ``messages``, each built when first read.

    A :class:`~schemas.events.SourceRef` is a validated pydantic model (~2 us to build); a
    key's messages windowed together need only the first's and the last's, and the one
    behind an alerting window (:meth:`~stream_detector.core.model_runtime.PendingRun.source_of`).
    """

    __slots__ = ("_messages", "_made")

    def __init__(self, messages: Sequence[Message]) -> None:
        self._messages = messages
        self._made: dict[int, SourceRef] = {}

    def __len__(self) -> int:
        return len(self._messages)

    @overload
    def __getitem__(self, i: int) -> SourceRef: ...

    @overload
    def __getitem__(self, i: slice) -> list[SourceRef]: ...

    def __getitem__(self, i: int | slice) -> SourceRef | list[SourceRef]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        k = i + len(self) if i < 0 else i
        made = self._made.get(k)
        if made is None:
            made = self._made[k] = self._messages[k].source  # IndexError as a list's
        return made
