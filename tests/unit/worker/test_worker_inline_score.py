"""Small batches are scored on the event loop, batches predicted to take longer than the
hand-over in the ONNX thread; the events are the same either way."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from test_worker_faults import batch, make_runtime

from stream_detector.worker import runtime as worker_mod


def _events(payloads: list[bytes]) -> list[tuple[str, str]]:
    return [(e["key"], e["window_end"], e["score"]) for e in map(json.loads, payloads)]


def test_small_batches_score_inline_and_large_ones_in_the_thread(tmp_path: Path) -> None:
    async def run(predicted_s_per_window: float | None) -> tuple[list[bytes], int]:
        rt, events, _ = make_runtime(tmp_path / str(predicted_s_per_window))
        msgs = batch(poison=False)
        for at in range(0, len(msgs), 5):
            # as if past calls took this long per window (None: instant), so the choice
            # does not depend on how loaded the machine running the test is
            rt._s_per_window = predicted_s_per_window or 0.0
            await rt.process(msgs[at : at + 5])
        threads = len(rt.executor._threads)  # created on the first hand-over
        rt.executor.shutdown()
        return events, threads

    inline, inline_threads = asyncio.run(run(None))
    handed, handed_threads = asyncio.run(run(worker_mod.INLINE_SCORE_S))
    assert inline_threads == 0 and handed_threads == 1
    assert len(inline) == 8 and _events(inline) == _events(handed)  # 2 spikes x 4 windows
