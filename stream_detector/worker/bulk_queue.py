"""The queue between the worker's bulk delivery (:mod:`.bulk_delivery`) and its scoring
agent: chunks of records, one per partition and fetch, bounded in records, taken in batches
of at most ``batch_max`` records. Pure asyncio: nothing of Faust or Kafka beyond a record's
``offset``."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["BulkQueue", "Chunk"]


class Chunk:
    """Consecutive records of one partition from one fetch (aiokafka ``ConsumerRecord``
    values, in offset order), fetched in consumer generation ``generation``.

    Once the agent takes it, it stands for its records among the messages Faust's consumer
    waits for before a rebalance or a stop commits (``acked``, ``refcount``: what Faust's
    ``Consumer.wait_empty`` reads of a message; see
    :class:`~stream_detector.worker.bulk_delivery.ChunkAcker`)."""

    __slots__ = ("tp", "records", "generation", "acked", "refcount", "__weakref__")

    def __init__(self, tp: Any, records: Sequence[Any], generation: int) -> None:
        self.tp, self.records, self.generation = tp, records, generation
        self.acked = False
        self.refcount = 1

    def __len__(self) -> int:
        return len(self.records)


class BulkQueue:
    """Chunks waiting for the agent, at most about ``maxsize`` records.

    Parameters
    ----------
    maxsize
        Records held before :meth:`put` waits (``consumer_buffer``); a chunk larger than
        that is still taken when the queue is empty.
    generation
        The current consumer generation (Faust's ``app.consumer_generation_id``): chunks of
        an older one are dropped, never handed out.
    active
        Whether Faust's flow is active (``app.flow_control.is_active``): a chunk put while
        it is suspended (a rebalance or a stop; its queues were just cleared) is dropped,
        also one whose put waited for room meanwhile. Its records are read again after the
        rebalance's seek, or by the partitions' next owner.
    clock
        Monotonic seconds, injected for tests.
    """

    def __init__(self, maxsize: int, generation: Callable[[], int] = lambda: 0,
                 active: Callable[[], bool] = lambda: True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize!r}")
        self.maxsize = maxsize
        self._generation = generation
        self._active = active
        self._clock = clock
        self._chunks: collections.deque[Chunk] = collections.deque()
        self._records = 0
        self._filled = asyncio.Event()  # set while records wait
        self._room = asyncio.Event()  # set while below maxsize
        self._room.set()

    def __len__(self) -> int:
        """Records waiting."""
        return self._records

    async def put(self, chunk: Chunk) -> bool:
        """Add ``chunk``; waits while the queue holds ``maxsize`` records or more. Returns
        False, the chunk dropped, when the flow is suspended (see ``active``)."""
        while self._records and self._records + len(chunk) > self.maxsize:
            self._room.clear()
            await self._room.wait()
        if not self._active():
            return False
        self._chunks.append(chunk)
        self._records += len(chunk)
        self._filled.set()
        return True

    def clear(self) -> None:
        """Drop every waiting chunk (Faust's flow control at a rebalance; a revoke)."""
        self._chunks.clear()
        self._records = 0
        self._filled.clear()
        self._room.set()

    async def take(self, max_records: int, within: float) -> list[Chunk]:
        """Chunks of up to ``max_records`` records in all, in arrival order.

        Waits for the first records however long it takes; then, while fewer than
        ``max_records`` are waiting, up to ``within`` seconds more for others. A chunk that
        would pass ``max_records`` is split (its rest stays first in line). Chunks of an
        older consumer generation are dropped.
        """
        while True:
            await self._filled.wait()
            if self._records < max_records and within > 0:
                deadline = self._clock() + within
                while self._records < max_records:
                    left = deadline - self._clock()
                    if left <= 0:
                        break
                    self._filled.clear()
                    try:
                        await asyncio.wait_for(self._filled.wait(), left)
                    except TimeoutError:
                        break
            out = self._pop(max_records)
            if out:
                return out

    def _pop(self, max_records: int) -> list[Chunk]:
        out: list[Chunk] = []
        room, now = max_records, self._generation()
        while self._chunks and room > 0:
            chunk = self._chunks.popleft()
            n = len(chunk)
            if n > room:
                rest = Chunk(chunk.tp, chunk.records[room:], chunk.generation)
                self._chunks.appendleft(rest)
                chunk = Chunk(chunk.tp, chunk.records[:room], chunk.generation)
                n = room
            self._records -= n
            if chunk.generation == now:
                out.append(chunk)
                room -= n
        if not self._chunks:
            self._filled.clear()
        if self._records < self.maxsize:
            self._room.set()
        return out
