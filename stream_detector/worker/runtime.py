"""What a worker does with a batch of Kafka events, apart from Faust wiring.

One batch (up to ``batch_max`` events, or whatever arrived within ``batch_wait``):

1. each message is parsed (series records, in lists or alone, are read with their batch:
   :mod:`~stream_detector.core.batch_runs`); a bad one becomes a dead letter with its reason
   and bytes, and so does one whose key no loaded model serves (reason ``unrouted``, also
   counted);
2. records join their keys' windows (:meth:`Pipeline.ingest`);
3. ready windows of every key are scored together (on the loop, or in a worker thread when
   predicted slow: ONNX Runtime releases the GIL);
4. decisions are taken in arrival order; anomaly events and dead letters are handed to
   the producer;
5. every ``state_flush_interval``, the touched key states are snapshotted; once the
   outputs handed over before are delivered, the snapshot is written to the changelog, and
   Faust acks the batches (:meth:`WorkerRuntime.start_flush`, :mod:`.acks`).

A crash before (5) completes replays the batches (at-least-once: duplicate events keep their
``event_id``); a crash after it but before the offset commit replays records whose state
already holds them, which :class:`~stream_detector.core.pipeline.Pipeline` skips by position."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from schemas.events import AnomalyEvent, DeadLetter
from schemas.records import RecordError
from stream_detector.core.batch_runs import series_runs
from stream_detector.core.events import event_json
from stream_detector.core.model_runtime import ModelRuntime, Pending, PendingRun
from stream_detector.core.pipeline import Pipeline
from stream_detector.core.record_runs import RecordRun, parse_run, slice_runs
from stream_detector.core.scoring import ScoreBatch
from stream_detector.core.timing import flag_names
from stream_detector.worker.delivery import Deliveries, Send, deliver
from stream_detector.worker.key_groups import Parsed, key_groups
from stream_detector.worker.messages import BatchResult, Message, MessageSources
from stream_detector.worker.metrics import BatchCounts, WorkerMetrics
from stream_detector.worker.stalls import StallGuard
from stream_detector.worker.table_store import Blob, TableStore

__all__ = ["WorkerRuntime"]

log = logging.getLogger(__name__)

INLINE_SCORE_S = 0.001  # a batch predicted to score faster than this is scored on the loop



class WorkerRuntime:
    """Batches in, events and dead letters out; owns the pipeline, store and metrics.

    Fault isolation: no exception raised while a batch is parsed, windowed, scored,
    decided, turned into events or persisted stops the worker. The failing batch's key
    states are rolled back to the last flush, the messages since then are run again
    (outputs already delivered are not sent twice), and a batch that still fails is split
    in halves, down to single records of a message, until the failing record is isolated:
    it goes to the dead-letter topic (reason ``unprocessable``, naming the stage and the
    error), everything else is processed and its offsets move on.
    """

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
        self._s_per_window = 0.0  # scoring seconds per window, moving average of inline calls
        self._widths = self._kind_widths(models)
        self._unflushed: list[Message] = []  # processed since the last flush (rollback replays)
        # handed to the producer by batches not flushed yet; delivery awaited before a flush
        self._out = Deliveries()
        self._flushing: asyncio.Future[int] | None = None  # a flush's completion
        self._generation = 0  # moves on at every forget: flushes in flight are dropped
        self._stage = "parse"
        self.stalls: StallGuard | None = None  # the app's: no write after a long freeze

    def set_models(self, models: Sequence[ModelRuntime]) -> None:
        self.pipeline.set_models(models)
        self._widths = self._kind_widths(models)

    async def flush(self) -> int:
        """Persist every touched key state (a new rollback point); returns how many.

        :meth:`start_flush` and its completion, awaited: the outputs handed to the producer
        before are delivered first (events out before state in).
        """
        return await (await self.start_flush())

    async def start_flush(self) -> asyncio.Future[int]:
        """Snapshot (serialise) every touched key state now; the returned future completes
        the flush beside later batches: it awaits the delivery of every output handed over
        before, then writes the states to the table and its changelog (events out before
        state in: the table, the rollback point, only holds states whose outputs are out).
        A revoke meanwhile (:meth:`forget`) drops it unwritten; a new flush first awaits the
        one in flight. A state that cannot be serialised is isolated like a failing batch
        (the messages since the last flush run again in halves, outputs not sent twice,
        until the record behind it is dead-lettered); the future is then done.
        """
        await self.flushed()
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        try:
            blobs = self.store.serialize()
        except Exception:  # noqa: BLE001 - isolated below, never a crash loop
            log.exception("persisting key states failed; isolating the record behind it")
            await self._out.settle()
            await self._isolate((), delivered=True)
            done.set_result(0)
            return done
        self._unflushed.clear()  # replays after a failure start from this snapshot
        member = self.stalls.membership() if self.stalls is not None else None
        self._flushing = asyncio.ensure_future(self._complete(
            self._out.take(), blobs, self._generation, (time.monotonic(), member)))
        return self._flushing

    async def flushed(self) -> None:
        """Wait for the flush in flight, if any (its failure is its awaiter's)."""
        if self._flushing is not None:
            await asyncio.wait([self._flushing])

    async def _complete(self, handed: Deliveries, blobs: list[Blob], generation: int,
                        taken: tuple[float, object]) -> int:
        await handed.settle()
        stalls = self.stalls
        if stalls is not None and await stalls.settle(taken[0]):
            # evicted while frozen: the member was reset (or the partitions revoked)
            kept = generation == self._generation and stalls.membership() == taken[1]
            log.warning("a state flush taken before the freeze waited %.0f s for the group "
                        "to confirm or revoke its partitions: %s", stalls.confirm,
                        "still a member, written" if kept else
                        "no longer the same member, not written (the records are replayed)")
            if not kept:
                return 0
        if generation != self._generation:
            return 0  # revoked meanwhile: not written; the records are replayed
        try:
            return self.store.write(blobs)
        except Exception:
            self.store.touch_again(blobs)  # the next flush writes them
            raise

    def _flush_now(self) -> int:
        n = self.store.flush()
        self._unflushed.clear()
        return n

    def forget(self) -> None:
        """Drop live states and the rollback log (partitions were revoked or reassigned);
        a flush in flight writes nothing."""
        self._generation += 1
        self.store.forget()
        self._unflushed.clear()
        self._out.clear()  # their messages are not acked: the new owner replays them

    @staticmethod
    def _kind_widths(models: Sequence[ModelRuntime]) -> dict[str, int]:
        return {m.card.record_kind: m.card.n_features for m in models}

    def _parse(self, msg: Message, counts: BatchCounts | None = None,
               read: RecordRun | None = None) -> list[RecordRun]:
        """The message's runs (``read``: its one run, read with its batch: see
        :mod:`~stream_detector.core.batch_runs`); a bad message raises its dead letter's
        :class:`RecordError`."""
        if read is not None:
            runs = [read]
        elif msg.value is None:
            raise RecordError("malformed_json", "message has no value (a tombstone?)")
        else:
            runs = parse_run(msg.value, self._widths)
        if msg.first_record or msg.stop_record is not None:
            runs = slice_runs(runs, msg.first_record, msg.stop_record)
        head = runs[0] if runs else None  # one key per message (parse_message checks)
        if head is not None and self.pipeline.router.route(head.kind, head.key) is None:
            if counts is not None:
                n = sum(len(r) for r in runs)
                counts.unrouted[head.kind] = counts.unrouted.get(head.kind, 0) + n
            raise RecordError(
                "unrouted", f"no loaded model serves {head.kind} key {head.key!r} "
                f"({self.pipeline.router.describe(head.kind)}); train or load a model that "
                "serves it"
            )
        return runs

    def ingest(self, messages: Sequence[Message], result: BatchResult,
               counts: BatchCounts) -> list[PendingRun]:
        """Parse and window a batch; bad input is dead-lettered, any other error raised.

        A key's whole messages of the batch are windowed together (:mod:`.key_groups`)."""
        parsed: list[Parsed | None] = []
        self._stage = "parse"
        read = series_runs([m.value for m in messages], self._widths)  # lists of series
        for msg, run in zip(messages, read, strict=True):
            try:
                parsed.append((msg, self._parse(msg, counts, run)))
            except RecordError as exc:
                result.dead.append(msg.dead_letter(exc.reason, exc.message))
                parsed.append(None)
        self._stage = "window"
        groups = key_groups(parsed)
        done = [False] * len(parsed)
        pending: list[PendingRun] = []
        for i, entry in enumerate(parsed):
            if entry is None or done[i]:
                continue
            members = groups.get(i, [i])
            group = [e for k in members if (e := parsed[k]) is not None]
            got = None if len(group) == 1 else self.pipeline.ingest_group(
                [runs[0] for _, runs in group], MessageSources([m for m, _ in group]))
            if got is not None:
                pending += got
            for k in members:
                done[k] = True
            for msg, runs in group:
                index = msg.first_record
                source = msg.source if got is None else None
                for run in runs:
                    n = len(run.texts)
                    if source is not None:  # alone, or its group not plain: one by one
                        pending += self.pipeline.ingest_run(run, source, index)
                    index += n
                    result.records += n
                    counts.records[run.kind] = counts.records.get(run.kind, 0) + n
        self._drain_flags(messages, result, counts)
        return pending

    def _drain_flags(self, messages: Sequence[Message], result: BatchResult,
                     counts: BatchCounts) -> None:
        """Timing-flag counts into ``counts``; records refused for their time to dead
        letters."""
        pipe = self.pipeline
        if pipe.flag_counts:
            for bit, n in pipe.flag_counts.items():
                name = flag_names(bit)[0]
                counts.flags[name] = counts.flags.get(name, 0) + n
            pipe.flag_counts = {}
        if pipe.refused:
            by_ident = {m.ident: m for m in messages}
            for source, index, reason, text in pipe.refused:
                msg = by_ident.get((source.topic, source.partition, source.offset))
                text = f"record {index}: {text}"
                result.dead.append(DeadLetter.for_message(b"", reason, text, source)
                                   if msg is None else msg.dead_letter(reason, text))
            pipe.refused = []

    async def process(self, messages: Sequence[Message], flush: bool = True) -> BatchResult:
        """Run one batch through every stage; returns once its output is delivered.

        ``flush=False`` leaves the touched states dirty and the outputs handed to the
        producer, unconfirmed: the caller flushes later, for several batches
        (:meth:`start_flush` awaits those deliveries before writing), then acks them.
        Never raises for what a message holds: see the class docstring.
        """
        try:
            result = await self._run(messages, flush)
        except Exception:  # noqa: BLE001 - isolated below, never a crash loop
            log.exception("a batch of %d messages failed at %s; splitting it to isolate "
                          "the failing record", len(messages), self._stage)
            await self._out.settle()  # the replay below does not send these outputs again
            return await self._isolate(messages, delivered=self._stage == "persist")
        if not flush:
            self._unflushed.extend(messages)
        return result

    async def _run(
        self, messages: Sequence[Message], flush: bool,
        quiet: frozenset[tuple[str, int | None, int | None]] = frozenset(),
        count: bool = True,
    ) -> BatchResult:
        """One attempt at ``messages``; their record counts go to the metrics when it
        succeeds and ``count`` (False: a replay of batches counted before)."""
        result = BatchResult()
        counts = BatchCounts()
        pending = self.ingest(messages, result, counts)
        alerts: list[tuple[Pending, AnomalyEvent]] = []
        if pending:
            result.windows = sum(len(p.windows) for p in pending)
            self._stage = "score"
            batches = await self._score(pending, result.windows)
            self.metrics.batch_size.observe(result.windows)
            self._stage = "decide"  # and build events
            alerts = self.pipeline.decide_events(pending, batches)
            self._count_windows(pending, counts.windows)
        self._stage = "deliver"
        # events out before state in: a crash replays, never loses
        outgoing = self._outgoing(alerts, result, quiet)
        if flush:
            await self.flushed()  # an earlier snapshot's state is written first
            await self._out.settle()
            await deliver(outgoing)
            self._stage = "persist"
            self._flush_now()
        else:
            await self._out.hand_over(outgoing)
        if count:
            counts.apply(self.metrics)
        now = time.time()
        for msg in messages[-1:]:
            if msg.timestamp:
                self.metrics.end_to_end_lag.observe(max(0.0, now - msg.timestamp))
        return result

    async def _score(self, pending: Sequence[PendingRun], windows: int) -> list[ScoreBatch]:
        """Score in the ONNX thread when predicted to take longer than the hand-over
        (1-2.5 ms a batch on two loaded cores), else on the loop (the same pure call): a
        batch predicted under :data:`INLINE_SCORE_S` from the seconds per window of past
        calls (each call's own scoring time, wherever it ran)."""
        started = time.perf_counter()
        if windows * self._s_per_window < INLINE_SCORE_S:
            batches, took = _timed_score(pending)
        else:
            loop = asyncio.get_running_loop()
            batches, took = await loop.run_in_executor(self.executor, _timed_score, pending)
        self._s_per_window += 0.2 * (took / windows - self._s_per_window)
        self.metrics.scoring_latency.observe(time.perf_counter() - started)
        return batches

    @staticmethod
    def _count_windows(pending: Sequence[PendingRun], windows: dict[str, int]) -> None:
        for p in pending:
            windows[p.model.name] = windows.get(p.model.name, 0) + len(p.windows)

    def _outgoing(
        self, alerts: list[tuple[Pending, AnomalyEvent]], result: BatchResult,
        quiet: frozenset[tuple[str, int | None, int | None]],
    ) -> list[tuple[Send, bytes, bytes]]:
        """What to send, minus what a rollback replays but was delivered before."""
        outgoing: list[tuple[Send, bytes, bytes]] = []
        for item, event in alerts:
            src = item.source
            if quiet and (src.topic, src.partition, src.offset) in quiet:
                continue
            result.events.append(event)
            self.metrics.anomalies_out.labels(item.model.name).inc()
            outgoing.append((self.send_event, event.key.encode(), event_json(event)))
        for dead in result.dead:
            if quiet and (dead.topic, dead.partition, dead.offset) in quiet:
                continue
            self.metrics.invalid_records.labels(dead.reason).inc()
            outgoing.append((self.send_dead, dead.key_bytes() or b"",
                             dead.model_dump_json().encode()))
        return outgoing

    async def _isolate(self, messages: Sequence[Message], delivered: bool) -> BatchResult:
        """Roll back to the last flush, replay what followed it, split what fails."""
        await self.flushed()  # its snapshot, the rollback point, is in the table
        self.metrics.batches_split.inc()
        replay, self._unflushed = self._unflushed, []
        quiet = frozenset(m.ident for m in (*replay, *(messages if delivered else ())))
        self.store.forget()
        result = BatchResult()
        await self._bisect(replay, quiet, result, count=False)  # counted when first run
        await self._bisect(list(messages), quiet, result)
        return result

    async def _bisect(
        self, parts: list[Message], quiet: frozenset[tuple[str, int | None, int | None]],
        result: BatchResult, count: bool = True,
    ) -> None:
        if not parts:
            return
        try:
            done = await self._run(parts, flush=True, quiet=quiet, count=count)
        except Exception as exc:  # noqa: BLE001 - split until one record is left
            stage, error = self._stage, exc
            self.store.forget()
            if stage == "persist":  # delivered before failing: not again (whole messages;
                # a slice's events may go out twice, deduplicable by event_id)
                quiet = quiet | {m.ident for m in parts if m.stop_record is None}
        else:
            result.records += done.records
            result.windows += done.windows
            result.events += done.events
            result.dead += done.dead
            return
        halves = _halves(parts) if len(parts) > 1 else self._split_records(parts[0])
        if halves is None:
            await self._dead_letter(parts[0], stage, error, result)
            return
        for half in halves:
            await self._bisect(half, quiet, result, count)

    def _split_records(self, msg: Message) -> list[list[Message]] | None:
        """A multi-record message (or slice of one) in two halves; None when atomic."""
        try:
            n = sum(len(run) for run in self._parse(msg))
        except Exception:  # noqa: BLE001 - a message that cannot be parsed is atomic
            return None
        if n <= 1:
            return None
        first, mid = msg.first_record, msg.first_record + n // 2
        return [[msg.records_slice(first, mid)], [msg.records_slice(mid, first + n)]]

    async def _dead_letter(
        self, msg: Message, stage: str, error: Exception, result: BatchResult
    ) -> None:
        which = (f"record {msg.first_record} of the message"
                 if msg.stop_record is not None else "the message")
        text = (f"{stage} failed on {which}: {type(error).__name__}: {error}; the rest of "
                "its batch was processed (a bug or a record the model cannot take: report "
                "it with this dead letter)")
        dead = msg.dead_letter("unprocessable", text)
        log.error("dead-lettered %s at %s: %s", which, msg.source, text)
        result.dead.append(dead)
        self.metrics.invalid_records.labels(dead.reason).inc()
        await deliver([(self.send_dead, dead.key_bytes() or b"",
                         dead.model_dump_json().encode())])


def _timed_score(pending: Sequence[PendingRun]) -> tuple[list[ScoreBatch], float]:
    started = time.perf_counter()
    batches = Pipeline.score(pending)
    return batches, time.perf_counter() - started


def _halves(parts: list[Message]) -> list[list[Message]]:
    mid = len(parts) // 2
    return [parts[:mid], parts[mid:]]
