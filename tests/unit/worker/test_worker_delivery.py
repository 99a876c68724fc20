"""A batch hands its events to the producer without waiting for the broker; the state
flush (after which the app acks) waits for every delivery and sends failed ones again."""

from __future__ import annotations

import asyncio
from pathlib import Path

from test_worker_faults import _Table, batch, tiny_model

from stream_detector.worker.metrics import WorkerMetrics
from stream_detector.worker.runtime import WorkerRuntime
from stream_detector.worker.table_store import TableStore


def test_flush_waits_for_deliveries_and_resends_failures(tmp_path: Path) -> None:
    model = tiny_model(tmp_path)
    table = _Table()

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        deliveries: list[asyncio.Future[None]] = []
        sent: list[bytes] = []

        async def send(key: bytes, value: bytes) -> asyncio.Future[None]:
            sent.append(value)
            deliveries.append(loop.create_future())  # the broker has not acknowledged
            return deliveries[-1]

        rt = WorkerRuntime([model], TableStore(table), WorkerMetrics(), send, send)
        result = await asyncio.wait_for(rt.process(batch(poison=False), flush=False), 5)
        assert len(result.events) == 8 and len(sent) == 8  # handed over, none confirmed
        flush = asyncio.ensure_future(rt.flush())
        await asyncio.sleep(0.05)
        assert not flush.done() and not table.data  # no state before the events are out
        deliveries[0].set_exception(ConnectionError("broker gone"))
        for d in deliveries[1:]:
            d.set_result(None)
        await asyncio.sleep(0.05)
        assert not flush.done() and len(sent) == 9  # the failed one was sent again
        assert sent[-1] == sent[0]
        deliveries[-1].set_result(None)
        assert await asyncio.wait_for(flush, 5) == 1 and table.data

    asyncio.run(scenario())
