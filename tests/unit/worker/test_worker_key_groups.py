"""A key's whole messages of a batch are windowed in one step; windows, states and events
(each naming the message that completed its window) are those of one message at a time."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from test_worker_faults import make_runtime

from stream_detector.core.pipeline import Pipeline
from stream_detector.worker.messages import Message
from stream_detector.worker.runtime import WorkerRuntime


def _message(key: str, offset: int, first_second: int, values: list[float]) -> Message:
    recs = [{"kind": "series", "series": key, "value": v,
             "timestamp": f"2026-01-01T{(first_second + i) // 3600:02d}:"
                          f"{(first_second + i) // 60 % 60:02d}:{(first_second + i) % 60:02d}"}
            for i, v in enumerate(values)]
    return Message(json.dumps(recs).encode(), "in", 0, offset)


def _batches() -> list[list[Message]]:
    """Keys a, b, c interleaved, 6 records a message; spikes in a and b; key c's third
    message skips 30 s (a gap: its group is not plain and goes message by message)."""
    batches, offset, second = [], 0, {"a": 0, "b": 0, "c": 0}
    for b in range(3):
        batch = []
        for m in range(4):
            for key in "abc":
                values = [10.0] * 6
                if (key, b, m) in {("a", 1, 2), ("b", 2, 0), ("b", 2, 3)}:
                    values[m % 6] = 100.0
                if (key, b, m) == ("c", 1, 2):
                    second[key] += 30
                batch.append(_message(key, offset, second[key], values))
                offset += 1
                second[key] += 6
        batches.append(batch)
    return batches


def _run(tmp_path: Path, grouped: bool, monkeypatch: pytest.MonkeyPatch
         ) -> tuple[list[tuple[Any, ...]], dict[str, tuple[int, int]], int, WorkerRuntime]:
    rt, events, _ = make_runtime(tmp_path)
    calls = []
    real = Pipeline.ingest_group

    def ingest_group(self: Pipeline, *a: Any) -> Any:
        got = real(self, *a) if grouped else None
        calls.append(got is not None)
        return got
    monkeypatch.setattr(Pipeline, "ingest_group", ingest_group)

    async def scenario() -> int:
        records = 0
        for batch in _batches():
            records += (await rt.process(batch)).records
        replay = await rt.process(_batches()[-1])  # applied before: skipped, no event again
        return records + replay.records

    records = asyncio.run(scenario())
    got = sorted((e["key"], e["window_end"], e["score"], e["source"]["offset"], e["quality"]["gap"])
                 for e in map(json.loads, events))
    states = {}
    for key in "abc":
        state = rt.store.get("tiny", key)
        assert state is not None
        states[key] = (state.window.count, state.last_position)
    monkeypatch.undo()
    assert grouped == any(calls)  # the grouped run took some groups in one step
    return got, states, records, rt


def test_grouped_ingest_gives_the_events_and_states_of_one_message_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grouped, grouped_states, grouped_records, _ = _run(tmp_path / "g", True, monkeypatch)
    alone, alone_states, alone_records, _ = _run(tmp_path / "a", False, monkeypatch)
    assert grouped == alone and grouped_states == alone_states
    assert grouped_records == alone_records == 3 * 12 * 6 + 12 * 6
    # the three spikes' windows alert, each event naming the message of its spike (the
    # spikes lie early in their messages: the windows holding them end in the same message)
    assert {(key, offset) for key, _, _, offset, _ in grouped} == {("a", 18), ("b", 25),
                                                                   ("b", 34)}
