"""The queue between bulk delivery and the agent: batches of at most max records, a wait
for more of at most ``within``, bounded puts, and nothing handed out of an older consumer
generation or put while Faust's flow is suspended."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from stream_detector.worker.bulk_queue import BulkQueue, Chunk

TP0 = ("in", 0)


def _chunk(first: int, n: int, generation: int = 0, tp: Any = TP0) -> Chunk:
    return Chunk(tp, [SimpleNamespace(offset=o) for o in range(first, first + n)], generation)


def _offsets(chunks: list[Chunk]) -> list[int]:
    return [r.offset for c in chunks for r in c.records]


def test_take_gives_at_most_max_records_splitting_a_chunk_and_keeping_its_rest_first() -> None:
    async def main() -> list[list[int]]:
        q = BulkQueue(100)
        await q.put(_chunk(0, 5))
        await q.put(_chunk(5, 5, tp=("in", 1)))
        got = [_offsets(await q.take(7, 0.0))]
        got.append(_offsets(await q.take(7, 0.0)))
        got.append([len(q)])
        return got

    first, rest, left = asyncio.run(main())
    assert first == [0, 1, 2, 3, 4, 5, 6] and rest == [7, 8, 9] and left == [0]


def test_take_waits_within_for_more_records_and_no_longer() -> None:
    async def main() -> tuple[list[int], float, list[int]]:
        q = BulkQueue(100)
        await q.put(_chunk(0, 2))

        async def later() -> None:
            await asyncio.sleep(0.02)
            await q.put(_chunk(2, 3))

        feeder = asyncio.ensure_future(later())
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        got = _offsets(await q.take(1000, 0.2))  # 0.2 s: more comes at 0.02 s, then none
        took = loop.time() - t0
        await feeder
        full = BulkQueue(100)
        await full.put(_chunk(0, 10))
        t1 = loop.time()
        at_max = _offsets(await full.take(10, 5.0))  # max reached: no wait at all
        assert loop.time() - t1 < 1.0
        return got, took, at_max

    got, took, at_max = asyncio.run(main())
    assert got == [0, 1, 2, 3, 4] and 0.15 < took < 1.0
    assert at_max == list(range(10))


def test_take_waits_for_the_first_records_however_long() -> None:
    async def main() -> tuple[bool, list[int]]:
        q = BulkQueue(100)
        taker = asyncio.ensure_future(q.take(10, 0.0))
        await asyncio.sleep(0.05)
        waiting = not taker.done()
        await q.put(_chunk(3, 2))
        return waiting, _offsets(await taker)

    assert asyncio.run(main()) == (True, [3, 4])


def test_chunks_of_an_older_consumer_generation_are_never_handed_out() -> None:
    generation = [1]

    async def main() -> list[int]:
        q = BulkQueue(100, lambda: generation[0])
        await q.put(_chunk(0, 3, generation=1))
        generation[0] = 2  # a rebalance: the chunk fetched before it is its new owner's
        await q.put(_chunk(10, 2, generation=2))
        return _offsets(await q.take(100, 0.0))

    assert asyncio.run(main()) == [10, 11]


def test_put_waits_while_full_until_the_agent_takes_and_clear_frees_it() -> None:
    async def main() -> list[Any]:
        q = BulkQueue(4)
        await q.put(_chunk(0, 3))
        blocked = asyncio.ensure_future(q.put(_chunk(3, 3)))
        await asyncio.sleep(0.01)
        seen: list[Any] = [blocked.done()]
        seen.append(_offsets(await q.take(2, 0.0)))  # 1 left: 1 + 3 fits
        await asyncio.wait_for(blocked, 1.0)
        seen.append(len(q))
        other = asyncio.ensure_future(q.put(_chunk(6, 4)))  # 4 + 4 > 4: waits
        await asyncio.sleep(0.01)
        seen.append(other.done())
        q.clear()  # Faust's flow control at a rebalance
        await asyncio.wait_for(other, 1.0)
        seen.append(_offsets(await q.take(100, 0.0)))
        big = BulkQueue(4)
        await asyncio.wait_for(big.put(_chunk(0, 9)), 1.0)  # larger than maxsize, queue empty
        seen.append(len(big))
        return seen

    assert asyncio.run(main()) == [False, [0, 1], 4, False, [6, 7, 8, 9], 9]
    with pytest.raises(ValueError, match="at least 1"):
        BulkQueue(0)


def test_a_put_that_waited_for_room_while_the_flow_was_suspended_drops_its_chunk() -> None:
    flow = [True]

    async def main() -> list[Any]:
        q = BulkQueue(4, active=lambda: flow[0])
        await q.put(_chunk(0, 4))
        waiting = asyncio.ensure_future(q.put(_chunk(4, 4)))  # full: waits for room
        await asyncio.sleep(0.01)
        flow[0] = False  # a stop or rebalance: Faust suspends the flow, clears the queues
        q.clear()
        put = await asyncio.wait_for(waiting, 1.0)
        later = await q.put(_chunk(8, 1))
        return [put, later, len(q)]

    assert asyncio.run(main()) == [False, False, 0]
