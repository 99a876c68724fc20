"""FlushThenAck: events are acked only after the key states are flushed, in order; failures
leave them held; a revoke drops them; the idle flush waits for a batch in progress."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stream_detector.worker.acks import FlushThenAck


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Journal:
    """The flush and the stream in one, writing what happens, in order, to ``steps``."""

    def __init__(self, fail_flush: bool = False) -> None:
        self.steps: list[tuple[str, Any]] = []
        self.fail_flush = fail_flush

    async def flush(self) -> int:
        await asyncio.sleep(0)  # a real flush yields to the loop
        if self.fail_flush:
            self.steps.append(("flush failed", None))
            raise ConnectionError("changelog unreachable")
        self.steps.append(("flush", None))
        return 1

    async def ack(self, event: Any) -> None:
        self.steps.append(("ack", event))


def acks_for(journal: Journal, clock: Clock, interval: float = 5.0) -> FlushThenAck:
    acks = FlushThenAck(journal.flush, interval, clock=clock)
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
        assert journal.steps == [("flush", None), ("ack", "e1"), ("ack", "e2"),
                                 ("ack", "e3"), ("ack", "e4")]
        assert acks.held == 0
        clock.now = 9.0  # the interval counts from the last flush, not from the start
        await acks.processed(["e5"])
        assert acks.held == 1 and journal.steps[-1] == ("ack", "e4")

    asyncio.run(run())


def test_a_failed_flush_acks_nothing_and_keeps_the_events_for_the_next_one() -> None:
    async def run() -> None:
        journal, clock = Journal(fail_flush=True), Clock()
        acks = acks_for(journal, clock)
        clock.now = 5.0
        with pytest.raises(ConnectionError):
            await acks.processed(["e1"])
        assert journal.steps == [("flush failed", None)] and acks.held == 1
        journal.fail_flush = False
        await acks.processed(["e2"])  # still due: the failed flush did not count
        assert journal.steps[1:] == [("flush", None), ("ack", "e1"), ("ack", "e2")]

    asyncio.run(run())


def test_revoked_partitions_drop_the_held_events_unacked() -> None:
    async def run() -> None:
        journal, clock = Journal(), Clock()
        acks = acks_for(journal, clock)
        await acks.processed(["old1", "old2"])
        acks.drop()
        clock.now = 5.0
        await acks.processed(["new"])
        assert journal.steps == [("flush", None), ("ack", "new")]

    asyncio.run(run())


def test_the_idle_flush_acks_what_is_held_whatever_the_interval() -> None:
    async def run() -> None:
        journal, clock = Journal(), Clock()
        acks = acks_for(journal, clock, interval=60.0)
        await acks.flush_idle()
        assert journal.steps == []  # nothing held: no flush at all
        await acks.processed(["e1"])
        await acks.flush_idle()
        assert journal.steps == [("flush", None), ("ack", "e1")]

    asyncio.run(run())


def test_the_idle_flush_does_nothing_before_the_agent_attached_its_stream() -> None:
    async def run() -> None:
        journal = Journal()
        acks = FlushThenAck(journal.flush, 0.0, clock=Clock())
        await acks.flush_idle()
        assert journal.steps == []
        with pytest.raises(RuntimeError, match="attach"):
            await acks.processed(["e1"])  # due at once, but no stream to ack on
        assert journal.steps == []  # and the states were not flushed either

    asyncio.run(run())


def test_the_idle_flush_waits_for_the_batch_in_progress() -> None:
    """A batch's states are half-applied until it is processed: the timer's flush must not
    run in between, and the batch's events are acked with it afterwards."""
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
        assert journal.steps == [("batch starts", None), ("batch done", None),
                                 ("flush", None), ("ack", "e1"), ("ack", "e2")]

    asyncio.run(run())
