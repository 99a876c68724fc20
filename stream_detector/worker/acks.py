"""Flush, then ack: consumed messages are acknowledged only once the key states they changed
are in the changelog, and the agent never waits for a flush to complete.

Key states go to the changelog every ``state_flush_interval`` seconds, not every batch: one
changelog write per touched key per interval instead of one per record. The batches' events
are held unacknowledged until that flush, so a crash replays them against the state they were
applied to (at least once; anomaly events are deduplicable by ``event_id``)::

    batch 1   batch 2        batch 3                  batch 4   batch 5  (no batch: idle)
    process   process        process                  process   process   .
    hold      hold           hold, interval passed    hold      hold      held left over
    -         -              snapshot states 1-3 ---- complete: outputs of 1-3 delivered,
                                                      states written, then ack 1-3
                                                                          snapshot, ack 4-5

A flush has two steps. Its *start* (:meth:`WorkerRuntime.start_flush
<stream_detector.worker.runtime.WorkerRuntime.start_flush>`) runs in the agent's turn, with
:attr:`FlushThenAck.lock` held (a batch's states are half-applied until
:meth:`WorkerRuntime.process` returns, so the idle timer waits for it): it serialises the
touched states and takes the held events. Its *completion* runs beside the next batches: it
awaits the delivery of the snapshot's outputs, writes its states, and only then are its events
acked, in order. One flush is in flight at a time: while one completes, events are held for
the next, and a batch that finds the next flush due waits for it (:meth:`FlushThenAck.ready`:
back-pressure when the broker does not take the outputs); a completion that ends with the
next flush due starts it at once. A completion that fails acks
nothing and puts its events back in front of those held since (the next flush writes its
states again); when partitions are revoked the held events, and those of a flush in flight,
are dropped unacknowledged: their new owner replays them from the changelog state.

Before, the agent waited for the whole flush (the deliveries' broker acknowledgements, the
changelog writes and the acks): tens of ms, every interval, on 2 loaded cores (issue #13).

The class knows nothing of Faust beyond a stream's ``ack``; the flush is injected (the worker
passes :meth:`WorkerRuntime.start_flush`), and so is the clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

__all__ = ["AckingStream", "FlushThenAck"]

log = logging.getLogger(__name__)

ACK_SLICE = 256  # acks between yields to the loop: a flush's thousands of acks (5,000
# records/s, one a message, 250 ms) held the loop for ~10-20 ms on 2 loaded cores


class AckingStream(Protocol):
    """What is needed of a Faust stream: acknowledging one consumed event."""

    async def ack(self, event: Any) -> Any: ...


class FlushThenAck:
    """Hold consumed events until the key states are flushed, then acknowledge them.

    Parameters
    ----------
    start_flush
        Snapshots every touched key state and returns an awaitable that completes the
        flush (delivered outputs, written states); its errors leave the events held.
    interval
        Seconds between flushes while batches keep coming (``state_flush_interval``).
    clock
        Monotonic seconds; injected so tests control time.
    """

    def __init__(
        self, start_flush: Callable[[], Awaitable[Awaitable[Any]]], interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._start = start_flush
        self.interval = interval
        self._clock = clock
        self._held: list[Any] = []
        self._stream: AckingStream | None = None
        self._last_flush = self._flush_started = clock()
        self._completing: asyncio.Task[None] | None = None
        self._next: asyncio.Future[None] | None = None  # a flush started by a completion
        self._generation = 0  # moves on at every drop: a completion in flight acks nothing
        self.lock = asyncio.Lock()  # held by the agent while a batch is processed

    @property
    def held(self) -> int:
        """How many events wait for the next flush (not those of a flush in flight)."""
        return len(self._held)

    @property
    def in_flight(self) -> bool:
        """Whether a flush is completing."""
        return self._completing is not None

    def waiting_seconds(self) -> float:
        """Seconds the flush in flight has waited for its outputs' delivery and state
        writes (0 when none is in flight). Minutes mean nothing is acked or consumed: an
        output or changelog topic that is gone, a broker refusing the writes."""
        return self._clock() - self._flush_started if self._completing is not None else 0.0

    def attach(self, stream: AckingStream) -> None:
        """The stream whose events are held (the agent's, once it runs)."""
        self._stream = stream

    async def ready(self) -> None:
        """Before a batch: when the next flush is already due while one is still in flight
        (its outputs not delivered within an interval: a broker refusing them), wait for
        it. Back-pressure, as when the agent awaited every flush: the held events stay
        within about two intervals' worth, and nothing more is consumed meanwhile."""
        while self._completing is not None and self._due():  # not the flush it may start:
            await asyncio.wait([self._completing])  # that one waits for this batch's lock

    async def processed(self, events: Sequence[Any]) -> None:
        """Hold a processed batch's events; start a flush of everything held once
        ``interval`` has passed since the last one (and none is in flight). Call it with
        :attr:`lock` held."""
        self._held.extend(events)
        if self._due() and self._completing is None:
            await self._begin()

    async def flush_idle(self) -> None:
        """Start a flush of what is held, whatever the interval (the idle timer's call);
        waits for a batch in progress to finish first."""
        if self._stream is None or not self._held:
            return
        async with self.lock:
            if self._held and self._completing is None:
                await self._begin()

    async def settled(self) -> None:
        """Wait until the flush in flight, if any, has completed and acked (or failed),
        and the one it started when the next was already due."""
        while self._completing is not None or (self._next is not None and not self._next.done()):
            await asyncio.wait([f for f in (self._completing, self._next) if f is not None])

    def drop(self) -> None:
        """Forget the held events, and a flush in flight's, unacknowledged (partitions
        were revoked)."""
        self._generation += 1
        self._held.clear()

    def _due(self) -> bool:
        return self._clock() - self._last_flush >= self.interval

    async def _begin(self) -> None:
        if self._stream is None:
            raise RuntimeError("FlushThenAck.attach(stream) must come before events")
        completion = await self._start()
        events, self._held = self._held, []
        self._last_flush = self._flush_started = self._clock()
        self._completing = asyncio.ensure_future(
            self._complete(completion, events, self._stream, self._generation))

    async def _complete(self, completion: Awaitable[Any], events: list[Any],
                        stream: AckingStream, generation: int) -> None:
        try:
            try:
                await completion
            except Exception:  # noqa: BLE001 - held again: the next flush retries
                log.exception("completing a state flush failed; its %d events stay "
                              "unacknowledged until the next flush", len(events))
                if generation == self._generation:
                    self._held[:0] = events
                    self._last_flush -= self.interval  # due again: the next batch retries
                return
            for n, event in enumerate(events, 1):
                if generation != self._generation:
                    return  # revoked meanwhile: the new owner replays them
                await stream.ack(event)
                if n % ACK_SLICE == 0:
                    await asyncio.sleep(0)  # let a batch in between (in order all the same)
        finally:
            self._completing = None
        if self._held and self._due():  # overdue while this one completed: start it now
            self._next = asyncio.ensure_future(self.flush_idle())
