"""Flush, then ack: consumed messages are acknowledged only once the key states they changed
are in the changelog.

Key states go to the changelog every ``state_flush_interval`` seconds, not every batch: one
changelog write per touched key per interval instead of one per record. The batches' events
are held unacknowledged until that flush, so a crash replays them against the state they were
applied to (at least once; anomaly events are deduplicable by ``event_id``)::

    batch 1   batch 2        batch 3                 (no batch: idle timer)
    process   process        process                  .
    hold      hold           hold, interval passed    held events left over
    -         -              flush states, ack 1-3    flush states, ack them

Timeline of one interval: the agent processes batches and holds their events; the first
batch that finds the interval passed flushes and acks everything held; the idle timer does
the same when no batch comes. A lock keeps the timer's flush out of a batch in progress
(its states are half-applied until :meth:`WorkerRuntime.process` returns). When partitions
are revoked the held events are dropped unacknowledged: their new owner replays them from
the changelog state.

The class knows nothing of Faust beyond a stream's ``ack``; the flush is injected (the
worker passes :meth:`~stream_detector.worker.runtime.WorkerRuntime.flush`), and so is the
clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

__all__ = ["AckingStream", "FlushThenAck"]


class AckingStream(Protocol):
    """What is needed of a Faust stream: acknowledging one consumed event."""

    async def ack(self, event: Any) -> Any: ...


class FlushThenAck:
    """Hold consumed events until the key states are flushed, then acknowledge them.

    Parameters
    ----------
    flush
        Persists every touched key state (awaited before any ack); its errors propagate and
        leave the events held.
    interval
        Seconds between flushes while batches keep coming (``state_flush_interval``).
    clock
        Monotonic seconds; injected so tests control time.
    """

    def __init__(
        self, flush: Callable[[], Awaitable[Any]], interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._flush = flush
        self.interval = interval
        self._clock = clock
        self._held: list[Any] = []
        self._stream: AckingStream | None = None
        self._last_flush = clock()
        self.lock = asyncio.Lock()  # held by the agent while a batch is processed

    @property
    def held(self) -> int:
        """How many events wait for the next flush."""
        return len(self._held)

    def attach(self, stream: AckingStream) -> None:
        """The stream whose events are held (the agent's, once it runs)."""
        self._stream = stream

    async def processed(self, events: Sequence[Any]) -> None:
        """Hold a processed batch's events; flush and ack everything held once ``interval``
        has passed since the last flush. Call it with :attr:`lock` held."""
        self._held.extend(events)
        if self._clock() - self._last_flush >= self.interval:
            await self._flush_and_ack()

    async def flush_idle(self) -> None:
        """Flush and ack what is held, whatever the interval (the idle timer's call); waits
        for a batch in progress to finish first."""
        if self._stream is None or not self._held:
            return
        async with self.lock:
            if self._held:
                await self._flush_and_ack()

    def drop(self) -> None:
        """Forget the held events unacknowledged (partitions were revoked)."""
        self._held.clear()

    async def _flush_and_ack(self) -> None:
        if self._stream is None:
            raise RuntimeError("FlushThenAck.attach(stream) must come before events")
        await self._flush()
        for event in self._held:
            await self._stream.ack(event)
        self._held.clear()
        self._last_flush = self._clock()
