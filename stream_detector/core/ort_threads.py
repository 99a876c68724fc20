"""ONNX Runtime's intra-op thread count, chosen by timing it on the machine at model load.

ORT's default is one thread per core. On a small shared host one thread was 1.6 to 2.2
times faster for these models (issue #13), on a quiet many-core host the default can win;
which one depends on the machine and the model. With ``intra_op_threads = AUTO`` (the
worker's default) a :class:`~stream_detector.core.scoring.Scorer` builds a session per
candidate (1, and one per usable core), times each on a batch of 64 zero windows in
alternation (15 rounds), and keeps the one with the fastest call (as :mod:`timeit` advises
and as the scoring benchmark compares: on a shared CPU a slower call was slowed by other
processes; medians of 5 calls picked a count up to 6% slower in 4 of 6 benchmark rows):
a few milliseconds for a dense model, about 0.1 s for an LSTM, once per model load.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import numpy as np

__all__ = ["AUTO", "candidates", "fastest", "time_sessions"]

AUTO: Final = -1
_BATCH: Final = 64
_ROUNDS: Final = 15


def candidates() -> list[int]:
    """Thread counts worth trying here: 1 and the cores this process may use."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return sorted({1, max(1, cores or 1)})


def fastest(timings: Mapping[int, Sequence[float]]) -> int:
    """The thread count with the fastest call (ties: fewer threads).

    >>> fastest({1: [3.0, 1.2, 2.0], 2: [1.5, 1.1, 9.0]})
    2
    >>> fastest({1: [1.0], 2: [1.0]})
    1
    """
    return min(sorted(timings), key=lambda t: min(timings[t]))


def time_sessions(
    sessions: Mapping[int, Any], run: Callable[[Any, Any], object], window: int, features: int
) -> dict[int, list[float]]:
    """Seconds per call of ``run(session, batch)`` for each session, alternated."""
    batch = np.zeros((_BATCH, window, features), dtype=np.float32)
    for session in sessions.values():
        run(session, batch)  # first call: allocations, lazy initialisation
    timings: dict[int, list[float]] = {t: [] for t in sessions}
    for _ in range(_ROUNDS):
        for threads, session in sessions.items():
            start = time.perf_counter()
            run(session, batch)
            timings[threads].append(time.perf_counter() - start)
    return timings
