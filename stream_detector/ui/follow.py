"""Follow the anomaly topic (events) and the input topic (observed values) into the state.

One confluent-kafka consumer in a daemon thread, in a consumer group of its own that never
commits (every explorer reads the topics from the beginning of what the broker retains, or
from the end with ``from_end``). Messages are applied under the state's lock; new events
are also queued for the server, which pushes them to pages (server-sent events).

Bad messages are counted and skipped: the explorer only looks, the worker's dead-letter
topic is where rejected records are kept.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from schemas.events import AnomalyEvent
from schemas.records import RecordError, parse_message
from stream_detector.ui.state import EventRow, ExplorerState

__all__ = ["Follower", "apply_event", "apply_records"]

log = logging.getLogger(__name__)
_POLL_SECONDS = 0.1
_BATCH = 500


@dataclass
class Counts:
    """Messages the follower could not use, by topic role."""

    bad_events: int = 0
    bad_records: int = 0


def apply_event(state: ExplorerState, raw: bytes) -> EventRow | None:
    """Parse one anomaly-topic message into the state; the new row, or None (duplicate).

    Raises ``ValueError`` (pydantic's ``ValidationError`` included) for a bad message.
    """
    row = EventRow.from_event(AnomalyEvent.model_validate_json(raw))
    return row if state.add_event(row) else None


def apply_records(state: ExplorerState, raw: bytes) -> int:
    """Parse one input-topic message (one record or a list of one key's) into the state.

    Returns the number of records; raises :class:`schemas.records.RecordError`.
    """
    records = parse_message(raw)
    if records:
        state.add_values(records[0].key, [(r.epoch_ns, r.values[0]) for r in records])
    return len(records)


@dataclass
class Follower:
    """Consumes ``events_topic`` and ``records_topic`` until :meth:`stop`."""

    config: dict[str, Any]  # confluent-kafka settings (bootstrap, security)
    events_topic: str
    records_topic: str | None
    state: ExplorerState
    lock: threading.Lock
    on_events: Callable[[list[EventRow]], None]
    from_end: bool = False
    counts: Counts = field(default_factory=Counts)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    assigned: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ui-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _consumer(self) -> Any:
        from confluent_kafka import Consumer

        quiet = logging.getLogger("stream_detector.ui.kafka")  # silenced by ui.run
        conf = {**self.config, "group.id": f"stream-detector-ui-{uuid.uuid4().hex[:12]}",
                "auto.offset.reset": "latest" if self.from_end else "earliest",
                "enable.auto.commit": False, "logger": quiet,
                "topic.metadata.refresh.interval.ms": 2000}
        consumer = Consumer(conf)
        topics = [t for t in (self.events_topic, self.records_topic) if t]
        consumer.subscribe(topics, on_assign=lambda c, parts: self.assigned.set())
        return consumer

    def _run(self) -> None:
        consumer = self._consumer()
        try:
            while not self._stop.is_set():
                messages = consumer.consume(_BATCH, _POLL_SECONDS)
                if messages:
                    self._apply(messages)
        finally:
            consumer.close()

    def _apply(self, messages: list[Any]) -> None:
        new: list[EventRow] = []
        with self.lock:
            for msg in messages:
                if msg.error() is not None:
                    continue
                self._apply_one(msg, new)
        if new:
            self.on_events(new)

    def _apply_one(self, msg: Any, new: list[EventRow]) -> None:
        raw = msg.value() or b""
        if msg.topic() == self.events_topic:
            try:
                row = apply_event(self.state, raw)
            except (ValidationError, ValueError):
                self.counts.bad_events += 1
                return
            if row is not None:
                new.append(row)
            return
        try:
            apply_records(self.state, raw)
        except RecordError:
            self.counts.bad_records += 1
