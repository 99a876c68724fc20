"""Small batches are scored on the event loop, batches predicted to take longer than the
hand-over in the ONNX thread; the events are the same either way."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from test_worker_faults import batch, make_runtime

from stream_detector.worker import runtime as worker_mod
from stream_detector.worker import scoring_stage
from stream_detector.worker.messages import Message


def _events(payloads: list[bytes]) -> list[tuple[str, str]]:
    return [(e["key"], e["window_end"], e["score"]) for e in map(json.loads, payloads)]


def test_small_batches_score_inline_and_large_ones_in_the_thread(tmp_path: Path) -> None:
    async def run(predicted_s_per_window: float | None) -> tuple[list[bytes], int]:
        rt, events, _ = make_runtime(tmp_path / str(predicted_s_per_window))
        msgs = batch(poison=False)
        for at in range(0, len(msgs), 5):
            # as if past calls took this long per window (None: instant), so the choice
            # does not depend on how loaded the machine running the test is
            rt.scoring.s_per_window = predicted_s_per_window or 0.0
            await rt.process(msgs[at : at + 5])
        threads = len(rt.scoring.executor._threads)  # created on the first hand-over
        rt.scoring.executor.shutdown()
        return events, threads

    inline, inline_threads = asyncio.run(run(None))
    handed, handed_threads = asyncio.run(run(scoring_stage.INLINE_SCORE_S))
    assert inline_threads == 0 and handed_threads == 1
    assert len(inline) == 8 and _events(inline) == _events(handed)  # 2 spikes x 4 windows


def test_a_large_batch_is_scored_in_parts_while_its_later_messages_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parts of a batch go to the ONNX thread as soon as they are full, before the batch's
    later messages are parsed; the decisions, taken part by part in order, are those of
    one call for the whole batch."""
    async def run(part_windows: int) -> tuple[list[bytes], list[tuple[str, int]], int]:
        monkeypatch.setattr(worker_mod, "PART_WINDOWS", part_windows)
        rt, events, _ = make_runtime(tmp_path / str(part_windows))
        rt.scoring.s_per_window = 1.0  # predicted slow: every part goes to the thread
        log: list[tuple[str, int]] = []
        parse, start = rt._parse, rt.scoring.start  # noqa: SLF001

        def logged_parse(msg: Message, *a: object) -> object:
            log.append(("parse", msg.offset or 0))
            return parse(msg, *a)  # type: ignore[arg-type]

        def logged_start(pending: list[object]) -> object:
            log.append(("score", len(pending)))
            return start(pending)  # type: ignore[arg-type]

        monkeypatch.setattr(rt, "_parse", logged_parse)
        monkeypatch.setattr(rt.scoring, "start", logged_start)
        result = await rt.process(batch(poison=False))
        rt.scoring.executor.shutdown()
        return events, log, result.windows

    whole, whole_log, whole_windows = asyncio.run(run(10**6))
    parted, log, windows = asyncio.run(run(4))
    assert [kind for kind, _ in whole_log].count("score") == 1
    assert whole_log[-1][0] == "score"  # one call, after every message was parsed
    starts = [i for i, (kind, _) in enumerate(log) if kind == "score"]
    assert len(starts) == 7  # 27 windows (30 records, window 4) in parts of 4, the rest
    assert log.index(("parse", 29)) > starts[0]  # scoring began before the last parse
    assert windows == whole_windows == 27
    assert len(whole) == 8 and _events(parted) == _events(whole)  # 2 spikes x 4 windows
