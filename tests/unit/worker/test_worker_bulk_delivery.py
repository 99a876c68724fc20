"""Bulk delivery: the patch pinned to upstream, acks in chunks that leave Faust's consumer
exactly as its own per-message acks do, and taken chunks that Faust's rebalance and stop
wait for."""

from __future__ import annotations

import asyncio
import gc
import inspect
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.types import TP
from faust.types import Message as FaustMessage

from stream_detector.worker import bulk_delivery, faust_patch
from stream_detector.worker.bulk_delivery import ack_chunk
from stream_detector.worker.bulk_queue import Chunk
from stream_detector.worker.messages import messages_of

TP0 = TP("in", 0)


def _chunk(first: int, n: int, generation: int = 0, tp: TP = TP0) -> Chunk:
    return Chunk(tp, [SimpleNamespace(offset=o) for o in range(first, first + n)], generation)


def test_upstream_is_the_code_the_patch_was_reviewed_against() -> None:
    # Fails when faust-streaming changes a function bulk delivery follows: review
    # stream_detector/worker/bulk_delivery.py against the new code, then update the hashes.
    assert bulk_delivery.upstream_matches() == dict.fromkeys(bulk_delivery.UPSTREAM_SHA256, True)


def test_installed_the_fetch_loop_still_reads_as_upstream_for_every_pin() -> None:
    from faust.transport.consumer import Consumer

    assert bulk_delivery.install() and bulk_delivery.install()  # idempotent
    assert bulk_delivery.installed()
    assert "sinks" in inspect.getsource(Consumer._drain_messages.__code__)  # patched
    # both patch modules pin upstream's loop: neither reads the other's patch as a change
    assert faust_patch.upstream_matches() == dict.fromkeys(faust_patch.UPSTREAM_SHA256, True)
    assert bulk_delivery.upstream_matches() == dict.fromkeys(bulk_delivery.UPSTREAM_SHA256, True)


@pytest.fixture(autouse=True)
def _collect_apps() -> Iterator[None]:
    # Faust apps made here have finalizers: collected later, during an ast.parse of another
    # module, they trip CPython 3.11's "AST constructor recursion depth mismatch"
    yield
    gc.collect()


def _consumer() -> Any:
    app = faust.App("bulk-acks", broker="kafka://127.0.0.1:1", store="memory://")
    app.topics.add(app.topic("in", value_serializer="raw"))
    app.topics._acking_topics.add("in")  # what subscribing indexes for an acking channel
    return app.consumer


@pytest.mark.parametrize("committed", [None, 5])
def test_acking_a_chunk_leaves_the_consumer_as_acking_each_message_does(
    committed: int | None,
) -> None:
    offsets = [3, 5, 6, 7, 9, 10, 11]  # below the committed offset; a gap at 8
    bulk, each = _consumer(), _consumer()
    for c in (bulk, each):
        c._committed_offset[TP0] = committed
    first = Chunk(TP0, [SimpleNamespace(offset=o) for o in offsets[:4]], 0)
    second = Chunk(TP0, [SimpleNamespace(offset=o) for o in offsets[3:]], 0)  # 7 again
    new = ack_chunk(bulk, first) + ack_chunk(bulk, second)
    for o in offsets:
        each.ack(FaustMessage("in", 0, o, 0.0, 0, None, b"", b"", None, tp=TP0))
    assert new == each._n_acked == bulk._n_acked
    assert sorted(bulk._acked[TP0]) == sorted(each._acked[TP0])
    assert bulk._acked_index[TP0] == each._acked_index[TP0]
    # the offset Faust's commit would take
    # 3 alone below the gap at 4 without a committed offset; 5-7 above the committed 5
    assert bulk._new_offset(TP0) == each._new_offset(TP0) == (4 if committed is None else 8)


def test_a_topic_without_acks_is_not_acked() -> None:
    consumer = _consumer()
    chunk = _chunk(0, 3, tp=TP("other", 0))
    assert ack_chunk(consumer, chunk) == 0 and not consumer._acked[TP("other", 0)]


def test_messages_of_records_give_faust_s_message_fields() -> None:
    recs = [SimpleNamespace(value=b"v", topic="in", partition=2, offset=7, timestamp=1500,
                            key=b"k", headers=[("h", b"x")]),
            SimpleNamespace(value=None, topic="in", partition=2, offset=8, timestamp=None,
                            key=None, headers=())]
    a, b = messages_of(recs)
    assert (a.value, a.topic, a.partition, a.offset, a.timestamp, a.key, a.headers) == (
        b"v", "in", 2, 7, 1.5, b"k", [("h", b"x")])
    assert b.timestamp is None and b.value is None and b.ident == ("in", 2, 8)


def test_taken_chunks_hold_faust_s_wait_for_acks_until_acked_or_dropped() -> None:
    consumer = _consumer()
    acker = bulk_delivery.ChunkAcker(consumer)
    a, b = _chunk(0, 3), _chunk(3, 2)
    acker.track([a, b])
    consumer._clean_unacked_messages()  # what wait_empty does between its waits
    assert set(consumer._unacked_messages) == {a, b}  # a rebalance or stop waits for them
    asyncio.run(acker.ack(a))
    consumer._clean_unacked_messages()
    assert set(consumer._unacked_messages) == {b} and a.acked and not b.acked
    acker.drop()  # revoked: b's records are its new owner's
    assert not consumer._unacked_messages and not b.acked
    assert sorted(consumer._acked[TP0]) == [0, 1, 2]


def test_faust_s_wait_for_acks_returns_once_the_flush_acks_the_taken_chunks() -> None:
    chunk = _chunk(0, 4)

    async def main() -> tuple[bool, float]:
        consumer = _consumer()  # made in the loop it waits in
        acker = bulk_delivery.ChunkAcker(consumer)
        acker.track([chunk])
        commits: list[int] = []

        async def commit(*a: Any, **k: Any) -> bool:
            commits.append(1)
            return False
        consumer.commit = commit  # no broker here: wait_empty's commit calls, counted
        consumer.commit_and_end_transactions = commit

        async def flush_later() -> None:  # the worker's idle flush, after its interval
            await asyncio.sleep(0.05)
            await acker.ack(chunk)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        flusher = asyncio.ensure_future(flush_later())
        await asyncio.wait_for(consumer.wait_empty(), 10)
        await flusher
        return bool(commits), loop.time() - t0

    committed, took = asyncio.run(main())
    assert committed and 0.04 < took < 5.0 and chunk.acked


def test_dropping_some_chunks_stops_waiting_for_those_only() -> None:
    consumer = _consumer()
    acker = bulk_delivery.ChunkAcker(consumer)
    a, b = _chunk(0, 3), _chunk(3, 2)
    acker.track([a, b])
    acker.drop([a])  # its batch failed: a rebalance must not wait for its ack forever
    assert set(consumer._unacked_messages) == {b}
    acker.drop()
    assert not consumer._unacked_messages
