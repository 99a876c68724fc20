"""Start-up patch of Faust: the input topic's records go to the scoring agent as lists, one
per partition and fetch, without Faust's per-message path (setting ``bulk_delivery``).

Why it matters
--------------
Faust's fetch loop (``Consumer._drain_messages``) turns every record into a Faust
``Message``, a conductor callback, an ``Event`` on the stream's queue, a step of the
stream's iterator and, once acknowledged, a bookkeeping step per offset. At 5,000 messages/s
of one record each (2 shared cores, issue #13) a bare Faust agent that only counts used 61%
of a core where aiokafka's own ``getmany`` loop used 6%: about 110 us of CPU per message
before the worker's own work, and the host was then saturated (broker, producer and worker),
so records queued for hundreds of ms.

What it does
------------
:func:`install` replaces ``Consumer._drain_messages`` with :func:`drain`, which does what
upstream's loop and ``Consumer.getmany`` do (waits for the next records of the active
partitions, drops records below a partition's read offset, notes offset gaps for the commit,
commits every ``commit_every`` acks, stops at a new consumer generation or a stopped flow,
seeks back when the flow is stopped), with one difference: the records of a topic attached
with :func:`attach` are put on its :class:`BulkQueue` as one :class:`Chunk` per partition
and fetch, instead of one callback per record. Records of every other topic (the table's
changelog while it is restored) take upstream's per-message path unchanged. An app with
nothing attached runs upstream's loop.

The agent takes chunks from the queue (:meth:`BulkQueue.take`) and, once the key states they
changed are flushed, acknowledges them with :func:`ack_chunk`: the same bookkeeping as
Faust's ``Consumer.ack`` (acked offsets per partition, from which Faust's commit computes
the offset to commit), for the chunk's offsets at once. Faust's rebalance stays as it is:
the queue is cleared whenever Faust clears its stream queues (``app.flow_control``), and a
chunk fetched in an older consumer generation is never handed out (:meth:`BulkQueue.take`).
Records taken but not acknowledged when partitions are revoked are not committed: their new
owner reads them again (at least once).

:data:`UPSTREAM_SHA256` pins the upstream functions :func:`drain` and :func:`ack_chunk`
follow; :func:`install` refuses (logs, leaves Faust as it is) when one differs, and a unit
test fails, so an upgrade of faust-streaming is reviewed against this module.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Sequence
from typing import Any, Final

from stream_detector.worker import upstream_pins
from stream_detector.worker.bulk_queue import BulkQueue, Chunk

__all__ = ["UPSTREAM_SHA256", "ChunkAcker", "ack_chunk", "attach", "drain", "install",
           "installed", "upstream_matches"]

log = logging.getLogger(__name__)

UPSTREAM_SHA256: Final = {
    "faust.transport.consumer.Consumer._drain_messages":
        "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417",
    "faust.transport.consumer.Consumer.getmany":
        "4b168d84882a70d6e3e2f9804430a63b92f8fd117d3187cbb4aeb54305bda34e",
    "faust.transport.consumer.Consumer.ack":
        "5fcf41cf45153475de3790dc56fec1b83335956dc8b3bf7ff6bbb2b57627f03f",
    "faust.transport.drivers.aiokafka.Consumer._to_message":
        "7c24f6511b2fcef7cbfe73526e78de033bfe0df211f1fd30509d699c9deb6ce4",
}
_MODULE: Final = "stream_detector/worker/bulk_delivery.py"
_ATTACHED: Final = "_stream_detector_bulk"  # app attribute: {topic name: BulkQueue}
YIELD_EVERY: Final = 100  # per-message records between yields to the loop (upstream's)
_state: dict[str, Any] = {}


def attach(app: Any, topic: str, queue: BulkQueue) -> None:
    """Deliver ``topic``'s records to ``queue`` in chunks (once :func:`install` ran); the
    queue is cleared whenever Faust clears its stream queues."""
    vars(app).setdefault(_ATTACHED, {})[topic] = queue
    app.flow_control.manage_queue(queue)


def ack_chunk(consumer: Any, chunk: Chunk) -> int:
    """Acknowledge the chunk's records in Faust's ``consumer`` as its ``Consumer.ack`` does
    for each (acked offsets above the committed one, not acked before); returns how many
    were new. Faust's commit then moves past them once every offset before them is acked."""
    from faust.types.tuples import ack_lock
    from mode.utils.futures import notify

    tp = chunk.tp
    chunk.acked = True
    consumer._unacked_messages.discard(chunk)
    if not consumer.app.topics.acks_enabled_for(tp.topic):
        notify(consumer._waiting_for_ack)
        return 0
    committed = consumer._committed_offset[tp]
    with ack_lock:
        index: set[int] = consumer._acked_index[tp]
        new = [r.offset for r in chunk.records
               if (committed is None or r.offset >= committed) and r.offset not in index]
        if new:
            index.update(new)
            consumer._acked[tp].extend(new)
            consumer._n_acked += len(new)
        notify(consumer._waiting_for_ack)
    return len(new)


class ChunkAcker:
    """The agent's chunks in Faust's consumer: tracked while taken, acknowledged once
    flushed (``ack``: what :class:`~.acks.FlushThenAck` needs of a stream).

    Faust's rebalance and stop wait for every message a stream took to be acked
    (``Consumer.wait_empty``) before they commit; the worker's idle flush acks them
    meanwhile, so what was processed is committed, not replayed by the next owner. A
    tracked chunk is waited for the same way. Chunks dropped unacknowledged (partitions
    revoked) are no longer waited for (:meth:`drop`).
    """

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer
        self._taken: set[Chunk] = set()

    def track(self, chunks: Sequence[Chunk]) -> None:
        """The agent took ``chunks``: Faust's ``wait_empty`` waits for their acks."""
        unacked = self.consumer._unacked_messages
        for chunk in chunks:
            self._taken.add(chunk)
            unacked.add(chunk)

    async def ack(self, chunk: Chunk) -> int:
        """Acknowledge ``chunk`` (:func:`ack_chunk`); returns how many offsets were new."""
        self._taken.discard(chunk)
        return ack_chunk(self.consumer, chunk)

    def drop(self, chunks: Sequence[Chunk] | None = None) -> None:
        """Stop waiting for ``chunks`` (default: every chunk taken and not acked): their
        partitions were revoked, or the batch holding them failed; they are read again
        after the rebalance or the restart (at least once), and a rebalance does not wait
        for acks that never come."""
        unacked = self.consumer._unacked_messages
        for chunk in list(self._taken) if chunks is None else chunks:
            unacked.discard(chunk)
            self._taken.discard(chunk)


def _upstream_sources() -> dict[str, str]:
    from faust.transport.consumer import Consumer
    from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer

    return {"faust.transport.consumer.Consumer._drain_messages":
            inspect.getsource(Consumer._drain_messages),  # unwrapped: upstream's
            "faust.transport.consumer.Consumer.getmany": inspect.getsource(Consumer.getmany),
            "faust.transport.consumer.Consumer.ack": inspect.getsource(Consumer.ack),
            "faust.transport.drivers.aiokafka.Consumer._to_message":
            inspect.getsource(AIOKafkaConsumer._to_message)}


def upstream_matches() -> dict[str, bool]:
    """For each upstream function this patch follows, whether its source is the one
    reviewed."""
    return upstream_pins.matches(_upstream_sources(), UPSTREAM_SHA256)


def installed() -> bool:
    """Whether :func:`install` patched Faust's consumer in this process."""
    return "upstream" in _state


def install() -> bool:
    """Patch Faust's fetch loop (idempotent); False, with a warning, if upstream changed."""
    from faust.transport.consumer import Consumer

    if installed():
        return True
    found = upstream_matches()
    if upstream_pins.changed(found, list(found), patch="faust bulk delivery", module=_MODULE,
                             logger=log):
        return False
    _state["upstream"] = upstream = Consumer._drain_messages

    @functools.wraps(upstream)  # __wrapped__: inspect.getsource still reads upstream's
    async def _drain_messages(self: Any, fetcher: Any) -> None:
        sinks = vars(self.app).get(_ATTACHED)
        if not sinks:
            return await upstream(self, fetcher)
        return await drain(self, fetcher, sinks)

    Consumer._drain_messages = _drain_messages  # type: ignore[method-assign]
    return True


async def drain(consumer: Any, fetcher: Any, sinks: dict[str, BulkQueue]) -> None:
    """Upstream's fetch loop, with the records of ``sinks``' topics put on their queue one
    chunk per partition and fetch (module docstring)."""
    from faust.transport.consumer import CONSUMER_FETCHING

    self = consumer
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(CONSUMER_FETCHING)
            records, active = await self._wait_next_records(1.0)
            generation = self.app.consumer_generation_id
            await self.sleep(0)  # upstream's: getmany may come back at once, in a loop
            if records is not None and not self.should_stop:
                if self.flow_active:
                    await _deliver(self, records, active, generation, sinks)
                else:  # as upstream's getmany: back to the committed offsets
                    try:
                        await self.perform_seek()
                    except Exception as ex:  # noqa: BLE001 - upstream logs and goes on
                        self.log.warning(f"exception performing seek when flow not active {ex}")
            unset_flag(CONSUMER_FETCHING)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(CONSUMER_FETCHING)


async def _deliver(self: Any, records: Any, active: Any, generation: int,
                   sinks: dict[str, BulkQueue]) -> None:
    """One fetch's records, partition by partition (upstream's checks, see :func:`drain`)."""
    app = self.app
    monitor = app.monitor
    for tp, batch in records.items():
        if not self.flow_active or app.consumer_generation_id != generation:
            return
        if not (active is None or tp in active or tp in self._buffered_partitions):
            continue
        if monitor is not None:
            monitor.track_tp_end_offset(tp, self.highwater(tp))
        sink = sinks.get(tp.topic)
        if sink is None:
            await _per_message(self, tp, batch, generation)
            continue
        r_offset = self._read_offset[tp]
        if r_offset is not None and batch and batch[0].offset < r_offset:
            batch = [r for r in batch if r.offset >= r_offset]  # read before: dropped
        if not batch:
            continue
        await _gaps(self, tp, r_offset, batch)
        await _commit_due(self)
        await self.wait_first(sink.put(Chunk(tp, batch, generation)),
                              self.suspend_flow.wait())
        if monitor is not None:  # Faust's livelock check reads it (stream_inbound_time)
            monitor.stream_inbound_time[tp] = time.monotonic()
        self._read_offset[tp] = batch[-1].offset


async def _gaps(self: Any, tp: Any, r_offset: int | None, batch: Sequence[Any]) -> None:
    """Offsets missing between the read offset and the batch, or inside it (a compacted
    topic, transaction markers): noted for the commit, as upstream does per message."""
    first, last = batch[0].offset, batch[-1].offset
    if (not r_offset or first - r_offset <= 1) and last - first + 1 == len(batch):
        return  # contiguous: the usual case
    if not self.app.topics.acks_enabled_for(tp.topic):
        return
    prev = r_offset
    for r in batch:
        if prev and r.offset - prev > 1:
            await self._add_gap(tp, prev + 1, r.offset)
        prev = r.offset


async def _commit_due(self: Any) -> None:
    commit_every = self._commit_every
    if commit_every is not None and self._n_acked >= commit_every:
        self._n_acked = 0
        await self.commit()


async def _per_message(self: Any, tp: Any, batch: Sequence[Any], generation: int) -> None:
    """Upstream's path for a record of a topic not attached: one callback each."""
    app = self.app
    since_yield = 0
    for record in batch:
        if not self.flow_active or app.consumer_generation_id != generation:
            return
        since_yield += 1
        if since_yield > YIELD_EVERY:
            await asyncio.sleep(0)
            since_yield = 0
        offset = record.offset
        r_offset = self._read_offset[tp]
        if r_offset is None or offset >= r_offset:
            if offset - (r_offset or 0) > 1 and r_offset \
                    and app.topics.acks_enabled_for(record.topic):
                await self._add_gap(tp, r_offset + 1, offset)
            await _commit_due(self)
            await self.wait_first(self.callback(self._to_message(tp, record)),
                                  self.suspend_flow.wait())
            self._read_offset[tp] = offset
