"""Stalls of the worker's process: no key state is written for partitions it may have lost.

A worker frozen longer than the consumer group's session timeout (SIGSTOP, a VM or container
paused or throttled, swapping) is evicted from the group while it sleeps: another worker
takes its partitions and writes their key states. On waking, the frozen worker learns of it
only at its next heartbeat, and before that it completed the state flush that was in flight:
stale states went to the changelog after the new owner's, the new owner's next restore took
them, and later events of those keys were silently wrong (scores off, an anomaly missed).

:class:`StallGuard` notices such a stall from the event loop's own ticks (monotonic time
keeps running while a process is stopped): a flush whose snapshot was taken before a stall
longer than ``limit`` seconds waits ``confirm`` seconds before writing. In that time the
heartbeat of an evicted member fails and aiokafka resets its membership (generation and
member id), or the group revokes the partitions (:meth:`WorkerRuntime.forget
<stream_detector.worker.runtime.WorkerRuntime.forget>`): the flush is then dropped unwritten
and its records are replayed by whoever owns them after the rebalance. A member that kept
its place writes the states, as it would have.

Seen in a run (2 workers, 4 partitions, 1,500 records/s, one SIGSTOPped for 30 s with a
flush in flight): the heartbeat failed, resetting the membership, 1 ms after waking, and the
rejoin with its revoke came 5.2 s later; a wait for the revoke alone (4 s) still wrote, hence
the membership check (tests/unit/worker/test_worker_stalls.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

__all__ = ["StallGuard"]

log = logging.getLogger(__name__)


class StallGuard:
    """Loop ticks in, "was there a stall since t?" out.

    Parameters
    ----------
    limit
        A gap between ticks longer than this (seconds) is a stall: the group's session
        timeout, after which the broker evicts a silent member.
    confirm
        Seconds a flush spanning a stall waits before writing (a few heartbeat intervals:
        time for the heartbeat to fail and the partitions to be revoked).
    clock
        Monotonic seconds (injected for tests).
    membership
        The consumer's group membership now, e.g. ``(generation, member_id)``: a flush
        spanning a stall is dropped when it changed (the member was evicted and reset,
        even before the partitions are revoked).
    """

    def __init__(self, limit: float, confirm: float,
                 clock: Callable[[], float] = time.monotonic,
                 membership: Callable[[], object] = lambda: None) -> None:
        self.limit = limit
        self.confirm = confirm
        self._clock = clock
        self.membership = membership  # the consumer's (generation, member id) in the group
        self._last_tick: float | None = None  # None before the first tick: no verdict
        self._stall_ended = -float("inf")  # when the newest stall ended (a tick after it)

    def tick(self) -> None:
        """Called by a timer every fraction of ``limit``: records a stall when the gap
        since the previous tick exceeds ``limit``."""
        now = self._clock()
        gap = 0.0 if self._last_tick is None else now - self._last_tick
        if gap > self.limit:
            self._stall_ended = now
            log.warning("the worker was frozen for %.0f s, longer than the group session "
                        "timeout (%.0f s): its partitions may have gone to another worker; "
                        "key states from before are written only once it still owns them",
                        gap, self.limit)
        self._last_tick = now

    def stalled_since(self, since: float) -> bool:
        """Whether a stall longer than ``limit`` happened after ``since`` (monotonic
        seconds), or ended less than ``confirm`` seconds before it: one a tick recorded,
        or one still going on (no tick for that long). A snapshot taken just after waking
        holds states of records fetched before the freeze, and the member has not heard
        of its eviction yet."""
        if self._last_tick is None:
            return False
        return (self._stall_ended > since - self.confirm
                or self._clock() - self._last_tick > self.limit)

    async def settle(self, since: float) -> bool:
        """Wait ``confirm`` seconds if a stall happened after ``since``; returns whether
        it did (the caller checks again whether it still owns its partitions)."""
        if not self.stalled_since(since):
            return False
        await asyncio.sleep(self.confirm)
        return True
