"""A state flush taken before a freeze longer than the session timeout is written only once
the group has confirmed the worker still owns its partitions (stream_detector/worker/stalls.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from test_worker_faults import batch, make_runtime

from stream_detector.worker.stalls import StallGuard


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_guard_sees_a_stall_recorded_or_still_going_on() -> None:
    clock = Clock()
    guard = StallGuard(limit=8.0, confirm=0.5, clock=clock)
    assert not guard.stalled_since(0.0)  # no tick yet: no verdict
    guard.tick()
    clock.now += 0.25
    guard.tick()
    assert not guard.stalled_since(999.0)
    clock.now += 70.0  # SIGSTOP for 70 s: no tick has run since
    assert guard.stalled_since(999.0)
    guard.tick()  # the timer runs first after waking: the stall is remembered
    assert guard.stalled_since(999.0)
    clock.now += 0.1  # a flush taken just after waking: its states came from before
    assert guard.stalled_since(clock.now)
    clock.now += 1.0
    guard.tick()
    assert not guard.stalled_since(clock.now)  # over ``confirm`` later: no longer


def _flush_across_a_stall(tmp_path: Path, revoked: bool = False,
                          reset: bool = False) -> tuple[int, int]:
    """A flush taken, the worker frozen for 70 s, the partitions revoked or the member
    reset (or neither) while the flush waits; returns (states written, table size)."""
    rt, _, _ = make_runtime(tmp_path)
    clock = Clock()
    member = [(2, "faust-a")]
    rt.stalls = StallGuard(limit=8.0, confirm=0.2, clock=clock, membership=lambda: member[0])
    rt.stalls.tick()

    async def scenario() -> int:
        await rt.process(batch(poison=False), flush=False)
        done = await rt.start_flush()
        clock.now += 70.0  # frozen after the snapshot, before its completion
        await asyncio.sleep(0.05)
        if reset:  # the heartbeat found the member evicted: aiokafka resets it
            member[0] = (-1, "")
        if revoked:  # the rejoin meanwhile: Faust revokes the partitions
            rt.forget()
        return await done

    written = asyncio.run(scenario())
    return written, len(rt.store.table.data)  # type: ignore[attr-defined]


def test_a_flush_spanning_a_stall_is_dropped_when_the_partitions_were_revoked(
    tmp_path: Path,
) -> None:
    assert _flush_across_a_stall(tmp_path, revoked=True) == (0, 0)


def test_a_flush_spanning_a_stall_is_written_when_the_worker_still_owns_them(
    tmp_path: Path,
) -> None:
    assert _flush_across_a_stall(tmp_path) == (1, 1)


def test_a_flush_spanning_a_stall_is_dropped_when_the_member_was_reset(
    tmp_path: Path,
) -> None:
    """The rejoin (and the revoke) came 5 s after waking: the reset membership decides."""
    assert _flush_across_a_stall(tmp_path, reset=True) == (0, 0)
