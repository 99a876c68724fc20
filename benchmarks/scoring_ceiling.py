"""Scoring ceiling: ONNX Runtime alone vs the worker's scoring stage, same windows, same run.

For dense, conv1d and lstm autoencoders (window 50, 1 feature, untrained: the cost of a
forward pass does not depend on the weights) at batch sizes 1, 64 and 1024:

(a) ``onnxruntime.InferenceSession.run`` on a ready ``(batch, 50, 1)`` float32 array: the
    ceiling;
(b) :meth:`stream_detector.pipeline.Pipeline.score` on the same windows as ``Pending``
    items: group by model, ``np.stack`` the windows, scale them, ``Scorer.score``.

The ratio b/a is the target (>= 0.9, DESIGN.md "Targets"). The Python per-record costs of
:meth:`Pipeline.ingest` and per-window cost of :meth:`Pipeline.decide` are reported too.

    python -m benchmarks.scoring_ceiling [--full]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_models import family_model
from benchmarks.report import markdown_table, paired_rates, ratio, write_results

__all__ = ["main", "run"]

FAMILIES = ("dense", "conv1d", "lstm")
BATCHES = (1, 64, 1024)
WINDOW = 50
TARGETS = {"dense": 1_000_000, "conv1d": 70_000, "lstm": 40_000}  # windows/s, DESIGN.md


def _runtime(model_dir: Path, threshold: float) -> Any:
    from schemas.events import ThresholdSource
    from stream_detector.pipeline import ModelRuntime
    from stream_detector.registry import load_model
    from stream_detector.thresholds import ResolvedThreshold

    resolved = ResolvedThreshold(
        threshold, ThresholdSource(method="manual", version="1", scope="default"))
    return ModelRuntime(load_model(model_dir, preference="cpu"), lambda key: resolved)


def _pending(runtime: Any, n: int, seed: int = 0) -> list[Any]:
    """``n`` ready windows of ``n`` keys, as :meth:`Pipeline.ingest` would return them."""
    from schemas.events import SourceRef
    from stream_detector.pipeline import KeyState, Pending
    from stream_detector.windowing import Window, WindowState

    rng = np.random.default_rng(seed)
    source = SourceRef(topic="bench", partition=0, offset=0)
    out = []
    for i in range(n):
        values = rng.standard_normal((WINDOW, 1)).astype(np.float32)
        state = KeyState("1", WindowState(WINDOW, 1))
        window = Window(values, 0, 1, "2026-01-01T00:00:00", "2026-01-01T00:00:50", False, 50)
        out.append(Pending(runtime, f"k{i}", state, window, source))
    return out


def score_rates(model_dir: Path, batch: int, repeats: int, seconds: float) -> dict[str, Any]:
    """Windows/s of raw ``session.run`` and of ``Pipeline.score`` on the same windows."""
    import onnxruntime as ort

    from stream_detector.pipeline import Pipeline

    runtime = _runtime(model_dir, threshold=1e9)
    pending = _pending(runtime, batch)
    session = ort.InferenceSession(str(model_dir / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    x = np.ascontiguousarray(np.stack([p.window.values for p in pending]), dtype=np.float32)
    outputs = ["score", "errors"]
    # ORT's default (one spinning thread per core) against one thread: on a shared host
    # the spinning threads fight each other and the event loop; this column shows the cost.
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    single = ort.InferenceSession(str(model_dir / "model.onnx"), options,
                                  providers=["CPUExecutionProvider"])
    raw, stage, one = paired_rates(
        [lambda: session.run(outputs, {"windows": x}), lambda: Pipeline.score(pending),
         lambda: single.run(outputs, {"windows": x})], batch, repeats, seconds)
    return {"batch": batch, "raw_windows_per_s": raw, "worker_windows_per_s": stage,
            "ratio": ratio(stage, raw), "raw_1thread_windows_per_s": one,
            "ratio_1thread_to_raw": ratio(one, raw)}


def python_costs(model_dir: Path, keys: int = 64, records: int = 20_000) -> dict[str, float]:
    """Microseconds per record of ``Pipeline.ingest`` and per window of ``decide``.

    ``keys`` series receive ``records`` points round-robin after their windows are full, so
    every record completes a window (the steady state). ``decide`` is timed without alerts
    (the usual case) and with every window alerting (event building included).
    """
    from schemas.events import SourceRef
    from schemas.records import SeriesPoint
    from stream_detector.pipeline import DictStore, Pipeline

    rows = [SeriesPoint(kind="series", series=f"k{i % keys}",
                        timestamp=f"2026-01-01T{(i // keys) // 3600 % 24:02d}:"
                                  f"{(i // keys) // 60 % 60:02d}:{(i // keys) % 60:02d}",
                        value=float(i % 17)) for i in range(records + WINDOW * keys)]
    for r in rows:
        _ = r.epoch_ns  # cached: the worker pays it in ingest too, but parse is timed apart
    out: dict[str, float] = {}
    for label, threshold in (("quiet", 1e9), ("alerting", -1.0)):
        runtime = _runtime(model_dir, threshold)
        runtime.params = type(runtime.params)(normalise=False, warmup=0, suppress=1)
        pipeline = Pipeline([runtime], DictStore())
        pipeline.ingest(rows[: WINDOW * keys], SourceRef(topic="bench", partition=0))
        timed = rows[WINDOW * keys:]
        start = time.perf_counter()
        pending = []
        for at in range(0, len(timed), 1024):
            pending += pipeline.ingest(timed[at : at + 1024], SourceRef(topic="bench"))
        ingest = time.perf_counter() - start
        scored = [(pending[i : i + 1024], Pipeline.score(pending[i : i + 1024]))
                  for i in range(0, len(pending), 1024)]
        start = time.perf_counter()
        for items, batches in scored:
            pipeline.decide(items, batches)
        out[f"decide_{label}_us_per_window"] = (time.perf_counter() - start) / len(pending) * 1e6
        out["ingest_us_per_record"] = ingest / len(timed) * 1e6
    return out


def run(full: bool = False, out_dir: Path | None = None) -> dict[str, Any]:
    """Measure every family and batch size; write and return the results."""
    repeats, seconds = (15, 0.2) if full else (7, 0.08)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sd-bench-") as tmp:
        costs: dict[str, float] = {}
        for family in FAMILIES:
            model_dir = family_model(Path(tmp), family, WINDOW)
            for batch in BATCHES:
                row = {"family": family, **score_rates(model_dir, batch, repeats, seconds)}
                row["design_target"] = TARGETS[family] if batch > 1 else float("nan")
                rows.append(row)
                print(f"  {family:7s} batch {batch:5d}: raw {row['raw_windows_per_s']:12,.0f}"
                      f"  worker {row['worker_windows_per_s']:12,.0f}  ratio {row['ratio']:.3f}",
                      flush=True)
            if family == "dense":
                costs = python_costs(model_dir, records=60_000 if full else 20_000)
    table = markdown_table(rows, ["family", "batch", "raw_windows_per_s",
                                  "worker_windows_per_s", "ratio", "raw_1thread_windows_per_s",
                                  "ratio_1thread_to_raw", "design_target"])
    cost_rows = [{"stage": k, "microseconds": v} for k, v in costs.items()]
    md = (f"ONNX Runtime CPU, window {WINDOW}, 1 feature; ratio = worker scoring stage / raw "
          "session.run (target >= 0.9); raw_1thread: the same session with "
          "intra_op_num_threads=1 (default: one spinning thread per core)\n\n" + table +
          "\n\nPython per-record costs (dense model)\n\n" +
          markdown_table(cost_rows, ["stage", "microseconds"]))
    data = {"window": WINDOW, "rows": rows, "python_costs": costs, "full": full}
    path = write_results("scoring_ceiling", data, md, out_dir)
    print(md)
    print(f"\nwritten: {path} (+ .json)")
    return data


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="more repetitions, longer timings")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    args = parser.parse_args(argv)
    run(args.full, args.out)


if __name__ == "__main__":
    main()
