"""Instructions a record of the worker's batch step: a measure that does not move with the host.

    python -m benchmarks.instructions [--per-message 100] [--records 40000] [--batch 200]

Throughput ratios need a quiet host: on the shared 2-core machines this project runs on,
the same worker at one record a message did 20,156 records/s one morning and 2,400-3,600
the next evening. Counting instructions does not depend on the host. This runs
:meth:`WorkerRuntime.process <stream_detector.worker.runtime.WorkerRuntime.process>` in
process (no Kafka: delivery and the changelog are stand-ins that complete at once) on the
benchmark's generated series (100 keys, ``--per-message`` records of one key a message,
``--batch`` messages a batch, a state flush every fourth batch), with what makes the count
repeatable: ONNX Runtime on one thread (an idle pool thread spins, and valgrind counts
that), every batch scored on the loop, the worker's start-up heap freeze and collector
thresholds (:mod:`stream_detector.worker.heap`).

It runs valgrind's cachegrind twice, once on a warm-up (``--warm`` messages per key: every
window full) and once on the warm-up plus ``--records`` records, and reports the
difference per record: the steady state, start-up and imports cancelled. Repeated runs
agree within about 3% (valgrind also counts what the interpreter does at random moments,
such as collections). Needs ``valgrind`` on the PATH (Debian: ``apt install valgrind``);
2-4 minutes at the defaults.

``--stage parse`` counts only the parse of each batch
(:func:`~stream_detector.core.batch_runs.series_runs`), ``--stage all`` (default) the
whole step: parse, windows, scoring, decisions, events, flush.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["count", "main", "run_step"]

KEYS = 100  # series_messages' keys


def run_step(per_message: int, records: int, batch: int, warm: int, stage: str,
             counted: bool = True) -> int:
    """Build ``warm`` messages per key and ``records`` more records; run the worker's batch
    step on the warm-up and then, with ``counted``, on the rest (both runs build the same
    messages, so only the step's work differs); returns the records it took in."""
    from benchmarks.bench_models import window_mean_model, write_registry_model
    from benchmarks.e2e_support import series_messages
    from benchmarks.worker_e2e import QUIET, WINDOW
    from stream_detector.core.batch_runs import series_runs
    from stream_detector.core.model_runtime import ModelRuntime
    from stream_detector.core.registry import load_model
    from stream_detector.worker import runtime
    from stream_detector.worker.heap import freeze_startup_heap
    from stream_detector.worker.messages import Message
    from stream_detector.worker.metrics import WorkerMetrics
    from stream_detector.worker.table_store import TableStore
    from stream_detector.worker.threshold_cache import ThresholdCache


    class _Table:  # what TableStore needs of a Faust table, writing nowhere
        def __init__(self) -> None:
            self.data: dict[Any, Any] = {}

        def send_changelog(self, partition: int | None, key: Any, value: Any) -> None:
            return None

    async def send(key: bytes | None, value: bytes) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def go(model_dir: Path) -> int:
        loaded = load_model(model_dir, preference="cpu", intra_op_threads=1)
        card_only = ThresholdCache(loaded.card, client=None)  # type: ignore[arg-type]  # card values
        model = ModelRuntime(loaded, card_only.lookup)
        first = KEYS * per_message * warm
        values = [v for _, v in series_messages(first + records, per_message=per_message)]
        messages = [Message(v, "in", i % 4, i) for i, v in enumerate(values)]
        messages = messages if counted else messages[:KEYS * warm]
        metrics = WorkerMetrics()
        step = runtime.WorkerRuntime([model], TableStore(_Table()), metrics, send, send)
        freeze_startup_heap()  # as the worker does once it has started
        taken = 0
        for i in range(0, len(messages), batch):
            part = messages[i:i + batch]
            if stage == "parse":
                taken += sum(len(r) for r in series_runs([m.value for m in part]) if r)
            else:
                taken += (await step.process(part, flush=(i // batch) % 4 == 3)).records
        return taken

    inline, thresholds = runtime.INLINE_SCORE_S, gc.get_threshold()
    runtime.INLINE_SCORE_S = float("inf")  # every batch scored on the loop: no thread hand-off
    try:
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = write_registry_model(Path(tmp) / "mean", window_mean_model(WINDOW, 1),
                                             name="mean", window=WINDOW, threshold=1e30,
                                             detection=QUIET)
            return asyncio.run(go(model_dir))
    finally:  # the caller's process as it was (the heap freeze and thresholds too)
        runtime.INLINE_SCORE_S = inline
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def count(args: argparse.Namespace, counted: bool) -> int:
    """Instructions valgrind counts for one run of :func:`run_step` (a child process)."""
    cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
           sys.executable, "-m", "benchmarks.instructions", "--inner",
           "--per-message", str(args.per_message), "--records", str(args.records),
           "--batch", str(args.batch), "--warm", str(args.warm), "--stage", args.stage,
           *(() if counted else ("--warm-only",))]
    env = os.environ | {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env,  # noqa: S603 - own argv
                          check=False)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode or found is None:
        raise RuntimeError(f"valgrind run failed (exit {done.returncode}): "
                           f"{done.stderr.strip().splitlines()[-1:]}")
    return int(found.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-message", type=int, default=100, help="records a message")
    parser.add_argument("--records", type=int, default=40_000, help="records counted")
    parser.add_argument("--batch", type=int, default=200, help="messages a batch")
    parser.add_argument("--warm", type=int, default=4, help="warm-up messages per key")
    parser.add_argument("--stage", choices=("all", "parse"), default="all")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--warm-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner:
        run_step(args.per_message, args.records, args.batch, args.warm, args.stage,
                 counted=not args.warm_only)
        return 0
    if shutil.which("valgrind") is None:
        print("error: valgrind is not on the PATH (Debian: apt install valgrind)",
              file=sys.stderr)
        return 2
    base = count(args, counted=False)
    more = count(args, counted=True)
    print(f"{(more - base) / args.records:,.0f} instructions a record "
          f"(stage {args.stage}, {args.per_message} a message, {args.batch} messages a "
          f"batch; runs {base:,} and {more:,})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
