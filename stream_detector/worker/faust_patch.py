"""Start-up patches of Faust: no skipped records after a rebalance, message delivery
without four asyncio tasks, and the agent's take wait without three.

No records skipped around a rebalance (:func:`install_rebalance_fixes`, always installed)
-----------------------------------------------------------------------------------------

Both holes below let aiokafka hand records over (its positions move past them) that Faust
then drops without seeking back.

1. Recovery order. 
After a rebalance Faust's ``Recovery.on_recovery_completed`` (faust-streaming 0.15.3) does::

    consumer.resume_partitions(stream partitions)
    await consumer.perform_seek()          # yields to the event loop
    app.flow_control.resume()              # clears every stream and channel queue

The consumer's flow is still active from reading the changelogs, so while the seek is
awaited the fetcher takes the just-resumed input partitions' records from aiokafka (their
positions move to the end) and puts them on the agents' queues; ``flow_control.resume()``
then empties those queues. Nothing seeks back: the records are skipped. A worker restarted
after SIGKILL (or a survivor taking over) then sat idle, ``Ready`` with consumer lag 0,
until new records came (issue 12: no event for 60 s and more), and when part of a fetch
survived, keys saw windows with holes (false alerts) and the offsets acked after the hole
were committed, losing the skipped records for good (faust-streaming issue #596).

:func:`install_rebalance_fixes` replaces the method with the same steps in a safe order:
queues are cleared first, then the seek runs while the input partitions are still paused,
and only then are they resumed; no await separates resuming them from resuming the flow.

2. An empty set of active partitions. Faust's fetcher passes its live set of active
(unpaused) partitions to aiokafka's ``Fetcher.fetched_records(partitions)``, which waits up
to a second for data. When recovery pauses the last active partitions during that wait, the
set is empty, and aiokafka reads an empty ``partitions`` as "no filter": it returns the
records of every partition, and Faust drops them because none is active. The patched
``AIOKafkaConsumerThread._fetch_records`` passes a view of the same live set that is never
empty in that sense (:class:`_Only`).

3. Partitions without a committed offset (defence in depth). The end of recovery seeks
every assigned partition to its committed offset, but aiokafka's ``seek_to_committed`` moves
only partitions whose committed offset is above 0: a stream partition that never had one
keeps its position, past any record already handed to Faust. Records of such a partition
that Faust takes and then drops within one assignment would be skipped. Drops at a revoke
are not: aiokafka starts every rebalance with a new ``Assignment`` whose positions come
from the committed offsets or, where there is none, from ``auto_offset_reset`` (Faust's
``earliest``: the log start), so they are fetched again (measured:
``test_survivor_replays_its_never_committed_partition_after_a_rebalance`` passes without
this part too). What is left is covered here: the patched fetch notes, per partition, the
first record aiokafka handed over (:func:`_first_fetched`); the patched end of recovery
seeks a stream partition without a committed offset back to it when its position is past
it (:func:`_seek_uncommitted`). The seek only ever moves a position back, so at worst it
replays records (duplicates share ``event_id``), never skips them; with ``latest`` (not
offered by the settings) it keeps records that a reset to the end would skip.

Fast delivery (:func:`install`, setting ``fast_delivery``)
----------------------------------------------------------

Faust's fetch loop (``faust.transport.consumer.Consumer._drain_messages``) hands every
message to the topic conductor with::

    await self.wait_first(callback(message), self.suspend_flow.wait())

and mode's ``Service.wait_first`` wraps each argument, plus the service's ``stopped`` and
``crashed`` events, in a task, then ``asyncio.wait``s for the first: four tasks created,
scheduled and cancelled per message, about a fifth of a worker's busy time at one record
per message (py-spy, issue #13). The callback almost never waits: it decodes the raw
bytes and puts the event on the stream's queue.

:func:`install` overrides ``wait_first`` on Faust's consumer for exactly that call: the
callback coroutine is first run inline; when it finishes without suspending (the usual
case) its result is returned with no task at all, as ``wait_first`` would have returned
it. When it does suspend (a full stream queue), the rest of it is raced against the flow
suspension exactly as upstream does. Every other ``wait_first`` call goes to upstream.

Take buffer wait (also :func:`install`)
---------------------------------------

Faust's ``Stream.noack_take`` (the worker's agent) waits for its buffer with
``await self.wait_for_stopped(buffer_full, timeout=within)`` once per batch; mode's
``Service.wait`` wraps the event's ``wait()``, the service's ``stopped`` and ``crashed``
events in three tasks and ``asyncio.wait``s them: 16% of the worker's busy main-thread time
at one record per message (py-spy, issue #13). For an ``asyncio.Event`` and a timeout up to
:data:`TAKE_WAIT_MAX_S` (``batch_wait``), the patched ``Stream.wait_for_stopped`` waits with
one future on the event and one timer (:func:`event_or_timeout`), no task; a stop is then
seen by the take loop's own ``should_stop`` check within that timeout instead of at once.
Every other wait goes to upstream.

All patches are tied to the upstream code they rely on: :data:`UPSTREAM_SHA256` holds the
sha256 of the source of each function they were written against. An install refuses (logs,
leaves Faust as it is) when its functions differ, and a unit test fails, so an upgrade of
faust-streaming or mode is reviewed against this module.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Coroutine, Generator
from typing import Any, Final

from stream_detector.worker import upstream_pins

__all__ = ["UPSTREAM_SHA256", "event_or_timeout", "install", "install_rebalance_fixes",
           "installed", "upstream_matches"]

log = logging.getLogger(__name__)

UPSTREAM_SHA256: Final = {
    "faust.transport.consumer.Consumer._drain_messages":
        "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417",
    "mode.services.Service.wait_first":
        "feade6a31f8a67897cf687c54c66f5f4535288050bbaac07249ce2063d36ae2e",
    "faust.tables.recovery.Recovery.on_recovery_completed":
        "6ef567acf072e46da3fccbccc6d662371f634f622c3d510972d5df81f70ae3ac",
    "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._fetch_records":
        "39a2c6c79fc1455a199629912b533458a720c64983bc957420a42feef6593baa",
    "aiokafka.consumer.fetcher.Fetcher.fetched_records":
        "be4348896b9b66afe048de954e2be91c546f4e96c94cb120d5764ec77ce8f19e",
    "mode.services.Service.wait_for_stopped":
        "569f0acaedaef794cc6163d2986e009dbfb220acbb239334bfa010b928d468a2",
    "faust.streams.Stream.noack_take":
        "f2cc2dbfc162d2006c94361c0ed68535c95484020849eb0d4210c1f52c4c430a",
    "asyncio.locks.Event.set":
        "850dc4b5d016ca6e9cc617491c8f122a80fd14a52703e090ccbdfef1c0649128",
}
_RECOVERY: Final = "faust.tables.recovery.Recovery.on_recovery_completed"
_FETCH: Final = "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._fetch_records"
_MODULE: Final = "stream_detector/worker/faust_patch.py"
_REBALANCE: Final = (_RECOVERY, _FETCH, "aiokafka.consumer.fetcher.Fetcher.fetched_records")
TAKE_WAIT_MAX_S: Final = 1.0  # longer take waits keep upstream's (it wakes on a stop)
_state: dict[str, Any] = {}


def _upstream_sources() -> dict[str, str]:
    from aiokafka.consumer.fetcher import Fetcher
    from faust.streams import Stream
    from faust.tables.recovery import Recovery
    from faust.transport.consumer import Consumer
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
    from mode.services import Service

    return {"mode.services.Service.wait_for_stopped":
            inspect.getsource(Service.wait_for_stopped),
            "faust.streams.Stream.noack_take": inspect.getsource(Stream.noack_take),
            "asyncio.locks.Event.set": inspect.getsource(asyncio.Event.set),
            "faust.transport.consumer.Consumer._drain_messages":
            inspect.getsource(Consumer._drain_messages),
            "mode.services.Service.wait_first": inspect.getsource(Service.wait_first),
            _RECOVERY: inspect.getsource(_state.get("recovery_upstream",
                                                    Recovery.on_recovery_completed)),
            _FETCH: inspect.getsource(_state.get("fetch_upstream",
                                                 AIOKafkaConsumerThread._fetch_records)),
            "aiokafka.consumer.fetcher.Fetcher.fetched_records":
            inspect.getsource(Fetcher.fetched_records)}


def upstream_matches() -> dict[str, bool]:
    """For each patched-against function, whether its source is the one reviewed."""
    return upstream_pins.matches(_upstream_sources(), UPSTREAM_SHA256)


def installed() -> bool:
    """Whether :func:`install` patched Faust's consumer in this process."""
    return "upstream" in _state


def install() -> bool:
    """Patch Faust's consumer (idempotent); False, with a warning, if upstream changed."""
    from faust.transport.consumer import Consumer

    if installed():
        return True
    found = upstream_matches()
    if upstream_pins.changed(found, [n for n in found if n not in _REBALANCE],
                             patch="faust fast delivery", module=_MODULE, logger=log):
        return False
    _state["upstream"] = upstream = Consumer.wait_first

    async def wait_first(self: Any, *coros: Any, timeout: Any = None) -> Any:
        if timeout is None and len(coros) == 2 and _is_flow_wait(self, coros[1]) \
                and asyncio.iscoroutine(coros[0]):
            return await _deliver(self, upstream, coros[0], coros[1])
        return await upstream(self, *coros, timeout=timeout)

    Consumer.wait_first = wait_first  # type: ignore[method-assign]
    _install_take_wait()
    return True


def _install_take_wait() -> None:
    """Faust's stream waits for its take buffer without mode's three tasks (see the module
    docstring, "Take buffer wait")."""
    from faust.streams import Stream

    upstream = Stream.wait_for_stopped
    _state["take_wait_upstream"] = upstream

    async def wait_for_stopped(self: Any, *coros: Any, timeout: Any = None) -> bool:
        if len(coros) == 1 and type(coros[0]) is asyncio.Event and timeout is not None \
                and 0 < timeout <= TAKE_WAIT_MAX_S:
            await event_or_timeout(coros[0], timeout)
            return bool(self.should_stop)
        return bool(await upstream(self, *coros, timeout=timeout))

    Stream.wait_for_stopped = wait_for_stopped  # type: ignore[method-assign]


async def event_or_timeout(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds passed; True if it was set.

    ``asyncio.Event.wait`` without a task: one future on the event's waiters (what
    ``Event.set`` resolves; :data:`UPSTREAM_SHA256` pins its source) and one timer."""
    if event.is_set():
        return True
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[Any] = loop.create_future()
    waiters: Any = event._waiters
    waiters.append(waiter)
    timer = loop.call_later(timeout, _time_out, waiter)
    try:
        return bool(await waiter)
    finally:
        timer.cancel()
        if waiter in waiters:
            waiters.remove(waiter)


def _time_out(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_result(False)


def install_rebalance_fixes() -> bool:
    """Patch Faust's end of recovery and its fetch (idempotent); False, with an error, if
    upstream changed.

    See the module docstring: without them, records fetched around a rebalance can be
    dropped after aiokafka's positions moved past them, and are skipped.
    """
    from faust.tables.recovery import Recovery
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    if "recovery_upstream" in _state:
        return True
    if upstream_pins.changed(upstream_matches(), _REBALANCE, patch="faust rebalance fixes",
                             consequence="records may be skipped after a rebalance",
                             module=_MODULE, logger=log, level=logging.ERROR):
        return False
    _state["recovery_upstream"] = Recovery.on_recovery_completed
    _state["fetch_upstream"] = AIOKafkaConsumerThread._fetch_records
    fetch: Any = AIOKafkaConsumerThread._fetch_records
    Recovery.on_recovery_completed = _on_recovery_completed  # type: ignore[method-assign]

    async def _fetch_records(self: Any, consumer: Any, active_partitions: Any,
                             timeout: float | None = None,
                             max_records: int | None = None) -> Any:
        only = None if active_partitions is None else _Only(active_partitions)
        records = await fetch(self, consumer, only, timeout=timeout, max_records=max_records)
        if records:
            first = _first_fetched(self.consumer)
            for tp, batch in records.items():
                if batch and tp not in first:
                    first[tp] = batch[0].offset
        return records

    AIOKafkaConsumerThread._fetch_records = _fetch_records  # type: ignore[method-assign]
    return True


class _Only:
    """Membership in a live set of partitions, never falsy: for aiokafka an empty
    ``partitions`` means "every partition", here it means none."""

    __slots__ = ("tps",)

    def __init__(self, tps: Any) -> None:
        self.tps = tps

    def __contains__(self, tp: object) -> bool:
        return tp in self.tps

    def __bool__(self) -> bool:
        return True


async def _on_recovery_completed(self: Any, generation_id: int = 0) -> None:
    """Upstream's ``Recovery.on_recovery_completed``, reordered (see the module docstring)."""
    consumer, app = self.app.consumer, self.app
    self.log.info("Restore complete!")
    await app.on_rebalance_complete.send()
    self._set_recovery_ended()
    callbacks = [asyncio.ensure_future(table.on_recovery_completed(
        self.actives_for_table[table], self.standbys_for_table[table]))
        for table in self.tables.values()]
    if callbacks:
        await asyncio.wait(callbacks)
    assignment = consumer.assignment()
    if app.consumer_generation_id != generation_id:
        self.log.warning("Recovery rebalancing again app id %s param %s",
                         app.consumer_generation_id, generation_id)
        return
    app.flow_control.resume()  # clears the queues: nothing of the stream partitions yet
    streams = {tp for tp in assignment if not self._is_changelog_tp(tp)}
    if assignment:  # stream partitions still paused: the fetcher cannot take their records
        self.log.info("Seek stream partitions to committed offsets.")
        await self._wait(consumer.perform_seek(), timeout=app.conf.broker_request_timeout)
        await self._wait(_seek_uncommitted(consumer, streams, self.log),
                         timeout=app.conf.broker_request_timeout)
    consumer.resume_partitions(streams)
    self.completed.set()
    consumer.resume_flow()
    await app._fetcher.maybe_start()
    self.tables.on_actives_ready()
    if not app.assignor.assigned_standbys():
        self.tables.on_standbys_ready()
    app.on_rebalance_end()
    self.log.info("Worker ready")


def _first_fetched(consumer: Any) -> dict[Any, int]:
    """Per partition (Faust's ``TP`` or aiokafka's ``TopicPartition``: equal tuples), the
    offset of the first record aiokafka handed to ``consumer`` (Faust's consumer; written in
    its fetch thread, read at the end of recovery)."""
    first: dict[Any, int] = vars(consumer).setdefault("_stream_detector_first_fetched", {})
    return first


async def _seek_uncommitted(consumer: Any, streams: set[Any], log: Any) -> None:
    """Seek each of ``streams`` without a committed offset back to the first record the
    consumer fetched of it, if its position is past that record (module docstring, hole 3).

    Called after ``perform_seek``: Faust's ``_committed_offset`` then holds the group's
    committed offsets of the assignment, None where there is none (or 0: aiokafka did not
    seek those either). Partitions never fetched, or not past their first fetched record
    (aiokafka's reset at the rebalance), keep their position: no seek moves one forward.
    """
    first = _first_fetched(consumer)
    targets: dict[Any, int] = {}
    for tp in sorted(streams):
        if consumer._committed_offset.get(tp) is not None:
            first.pop(tp, None)  # committed: the seek moved it; forget the old start
        elif tp in first:
            position = await consumer.position(tp)
            if position is not None and position > first[tp]:
                targets[tp] = first[tp]
    if targets:
        log.info("Seek stream partitions without a committed offset to their first "
                 "fetched record: %s", sorted(targets.items()))
        await consumer.seek_wait(targets)


def _is_flow_wait(consumer: Any, coro: Any) -> bool:
    """``coro`` is ``consumer.suspend_flow.wait()``, not yet started."""
    frame = getattr(coro, "cr_frame", None)
    return (getattr(coro, "cr_code", None) is asyncio.Event.wait.__code__
            and frame is not None and frame.f_locals.get("self") is consumer.suspend_flow)


async def _deliver(consumer: Any, upstream: Any, callback: Coroutine[Any, Any, Any],
                   flow_wait: Coroutine[Any, Any, Any]) -> Any:
    from mode.services import WaitResults

    try:
        yielded = callback.send(None)
    except StopIteration as done:  # finished without waiting: no task needed
        flow_wait.close()
        return WaitResults([callback], [done.value], False)
    except BaseException:
        flow_wait.close()
        raise
    # it waits (a full queue): race the rest of it against the flow suspension, as upstream
    return await upstream(consumer, _Resumed(callback, yielded), flow_wait)


class _Resumed:
    """An awaitable that goes on running a coroutine already started by hand."""

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self.coro, self.yielded = coro, yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self.coro, self.yielded
        while True:
            try:
                value = yield yielded
            except BaseException as exc:  # e.g. cancellation: into the coroutine
                try:
                    yielded = coro.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    yielded = coro.send(value)
                except StopIteration as done:
                    return done.value
