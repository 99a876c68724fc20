"""FlushThenAck: events are acked only after the key states are flushed, in order; the
agent is not held while a flush completes; failures leave the events held; a revoke drops
them, a flush in flight's too; the idle flush waits for a batch in progress."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable
from typing import Any

import pytest

from stream_detector.worker.acks import FlushThenAck


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Journal:
    """The flush and the stream in one, writing what happens, in order, to ``steps``.

    A flush's start writes ``snapshot``; its completion waits for :attr:`gate` when one
    is set (the deliveries not yet acknowledged), then writes ``flush`` (or fails)."""

    def __init__(self, fail_flush: bool = False) -> None:
        self.steps: list[tuple[str, Any]] = []
        self.fail_flush = fail_flush
        self.gate: asyncio.Event | None = None

    async def start_flush(self) -> Awaitable[int]:
        self.steps.append(("snapshot", None))
        return self._complete()

    async def _complete(self) -> int:
        await asyncio.sleep(0)  # a real completion yields to the loop
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_flush:
            self.steps.append(("flush failed", None))
            raise ConnectionError("changelog unreachable")
        self.steps.append(("flush", None))
        return 1

    async def ack(self, event: Any) -> None:
        self.steps.append(("ack", event))


def acks_for(journal: Journal, clock: Clock, interval: float = 5.0) -> FlushThenAck:
    acks = FlushThenAck(journal.start_flush, interval, clock=clock)
    acks.attach(journal)
    return acks


def test_events_are_held_until_the_interval_then_acked_after_the_flush() -> None:
    async def run() -> None:
        journal, clock = Journal(), Clock()
        acks = acks_for(journal, clock)
        await acks.processed(["e1", "e2"])
        clock.now = 4.9
        await acks.processed(["e3"])
        assert journal.steps == [] and acks.held == 3  # interval not passed: nothing yet
        clock.now = 5.0
        await acks.processed(["e4"])
        assert journal.steps == [("snapshot", None)]  # the agent goes on: not completed yet
        assert acks.held == 0 and acks.in_flight
        await acks.settled()
        assert journal.steps == [("snapshot", None), ("flush", None), ("ack", "e1"),
                                 ("ack", "e2"), ("ack", "e3"), ("ack", "e4")]
        assert not acks.in_flight
        clock.now = 9.0  # the interval counts from the last flush, not from the start
        await acks.processed(["e5"])
        assert acks.held == 1 and journal.steps[-1] == ("ack", "e4")

    asyncio.run(run())


def test_batches_go_on_while_a_flush_completes_and_wait_for_the_next_one() -> None:
    async def run() -> None:
        journal, clock = Journal(), Clock()
        journal.gate = asyncio.Event()  # the snapshot's deliveries are not acknowledged yet
        acks = acks_for(journal, clock)
        clock.now = 5.0
        await acks.processed(["e1"])
        for t, event in ((6.0, "e2"), (11.0, "e3")):  # the interval passes again meanwhile
            clock.now = t
            await asyncio.wait_for(acks.processed([event]), 1)  # never waits for the flush
        await acks.flush_idle()  # nor does the idle timer start a second one
        assert journal.steps == [("snapshot", None)] and acks.held == 2
        journal.gate.set()
        await acks.settled()  # the next was due: it started when the first completed
        assert journal.steps[1:] == [("flush", None), ("ack", "e1"), ("snapshot", None),
                                     ("flush", None), ("ack", "e2"), ("ack", "e3")]
        clock.now = 15.0
        await acks.processed(["e4"])  # not due (the last flush started at 11): held
        await acks.settled()
        assert journal.steps[-1] == ("ack", "e3") and acks.held == 1

    asyncio.run(run())


def test_a_failed_flush_acks_nothing_and_keeps_the_events_for_the_next_one() -> None:
    async def run() -> None:
        journal, clock = Journal(fail_flush=True), Clock()
        journal.gate = asyncio.Event()
        acks = acks_for(journal, clock)
        clock.now = 5.0
        await acks.processed(["e1", "e2"])
        await acks.processed(["e3"])  # processed while the flush completes
        journal.gate.set()
        await acks.settled()
        assert journal.steps == [("snapshot", None), ("flush failed", None)]
        assert acks.held == 3  # held again, in order, before the later ones
        journal.fail_flush = False
        await acks.processed(["e4"])  # still due: the failed flush did not count
        await acks.settled()
        assert journal.steps[2:] == [("snapshot", None), ("flush", None), ("ack", "e1"),
                                     ("ack", "e2"), ("ack", "e3"), ("ack", "e4")]

    asyncio.run(run())


def test_revoked_partitions_drop_the_held_events_unacked() -> None:
    async def run() -> None:
        journal, clock = Journal(), Clock()
        acks = acks_for(journal, clock)
        await acks.processed(["old1", "old2"])
        acks.drop()
        clock.now = 5.0
        await acks.processed(["new"])
        await acks.settled()
        assert journal.steps == [("snapshot", None), ("flush", None), ("ack", "new")]

    asyncio.run(run())


def test_a_revoke_while_a_flush_completes_drops_its_events_unacked() -> None:
    async def run() -> None:
        for fail in (False, True):  # nor are a failed flush's events held again
            journal, clock = Journal(fail_flush=fail), Clock()
            journal.gate = asyncio.Event()
            acks = acks_for(journal, clock)
            clock.now = 5.0
            await acks.processed(["old1", "old2"])
            acks.drop()
            journal.gate.set()
            await acks.settled()
            assert [s for s, _ in journal.steps] == [
                "snapshot", "flush failed" if fail else "flush"]
            assert acks.held == 0

    asyncio.run(run())


def test_the_idle_flush_acks_what_is_held_whatever_the_interval() -> None:
    async def run() -> None:
        journal, clock = Journal(), Clock()
        acks = acks_for(journal, clock, interval=60.0)
        await acks.flush_idle()
        assert journal.steps == []  # nothing held: no flush at all
        await acks.processed(["e1"])
        await acks.flush_idle()
        await acks.settled()
        assert journal.steps == [("snapshot", None), ("flush", None), ("ack", "e1")]

    asyncio.run(run())


def test_the_idle_flush_does_nothing_before_the_agent_attached_its_stream() -> None:
    async def run() -> None:
        journal = Journal()
        acks = FlushThenAck(journal.start_flush, 0.0, clock=Clock())
        await acks.flush_idle()
        assert journal.steps == []
        with pytest.raises(RuntimeError, match="attach"):
            await acks.processed(["e1"])  # due at once, but no stream to ack on
        assert journal.steps == []  # and the states were not flushed either

    asyncio.run(run())


def test_the_idle_flush_waits_for_the_batch_in_progress() -> None:
    """A batch's states are half-applied until it is processed: the timer's snapshot must
    not be taken in between, and the batch's events are acked with it afterwards."""
    async def run() -> None:
        journal, clock = Journal(), Clock()
        acks = acks_for(journal, clock, interval=60.0)
        await acks.processed(["e1"])
        release = asyncio.Event()

        async def batch() -> None:
            async with acks.lock:
                journal.steps.append(("batch starts", None))
                await release.wait()
                await acks.processed(["e2"])
                journal.steps.append(("batch done", None))

        running = asyncio.create_task(batch())
        await asyncio.sleep(0)
        idle = asyncio.create_task(acks.flush_idle())
        for _ in range(5):
            await asyncio.sleep(0)
        assert journal.steps == [("batch starts", None)]  # the idle flush is waiting
        release.set()
        await asyncio.gather(running, idle)
        await acks.settled()
        assert journal.steps == [("batch starts", None), ("batch done", None),
                                 ("snapshot", None), ("flush", None), ("ack", "e1"),
                                 ("ack", "e2")]

    asyncio.run(run())


class FaustOffsets:
    """Faust's commit bookkeeping of one consumer, run by its own ``Consumer._new_offset``:
    what a commit at this moment would write per partition (faust-streaming 0.15.3)."""

    def __init__(self) -> None:
        from collections import defaultdict

        from intervaltree import IntervalTree

        self._acked: dict[str, list[int]] = defaultdict(list)
        self._acked_index: dict[str, set[int]] = defaultdict(set)
        self._gap: dict[str, Any] = defaultdict(IntervalTree)
        self._committed_offset: dict[str, int | None] = defaultdict(lambda: None)

    def ack(self, tp: str, offset: int) -> None:
        self._acked[tp].append(offset)
        self._acked_index[tp].add(offset)

    def commit(self, tp: str) -> int | None:
        from faust.transport.consumer import Consumer

        offset: int | None = Consumer._new_offset(self, tp)  # type: ignore[arg-type]
        if offset is not None:
            self._committed_offset[tp] = offset
        return self._committed_offset[tp]


def test_faust_commits_past_an_in_flight_offset_when_acks_come_out_of_order() -> None:
    # faust-streaming #606 (PR #707 open): the first consecutive run of acked offsets is
    # committed; with no commit yet, or with the run starting one past the committed offset,
    # an offset still in flight before it is stepped over. The oracle of the next test.
    faust = FaustOffsets()
    for offset in (1, 2, 3):  # 0 is still being processed (e.g. agent concurrency 2)
        faust.ack("in-0", offset)
    assert faust.commit("in-0") == 4  # 0 would never be processed after a crash
    faust = FaustOffsets()
    faust._committed_offset["in-0"] = 10
    faust.ack("in-0", 11)  # 10 in flight: 11 - 10 == 1 passes the head-gap guard
    assert faust.commit("in-0") == 12


def test_the_worker_acks_in_offset_order_so_faust_never_commits_past_an_in_flight_event(
) -> None:
    """#606 needs an offset acked while an earlier one of its partition is still in flight.
    The worker's agent (one, concurrency 1) takes each partition's events in offset order,
    and FlushThenAck acks what it holds in that order, a whole prefix at a time, one flush
    in flight at a time (batches go on while it completes); the idle flush waits for a
    batch in progress. Faust's commit, run after every single ack (its
    timer may fire at any await), never passes an event that is not acked."""
    async def run() -> None:
        faust, clock = FaustOffsets(), Clock()
        events = [(tp, offset) for offset in range(40) for tp in ("in-0", "in-1")]
        acked: set[tuple[str, int]] = set()

        class Stream:
            async def ack(self, event: tuple[str, int]) -> None:
                await asyncio.sleep(0)
                faust.ack(*event)
                acked.add(event)
                for tp in ("in-0", "in-1"):
                    committed = faust.commit(tp) or 0
                    assert all((tp, o) in acked for o in range(committed)), (tp, committed)

        rng = random.Random(7)

        async def complete() -> None:  # deliveries acknowledged after a while
            for _ in range(rng.randrange(0, 12)):
                await asyncio.sleep(0)

        async def start_flush() -> Awaitable[None]:
            return complete()

        acks = FlushThenAck(start_flush, 1.0, clock=clock)
        acks.attach(Stream())
        idle: list[asyncio.Task[None]] = []
        for start in range(0, len(events), 7):  # batches of 7, an idle flush racing each
            async with acks.lock:
                idle.append(asyncio.create_task(acks.flush_idle()))
                await asyncio.sleep(0)
                clock.now += 0.4
                await acks.processed(events[start:start + 7])
        await asyncio.gather(*idle)
        await acks.settled()
        await acks.flush_idle()
        await acks.settled()
        assert acked == set(events)
        assert faust.commit("in-0") == faust.commit("in-1") == 40

    asyncio.run(run())


def test_a_batch_waits_for_a_flush_still_in_flight_when_the_next_is_due() -> None:
    """Back-pressure: outputs the broker does not take hold the agent once the next flush
    is due, as when it awaited every flush; before that, batches go on."""
    async def run() -> None:
        journal, clock = Journal(), Clock()
        journal.gate = asyncio.Event()
        acks = acks_for(journal, clock)
        await acks.ready()  # nothing in flight
        clock.now = 5.0
        await acks.processed(["e1"])
        clock.now = 9.9
        await asyncio.wait_for(acks.ready(), 1)  # in flight, but the next is not due
        clock.now = 10.0
        waiting = asyncio.ensure_future(acks.ready())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not waiting.done()
        journal.gate.set()
        await asyncio.wait_for(waiting, 1)
        assert journal.steps == [("snapshot", None), ("flush", None), ("ack", "e1")]

    asyncio.run(run())


def test_the_agent_waiting_for_an_overdue_flush_does_not_wait_for_the_one_it_starts() -> None:
    """The flush a completion starts needs the lock the waiting agent holds: the agent
    waits for the completion only, then takes its batch (no deadlock)."""
    async def run() -> None:
        journal, clock = Journal(), Clock()
        journal.gate = asyncio.Event()
        acks = acks_for(journal, clock)
        clock.now = 5.0
        await acks.processed(["e1"])  # snapshot 1, completing behind the gate
        await acks.processed(["e2"])
        clock.now = 10.0  # the next is due, one is in flight

        async def agent() -> None:
            async with acks.lock:
                await acks.ready()
                await acks.processed(["e3"])

        batch = asyncio.ensure_future(agent())
        for _ in range(5):
            await asyncio.sleep(0)
        journal.gate.set()
        await asyncio.wait_for(batch, 1)
        await asyncio.wait_for(acks.settled(), 1)
        assert [s for s, _ in journal.steps].count("snapshot") == 2
        assert [e for s, e in journal.steps if s == "ack"] == ["e1", "e2", "e3"]

    asyncio.run(run())


def test_a_completion_acks_in_slices_letting_batches_in_between() -> None:
    async def run() -> None:
        from stream_detector.worker.acks import ACK_SLICE

        journal, clock = Journal(), Clock()
        acks = acks_for(journal, clock)
        events = list(range(ACK_SLICE * 2 + 1))
        clock.now = 5.0
        await acks.processed(events)
        batch_seen_at: list[int] = []

        async def batch() -> None:  # a batch waiting for the loop meanwhile
            while acks.in_flight:
                batch_seen_at.append(sum(1 for s, _ in journal.steps if s == "ack"))
                await asyncio.sleep(0)

        await asyncio.gather(acks.settled(), batch())
        assert [e for s, e in journal.steps if s == "ack"] == events  # in order
        assert ACK_SLICE in batch_seen_at and 2 * ACK_SLICE in batch_seen_at

    asyncio.run(run())


def test_a_flush_waiting_on_its_outputs_says_how_long() -> None:
    """With the output topic deleted, deliveries never completed: nothing was acked or
    consumed for minutes while /health said ok; waiting_seconds is what /health reads."""
    from stream_detector.worker.health import DELIVERY_STALL_SECONDS, health_document
    from stream_detector.worker.kafka_health import KafkaStatus

    async def run() -> None:
        journal, clock = Journal(), Clock()
        journal.gate = asyncio.Event()
        acks = acks_for(journal, clock)
        assert acks.waiting_seconds() == 0.0
        clock.now = 5.0
        await acks.processed(["e1"])
        clock.now = 50.0
        assert acks.waiting_seconds() == 45.0
        kafka = KafkaStatus(True, [0], 0, 0.1)
        doc = health_document([], [], kafka, acks.waiting_seconds())
        assert doc["status"] == "degraded" and doc["outputs"] == {
            "status": "stalled", "undelivered_seconds": 45.0}
        assert health_document([], [], kafka, DELIVERY_STALL_SECONDS - 1)["status"] == "ok"
        journal.gate.set()
        await acks.settled()
        assert acks.waiting_seconds() == 0.0

    asyncio.run(run())
