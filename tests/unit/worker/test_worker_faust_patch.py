"""The start-up patch of Faust's consumer: same results as upstream, no tasks when it can."""

from __future__ import annotations

import asyncio
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
