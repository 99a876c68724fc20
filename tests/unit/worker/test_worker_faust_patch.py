"""The start-up patch of Faust's consumer: same results as upstream, no tasks when it can."""

from __future__ import annotations

import asyncio
from contextlib import nullcontext
from types import SimpleNamespace
from typing import Any

from mode import Service
from mode.services import WaitResults

from stream_detector.worker import faust_patch


def test_upstream_is_the_code_the_patch_was_reviewed_against() -> None:
    # Fails when faust-streaming or mode change the functions the patch relies on:
    # review stream_detector/worker/faust_patch.py against the new code, then update the hashes.
    assert faust_patch.upstream_matches() == dict.fromkeys(faust_patch.UPSTREAM_SHA256, True)


class _Consumer(Service):
    def __init__(self) -> None:
        super().__init__()
        self.suspend_flow = asyncio.Event()


async def _put(box: list[int], wait: bool) -> int:
    if wait:  # a full queue: the callback has to wait for room
        await asyncio.sleep(0.01)
    box.append(1)
    return 7


def test_a_callback_that_does_not_wait_runs_inline_without_a_task() -> None:
    async def main() -> tuple[Any, int, list[int]]:
        consumer, box, calls = _Consumer(), [], []

        async def upstream(*a: Any, **k: Any) -> Any:
            calls.append(1)
            return await Service.wait_first(*a, **k)
        before = len(asyncio.all_tasks())
        got = await faust_patch._deliver(consumer, upstream, _put(box, False),
                                         consumer.suspend_flow.wait())
        return got, len(asyncio.all_tasks()) - before + len(calls), box

    got, extra, box = asyncio.run(main())
    assert isinstance(got, WaitResults) and got.results == [7] and not got.stopped
    assert box == [1] and extra == 0


def test_a_callback_that_waits_is_raced_against_the_flow_as_upstream_does() -> None:
    async def main() -> tuple[Any, list[int], bool]:
        consumer, box = _Consumer(), []
        flow = consumer.suspend_flow.wait()
        assert faust_patch._is_flow_wait(consumer, flow)
        got = await faust_patch._deliver(consumer, Service.wait_first, _put(box, True), flow)
        other = asyncio.Event().wait()
        not_flow = faust_patch._is_flow_wait(consumer, other)
        other.close()
        return got, box, not_flow

    got, box, not_flow = asyncio.run(main())
    assert got.results == [7] and box == [1] and not not_flow


def test_install_patches_the_consumer_once() -> None:
    from faust.transport.consumer import Consumer

    assert faust_patch.install() and faust_patch.installed()
    patched = Consumer.wait_first
    assert faust_patch.install() and Consumer.wait_first is patched


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_an_empty_live_set_of_active_partitions_fetches_nothing() -> None:
    # aiokafka's Fetcher.fetched_records(partitions) reads a falsy ``partitions`` as "every
    # partition" (pinned by the hash test above); Faust passes its live set of active
    # partitions, which recovery may empty while the fetch waits.
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    assert faust_patch.install_rebalance_fixes() and faust_patch.install_rebalance_fixes()
    seen: list[Any] = []

    async def fetched_records(partitions: Any, **kwargs: Any) -> dict[Any, Any]:
        seen.append(partitions)
        return {}

    fetcher = SimpleNamespace(_closed=False, fetched_records=fetched_records,
                              _subscriptions=SimpleNamespace(fetch_context=nullcontext))
    thread = SimpleNamespace(consumer=SimpleNamespace(flow_active=True))
    consumer = SimpleNamespace(_fetcher=fetcher, _closed=False)
    fetch: Any = AIOKafkaConsumerThread._fetch_records
    live = {"in-0"}
    _run(fetch(thread, consumer, live, timeout=0))
    only = seen[0]
    assert only and "in-0" in only
    live.clear()  # recovery paused the last active partition during the fetch
    assert only and "in-0" not in only  # still a filter, now matching nothing
    _run(fetch(thread, consumer, None, timeout=0))
    assert seen[1] is None  # client-only apps: no filter, as upstream


def _recovery(calls: list[str], generation: int,
              assignment: frozenset[str] = frozenset({"in-0", "changelog-0"}),
              committed: dict[str, int] | None = None,
              positions: dict[str, int] | None = None) -> Any:
    """The parts of Faust's Recovery (and its app) that the end of recovery touches.

    ``committed``: the group's committed offsets, as Faust's ``perform_seek`` leaves them in
    ``consumer._committed_offset`` (partitions without one are absent); ``positions``:
    aiokafka's positions (next offset to fetch) after that seek."""

    async def noop(*a: Any, **k: Any) -> None:
        return None

    async def seek() -> None:
        calls.append("seek")

    async def seek_wait(offsets: dict[str, int]) -> None:
        calls.append(f"seek_wait {sorted(offsets.items())}")

    async def position(tp: str) -> int | None:
        return (positions or {}).get(tp)

    consumer = SimpleNamespace(
        assignment=lambda: set(assignment), perform_seek=seek, seek_wait=seek_wait,
        position=position,
        _committed_offset=dict(committed or {}),
        resume_partitions=lambda tps: calls.append(f"resume {sorted(tps)}"),
        resume_flow=lambda: calls.append("resume_flow"))
    app = SimpleNamespace(
        consumer=consumer, consumer_generation_id=generation,
        on_rebalance_complete=SimpleNamespace(send=noop),
        flow_control=SimpleNamespace(resume=lambda: calls.append("clear_queues")),
        conf=SimpleNamespace(broker_request_timeout=1.0),
        _fetcher=SimpleNamespace(maybe_start=noop),
        assignor=SimpleNamespace(assigned_standbys=set), on_rebalance_end=lambda: None)
    quiet = SimpleNamespace(info=lambda *a: None, warning=lambda *a: None, dev=lambda *a: None)
    tables = SimpleNamespace(values=list, on_actives_ready=lambda: None,
                             on_standbys_ready=lambda: None)
    return SimpleNamespace(
        app=app, tables=tables, log=quiet, completed=None, _set_recovery_ended=lambda: None,
        _is_changelog_tp=lambda tp: tp.startswith("changelog"),
        _wait=lambda coro, timeout=None: coro)


async def end(recovery: Any, generation: int) -> bool:
    """Run (patched) ``Recovery.on_recovery_completed``; whether it completed."""
    from faust.tables.recovery import Recovery

    recovery.completed = asyncio.Event()
    await Recovery.on_recovery_completed(recovery, generation)
    return recovery.completed.is_set()


def test_recovery_end_clears_queues_and_seeks_before_resuming_input_partitions() -> None:
    # Upstream resumed the input partitions, awaited the seek (the fetcher could then put
    # their records on the agents' queues), and cleared the queues afterwards.
    assert faust_patch.install_rebalance_fixes()

    calls: list[str] = []
    assert _run(end(_recovery(calls, 3), 3))
    assert calls == ["clear_queues", "seek", "resume ['in-0']", "resume_flow"]
    calls.clear()
    assert not _run(end(_recovery(calls, 4), 3))  # a newer rebalance began: as upstream,
    assert calls == []  # nothing is resumed


def _fetch_into(consumer: Any, records: dict[Any, list[int]]) -> None:
    """The patched fetch of Faust's consumer thread handing over ``records`` (offsets)."""
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    async def fetched_records(partitions: Any, **kwargs: Any) -> dict[Any, Any]:
        return {tp: [SimpleNamespace(offset=o) for o in offsets]
                for tp, offsets in records.items()}

    fetcher = SimpleNamespace(_closed=False, fetched_records=fetched_records,
                              _subscriptions=SimpleNamespace(fetch_context=nullcontext))
    consumer.flow_active = True
    thread = SimpleNamespace(consumer=consumer)
    fetch: Any = AIOKafkaConsumerThread._fetch_records
    _run(fetch(thread, SimpleNamespace(_fetcher=fetcher, _closed=False), set(records),
               timeout=0))


def test_partitions_never_committed_are_sought_back_to_their_first_fetched_record() -> None:
    # aiokafka's seek_to_committed moves only partitions with a committed offset above 0.
    # Records of a partition that never had one, taken by Faust and dropped within an
    # assignment, were not fetched again: lost once a later offset was committed.
    assert faust_patch.install_rebalance_fixes()
    calls: list[str] = []
    streams = frozenset({"in-0", "in-1", "in-2", "in-3", "changelog-0"})
    recovery = _recovery(calls, 3, streams, committed={"in-0": 12},
                         positions={"in-0": 12, "in-1": 45, "in-2": 0, "in-3": 50})
    consumer = recovery.app.consumer
    _fetch_into(consumer, {"in-0": [12, 13], "in-1": [40, 41, 42], "in-3": [50],
                           "changelog-0": [0]})
    _fetch_into(consumer, {"in-1": [43, 44]})  # a later fetch: the start stays 40
    assert _run(end(recovery, 3))
    assert calls == ["clear_queues", "seek", "seek_wait [('in-1', 40)]",
                     "resume ['in-0', 'in-1', 'in-2', 'in-3']", "resume_flow"]
    # in-0 is committed: its seek moved it; in-2 was never fetched and in-3 is not past its
    # first fetched record (aiokafka reset it at the rebalance): no seek moves one forward;
    # changelog partitions are recovery's own business and stay paused


def test_a_committed_partition_forgets_its_first_fetched_record() -> None:
    assert faust_patch.install_rebalance_fixes()
    calls: list[str] = []
    recovery = _recovery(calls, 1, frozenset({"in-0"}), committed={"in-0": 7},
                         positions={"in-0": 10})
    consumer = recovery.app.consumer
    _fetch_into(consumer, {"in-0": [3, 4]})
    assert _run(end(recovery, 1)) and "seek_wait" not in " ".join(calls)
    consumer._committed_offset.clear()  # say the group's offsets expired: never the old 3
    _fetch_into(consumer, {"in-0": [9]})
    calls.clear()
    assert _run(end(recovery, 1))
    assert "seek_wait [('in-0', 9)]" in calls


class _Agent(Service):
    """What the patched take wait needs of a Faust stream: a mode service."""


def test_the_take_wait_returns_when_the_buffer_fills_without_a_task() -> None:
    async def main() -> tuple[bool, list[int], float, int]:
        full, tasks = asyncio.Event(), []
        loop = asyncio.get_running_loop()

        def drainer_fills_the_buffer() -> None:
            tasks.append(len(asyncio.all_tasks()))  # while the take waits
            full.set()
        loop.call_later(0.02, drainer_fills_the_buffer)
        started = loop.time()
        got = await faust_patch.event_or_timeout(full, 5.0)
        return got, tasks, loop.time() - started, len(full._waiters)  # type: ignore[attr-defined]

    got, tasks, took, waiters = asyncio.run(main())
    assert got and tasks == [1] and took < 1.0 and waiters == 0  # 1: this test's own task


def test_the_take_wait_times_out_and_cleans_up_also_when_cancelled() -> None:
    async def main() -> tuple[bool, bool, int]:
        event = asyncio.Event()
        timed_out = await faust_patch.event_or_timeout(event, 0.01)
        waiting = asyncio.ensure_future(faust_patch.event_or_timeout(event, 5.0))
        await asyncio.sleep(0)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        set_before = asyncio.Event()
        set_before.set()
        return (timed_out, await faust_patch.event_or_timeout(set_before, 5.0),
                len(event._waiters))  # type: ignore[attr-defined]

    timed_out, already, waiters = asyncio.run(main())
    assert timed_out is False and already is True and waiters == 0


def test_install_routes_only_short_take_waits_on_asyncio_events_to_the_fast_wait() -> None:
    from faust.streams import Stream

    assert faust_patch.install()

    async def main() -> tuple[bool, list[str]]:
        agent, seen = _Agent(), []
        real = faust_patch.event_or_timeout

        async def spy(event: asyncio.Event, timeout: float) -> bool:
            seen.append(f"fast {timeout}")
            return await real(event, timeout)

        faust_patch.event_or_timeout = spy  # type: ignore[assignment]
        try:
            stopped = await Stream.wait_for_stopped(agent, asyncio.Event(), timeout=0.005)  # type: ignore[arg-type]
            await Stream.wait_for_stopped(agent, asyncio.Event(), timeout=2.0)  # type: ignore[arg-type]
            await Stream.wait_for_stopped(agent, asyncio.sleep(0), timeout=0.005)  # type: ignore[arg-type]
        finally:
            faust_patch.event_or_timeout = real  # type: ignore[assignment]
        return stopped, seen

    stopped, seen = asyncio.run(main())
    assert stopped is False and seen == ["fast 0.005"]  # long waits, coroutines: upstream
