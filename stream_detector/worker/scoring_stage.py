"""The worker's scoring stage: ONNX Runtime on the event loop or in its own thread, and
a batch's scoring overlapped with the batch's own parsing.

A batch's windows are scored in parts of about :data:`PART_WINDOWS` windows: ingest hands
each full part to :meth:`ScoringStage.start` and goes on parsing the next messages while
ONNX Runtime (which releases the GIL) scores it in the ``onnx`` thread, so on a machine
with two cores or more the scoring of a large batch costs little beyond its parsing. The
decisions then take the parts in order, so every key's history still sees its scores in
arrival order; the scores themselves do not depend on how windows are split into calls.

A part predicted to score faster than :data:`INLINE_SCORE_S` (from the seconds per window
of past calls) is scored on the loop at once: handing it over would cost more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from stream_detector.core.model_runtime import PendingRun
from stream_detector.core.pipeline import Pipeline
from stream_detector.core.scoring import ScoreBatch
from stream_detector.worker.metrics import WorkerMetrics

__all__ = ["INLINE_SCORE_S", "PART_WINDOWS", "Scoring", "ScoringStage"]

INLINE_SCORE_S = 0.001  # a part predicted to score faster than this is scored on the loop
# windows a part holds before it is scored beside the rest of the batch's parsing (ONNX
# Runtime's per-window cost is flat from a few hundred windows on)
PART_WINDOWS = 4096


@dataclass
class Scoring:
    """One part of a batch being scored: its pending runs (in arrival order), their window
    count, and either its scores (scored on the loop) or the thread's future."""

    pending: list[PendingRun]
    windows: int
    batches: list[ScoreBatch] | None = None
    future: asyncio.Future[tuple[list[ScoreBatch], float]] | None = None

    async def settle(self) -> None:
        """Wait until the thread is done with this part, whatever the outcome (a batch
        that failed elsewhere: its rollback and replay must not race the call); its
        outcome is dropped."""
        if self.future is not None:
            await asyncio.wait([self.future])
            if not self.future.cancelled():
                self.future.exception()  # retrieved: asyncio does not log it as lost


class ScoringStage:
    """Scores parts of batches (:meth:`start`, then :meth:`result`), learning the seconds
    per window of each call to choose between the loop and the ``onnx`` thread."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnx")
        self.s_per_window = 0.0  # scoring seconds per window, moving average of calls

    def start(self, pending: list[PendingRun]) -> Scoring:
        """Begin scoring ``pending`` (runs with at least one window): at once on the loop
        when predicted under :data:`INLINE_SCORE_S`, else in the ``onnx`` thread."""
        windows = sum(len(p.windows.seq) for p in pending)
        if windows * self.s_per_window < INLINE_SCORE_S:
            batches, took = _timed_score(pending)
            self._learn(took, windows)
            return Scoring(pending, windows, batches=batches)
        future = asyncio.get_running_loop().run_in_executor(self.executor, _timed_score,
                                                            pending)
        return Scoring(pending, windows, future=future)

    async def result(self, part: Scoring) -> list[ScoreBatch]:
        """The scores of ``part``: one :class:`ScoreBatch` per model, as
        :meth:`Pipeline.score` gives them. Raises what scoring raised."""
        if part.batches is None and part.future is not None:
            part.batches, took = await part.future
            self._learn(took, part.windows)
        return part.batches or []

    def _learn(self, took: float, windows: int) -> None:
        """Count one call's own seconds (ONNX Runtime and the scaling around it)."""
        self.s_per_window += 0.2 * (took / windows - self.s_per_window)
        self.metrics.scoring_latency.observe(took)


def _timed_score(pending: Sequence[PendingRun]) -> tuple[list[ScoreBatch], float]:
    started = time.perf_counter()
    batches = Pipeline.score(pending)
    return batches, time.perf_counter() - started
