"""A flush in two steps: the snapshot, taken in the agent's turn, and its completion beside
later batches (deliveries of the snapshot's outputs, then its states in the table).
The table, the rollback point, only ever holds states whose outputs are out."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from test_worker_faults import POISON, VALUES, _Table, fault_score, message, tiny_model

from schemas.events import DeadLetter
from stream_detector.core.key_state import KeyState
from stream_detector.worker.messages import Message
from stream_detector.worker.metrics import WorkerMetrics
from stream_detector.worker.runtime import WorkerRuntime
from stream_detector.worker.table_store import TableStore, table_key


class Broker:
    """Sends whose deliveries the test acknowledges (or fails) when it wants."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.pending: list[asyncio.Future[None]] = []

    async def send(self, key: bytes, value: bytes) -> asyncio.Future[None]:
        self.sent.append(value)
        self.pending.append(asyncio.get_running_loop().create_future())
        return self.pending[-1]

    def acknowledge(self) -> None:
        for future in self.pending:
            if not future.done():
                future.set_result(None)


def runtime(tmp_path: Path, broker: Broker) -> tuple[WorkerRuntime, _Table]:
    model = tiny_model(tmp_path)
    table = _Table()
    rt = WorkerRuntime([model], TableStore(table), WorkerMetrics(), broker.send, broker.send)
    return rt, table


def messages(first: int, stop: int, poison_at: int | None = None) -> list[Message]:
    return [message(i, [POISON if i == poison_at else VALUES[i]]) for i in range(first, stop)]


def stored_count(table: _Table) -> int | None:
    raw = table.data.get(table_key("tiny", "k"))
    return None if raw is None else KeyState.from_bytes(raw).window.count


async def settle(*futures: asyncio.Future[int]) -> None:
    await asyncio.wait_for(asyncio.gather(*futures), 5)


def test_a_snapshot_is_written_after_its_deliveries_and_later_batches_do_not_change_it(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        broker = Broker()
        rt, table = runtime(tmp_path, broker)
        await rt.process(messages(0, 12), flush=False)  # alerts at 9: windows ending 9-11
        assert len(broker.sent) == 3
        completion = await asyncio.wait_for(rt.start_flush(), 1)  # does not wait for them
        await rt.process(messages(12, 24), flush=False)  # goes on meanwhile (19 alerts)
        await asyncio.sleep(0.05)
        assert not completion.done() and not table.data  # outputs not out: no state yet
        for future in broker.pending[:3]:
            future.set_result(None)  # the snapshot's outputs only
        assert await asyncio.wait_for(completion, 5) == 1
        assert stored_count(table) == 12  # the snapshot's state, not the live one (24)
        later = await rt.start_flush()
        await asyncio.sleep(0.05)
        assert not later.done() and stored_count(table) == 12  # its outputs still pending
        broker.acknowledge()
        await settle(later)
        assert stored_count(table) == 24

    asyncio.run(scenario())


def test_a_revoke_drops_a_flush_in_flight_unwritten(tmp_path: Path) -> None:
    async def scenario() -> None:
        broker = Broker()
        rt, table = runtime(tmp_path, broker)
        await rt.process(messages(0, 12), flush=False)
        completion = await rt.start_flush()
        rt.forget()  # partitions revoked while the deliveries were awaited
        broker.acknowledge()
        assert await asyncio.wait_for(completion, 5) == 0
        assert not table.data  # the new owner replays those records from its own state

    asyncio.run(scenario())


def test_a_batch_failing_while_a_flush_completes_rolls_back_to_the_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The failing batch waits for the snapshot to be in the table, then replays only what
    followed it: every record but the poison counted once, no event sent twice."""
    async def scenario() -> None:
        broker = Broker()
        rt, table = runtime(tmp_path, broker)
        await rt.process(messages(0, 12), flush=False)
        completion = await rt.start_flush()
        await rt.process(messages(12, 16), flush=False)  # after the snapshot, before a failure
        fault_score(monkeypatch)

        snapshots = broker.pending[:3]

        async def broker_acknowledging() -> None:  # a while after every send, the
            for tick in range(10_000):  # snapshot's outputs last (100 ms)
                await asyncio.sleep(0.01)
                for future in broker.pending:
                    if not future.done() and (tick >= 10 or future not in snapshots):
                        future.set_result(None)

        helper = asyncio.ensure_future(broker_acknowledging())
        result = await asyncio.wait_for(rt.process(messages(16, 30, poison_at=20)), 5)
        helper.cancel()
        assert await completion == 1
        letters = [DeadLetter.model_validate_json(d) for d in broker.sent
                   if b"unprocessable" in d]
        assert [d.offset for d in letters] == [20] and len(result.dead) == 1
        ends = [json.loads(e)["window_end"] for e in broker.sent if b"window_end" in e]
        assert len(ends) == len(set(ends)) == 8  # 4 windows alert at 9 and at 19 each
        state = rt.store.get("tiny", "k")
        assert state is not None and state.window.count == 29 and stored_count(table) == 29

    asyncio.run(scenario())
