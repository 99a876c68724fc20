"""What a worker does with a batch of Kafka events, apart from Faust wiring.

One batch (up to ``batch_max`` events, or whatever arrived within ``batch_wait``):

1. each message is parsed; a bad one becomes a dead letter with its reason and bytes, and
   so does one whose key no loaded model serves (reason ``unrouted``, also counted);
2. records join their keys' windows (:meth:`Pipeline.ingest`);
3. ready windows of every key are scored together in a worker thread (ONNX Runtime
   releases the GIL, the event loop keeps consuming);
4. decisions are taken in arrival order; anomaly events and dead letters are sent and their
   delivery awaited;
5. only then are the touched key states written to the changelog, and Faust acks the batch.

A crash before (5) replays the batch (at-least-once: duplicate events keep their
``event_id``); a crash after (5) but before the offset commit replays records whose state
already holds them, which :class:`~stream_detector.pipeline.Pipeline` skips by position.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from schemas.events import AnomalyEvent, DeadLetter, SourceRef
from schemas.records import Record, RecordError, parse_message
from stream_detector.events import event_json
from stream_detector.metrics import WorkerMetrics
from stream_detector.pipeline import KeyState, ModelRuntime, Pending, Pipeline, Scored

__all__ = ["TableStore", "BatchResult", "WorkerRuntime", "table_key"]

log = logging.getLogger(__name__)

Send = Callable[[bytes, bytes], Awaitable[Any]]


def table_key(model: str, key: str) -> bytes:
    """Changelog key of one model's state for one series key."""
    return f"{model}\x1f{key}".encode()


class _Table(Protocol):
    data: Any

    def send_changelog(self, partition: int | None, key: Any, value: Any) -> Any: ...


class TableStore:
    """Key states over a Faust table, written to its changelog only when told to flush.

    Live states are kept as objects (no decoding per record); the table holds their bytes
    for recovery. Writes go to the changelog partition of the record's source partition,
    which is what Faust restores for a worker that owns that partition.
    """

    def __init__(self, table: _Table) -> None:
        self.table = table
        self.live: dict[bytes, KeyState] = {}
        self.dirty: dict[bytes, tuple[KeyState, int | None]] = {}

    def get(self, model: str, key: str) -> KeyState | None:
        k = table_key(model, key)
        state = self.live.get(k)
        if state is None:
            raw = self.table.data.get(k)
            if raw is not None:
                state = KeyState.from_bytes(bytes(raw))
                self.live[k] = state
        return state

    def put(self, model: str, key: str, state: KeyState, source: SourceRef) -> None:
        k = table_key(model, key)
        self.live[k] = state
        self.dirty[k] = (state, source.partition)

    def flush(self) -> int:
        """Persist every touched state; returns how many."""
        for k, (state, partition) in self.dirty.items():
            blob = state.to_bytes()
            self.table.data[k] = blob
            self.table.send_changelog(partition, k, blob)
        n = len(self.dirty)
        self.dirty.clear()
        return n

    def forget(self) -> None:
        """Drop live objects after a rebalance: partitions may have moved."""
        self.live.clear()
        self.dirty.clear()


@dataclass
class BatchResult:
    """What one batch produced (for metrics, logs and tests)."""

    records: int = 0
    windows: int = 0
    events: list[AnomalyEvent] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


@dataclass
class Message:
    """The parts of a Kafka message the worker needs (Faust's event.message, decoupled)."""

    value: bytes | None
    topic: str
    partition: int | None
    offset: int | None
    timestamp: float | None = None


class WorkerRuntime:
    """Batches in, events and dead letters out; owns the pipeline, store and metrics."""

    def __init__(
        self,
        models: Sequence[ModelRuntime],
        store: TableStore,
        metrics: WorkerMetrics,
        send_event: Send,
        send_dead: Send,
    ) -> None:
        self.store = store
        self.pipeline = Pipeline(models, store)
        self.metrics = metrics
        self.send_event = send_event
        self.send_dead = send_dead
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnx")
        self._widths = self._kind_widths(models)

    def set_models(self, models: Sequence[ModelRuntime]) -> None:
        self.pipeline.set_models(models)
        self._widths = self._kind_widths(models)

    @staticmethod
    def _kind_widths(models: Sequence[ModelRuntime]) -> dict[str, int]:
        return {m.card.record_kind: m.card.n_features for m in models}

    def _parse(self, msg: Message) -> list[Record]:
        if msg.value is None:
            raise RecordError("malformed_json", "message has no value (a tombstone?)")
        records = parse_message(msg.value)
        head = records[0]  # a message holds one key's records (parse_message checks)
        if self.pipeline.router.route(head.kind, head.key) is None:
            self.metrics.unrouted_records.labels(head.kind).inc(len(records))
            raise RecordError(
                "unrouted", f"no loaded model serves {head.kind} key {head.key!r} "
                f"({self.pipeline.router.describe(head.kind)}); train or load a model that "
                "serves it"
            )
        for r in records:
            want = self._widths.get(r.kind)
            if want is not None and len(r.values) != want:
                raise RecordError(
                    "wrong_width", f"record of key {r.key!r} has {len(r.values)} values; "
                    f"the {r.kind} model expects {want}"
                )
        return records

    def ingest(self, messages: Sequence[Message], result: BatchResult) -> list[Pending]:
        pending: list[Pending] = []
        for msg in messages:
            source = SourceRef(topic=msg.topic, partition=msg.partition, offset=msg.offset)
            try:
                records = self._parse(msg)
                pending.extend(self.pipeline.ingest(records, source))
            except RecordError as exc:
                result.dead.append(DeadLetter.for_message(
                    msg.value or b"", exc.reason, exc.message, source))
                continue
            except Exception as exc:  # noqa: BLE001 - input must never crash a worker
                log.exception("unprocessable message at %s", source)
                result.dead.append(DeadLetter.for_message(
                    msg.value or b"", "unprocessable", f"{type(exc).__name__}: {exc}", source))
                continue
            result.records += len(records)
            for r in records:
                self.metrics.records_in.labels(r.kind).inc()
        return pending

    async def process(self, messages: Sequence[Message], flush: bool = True) -> BatchResult:
        """Run one batch through every stage; returns once its output is delivered.

        ``flush=False`` leaves the touched states dirty: the caller flushes them later
        (several batches at once) and only then acks the batches' messages.
        """
        result = BatchResult()
        pending = self.ingest(messages, result)
        result.windows = len(pending)
        scored: list[Scored] = []
        if pending:
            loop = asyncio.get_running_loop()
            started = time.perf_counter()
            batches = await loop.run_in_executor(self.executor, Pipeline.score, pending)
            self.metrics.scoring_latency.observe(time.perf_counter() - started)
            self.metrics.batch_size.observe(len(pending))
            scored = self.pipeline.decide(pending, batches)
        outgoing: list[tuple[Send, bytes, bytes]] = []
        for s in scored:
            self.metrics.windows_scored.labels(s.pending.model.name).inc()
            if s.event is not None:
                result.events.append(s.event)
                self.metrics.anomalies_out.labels(s.pending.model.name).inc()
                outgoing.append((self.send_event, s.event.key.encode(), event_json(s.event)))
        for dead in result.dead:
            self.metrics.invalid_records.labels(dead.reason).inc()
            outgoing.append((self.send_dead, b"", dead.model_dump_json().encode()))
        await self._deliver(outgoing)  # events out before state in: a crash replays, never loses
        if flush:
            self.store.flush()
        now = time.time()
        for msg in messages[-1:]:
            if msg.timestamp:
                self.metrics.end_to_end_lag.observe(max(0.0, now - msg.timestamp))
        return result

    async def _deliver(self, outgoing: list[tuple[Send, bytes, bytes]]) -> None:
        """Send and await delivery, retrying failures with backoff; never drop output."""
        delay = 0.1
        while outgoing:
            results: list[Any] = []
            for send, key, value in outgoing:
                try:
                    results.append(await send(key, value))
                except Exception as exc:  # noqa: BLE001 - retried below
                    results.append(_failed(exc))
            done = await asyncio.gather(*results, return_exceptions=True)
            failed = [o for o, r in zip(outgoing, done, strict=True) if isinstance(r, Exception)]
            if failed:
                log.warning("%d of %d sends failed (%s); retrying in %.1fs", len(failed),
                            len(outgoing), next(r for r in done if isinstance(r, Exception)),
                            delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            outgoing = failed


def _failed(exc: Exception) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    return future
