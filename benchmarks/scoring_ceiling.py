"""Scoring ceiling: ONNX Runtime alone vs the worker's scoring stage, same windows, same run.

For dense, conv1d and lstm autoencoders (window 50, 1 feature, untrained: the cost of a
forward pass does not depend on the weights) at batch sizes 1, 64 and 1024:

(a) ``onnxruntime.InferenceSession.run`` on a ready ``(batch, 50, 1)`` float32 array: the
    ceiling;
(b) :meth:`stream_detector.core.pipeline.Pipeline.score` on the same windows as pending
    runs of one window each, made as ingest makes them for one record a message (each
    window written into the model's rows): the slice of those rows, scaled into a new
    array, ``Scorer.score_ready`` -- on the same session as (a).

(a) and (b) are timed call by call in alternation at 1 and 2 intra-op threads; the ratio
of their fastest calls (each over both counts) is the target (>= 0.9, DESIGN.md
"Targets"). The Python per-record costs of
:meth:`Pipeline.ingest` and per-window cost of :meth:`Pipeline.decide` are reported too.

    python -m benchmarks.scoring_ceiling [--full]
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_models import family_model
from benchmarks.report import (
    interleaved,
    markdown_table,
    median_rate,
    paired_rates,
    write_results,
)

__all__ = ["main", "run"]

FAMILIES = ("dense", "conv1d", "lstm")
BATCHES = (1, 64, 1024)
THREADS = (1, 2, 0)  # ORT intra-op threads tried for the raw ceiling (0: one per core)
PAIRED = (1, 2)  # thread counts at which the worker's stage is timed beside raw
WINDOW = 50
TARGETS = {"dense": 1_000_000, "conv1d": 70_000, "lstm": 40_000}  # windows/s, DESIGN.md


def make_runtime(model_dir: Path, threshold: float, threads: int | None = None,
             provider: str = "cpu") -> Any:
    """The worker's runtime for ``model_dir``, with ``threads`` ORT threads (default: the
    worker's default, Settings.intra_op_threads)."""
    from schemas.events import ThresholdSource
    from stream_detector.core.model_runtime import ModelRuntime
    from stream_detector.core.registry import load_model
    from stream_detector.core.thresholds import ResolvedThreshold
    from stream_detector.settings import Settings

    resolved = ResolvedThreshold(
        threshold, ThresholdSource(method="manual", version="1", scope="default"))
    loaded = load_model(model_dir, preference=provider, intra_op_threads=(
        Settings().intra_op_threads if threads is None else threads))
    return ModelRuntime(loaded, lambda key: resolved)


def pending_windows(runtime: Any, n: int, seed: int = 0) -> list[Any]:
    """``n`` ready windows of ``n`` keys, as :meth:`Pipeline.ingest_run` returns them for
    single-record messages: each key's window filled, then one record completes it, in
    the model's rows (``WindowState.extend_run(..., rows=...)``); one :class:`PendingRun`
    of one window each, in arrival order."""
    from schemas.events import SourceRef
    from stream_detector.core.key_state import KeyState
    from stream_detector.core.model_runtime import PendingRun
    from stream_detector.core.windowing import WindowState

    rng = np.random.default_rng(seed)
    source = SourceRef(topic="bench", partition=0, offset=0)
    times = [i * 1_000_000_000 for i in range(WINDOW)]
    texts = [f"2026-01-01T00:00:{i:02d}" for i in range(WINDOW)]
    states = []
    for _ in range(n):
        state = KeyState("1", WindowState(WINDOW, 1))
        values = rng.standard_normal((WINDOW, 1)).astype(np.float32)
        state.window.extend_run(values[:-1], times[:-1], texts[:-1], [0] * (WINDOW - 1))
        states.append((state, values[-1:]))
    out = []
    for i, (state, last) in enumerate(states):
        run = state.window.extend_run(last, times[-1:], texts[-1:], [0], rows=runtime.rows)
        out.append(PendingRun(runtime, f"k{i}", state, run, source))
    return out


def _session(model_dir: Path, threads: int, providers: list[str] | None = None) -> Any:
    """A raw session: with ``threads`` > 0 configured exactly as the worker's Scorer
    configures it; with 0, ORT's own defaults (one spinning thread per core)."""
    import onnxruntime as ort

    if threads > 0:
        from stream_detector.core.scoring import make_session as scorer_session

        return scorer_session(str(model_dir / "model.onnx"),
                              providers or ["CPUExecutionProvider"], threads)
    return ort.InferenceSession(str(model_dir / "model.onnx"),
                                providers=providers or ["CPUExecutionProvider"])


def score_rates(model_dir: Path, batch: int, seconds: float) -> dict[str, Any]:
    """Windows/s of raw ``session.run`` and of ``Pipeline.score`` on the same windows, with
    the same session (the one the worker's Scorer built, asked for the outputs the worker
    uses), at 1 and 2 intra-op threads, timed call by call in alternation
    (:func:`~benchmarks.report.interleaved`); raw at ORT's own default threads is timed alone.

    ``ratio`` = the stage's fastest call / raw's fastest call, each over both counts: the
    stage's own cost (gathering the windows, scaling, the result's wrapping). Both sides
    take their best of the same number of samples; taking the ratio at the count where
    raw was fastest (``ratio_at_raw_fastest``) favours raw when the two counts are within
    noise (raw's luckier count is picked, the stage's is not). Which count
    the worker's default (-1: timed at model load) picks is ``auto_threads``, and raw's
    rate at that count over raw's best is ``auto_vs_fastest``.
    """
    from stream_detector.core.pipeline import Pipeline

    raw: dict[int, float] = {}
    stage: dict[int, float] = {}
    ratios: dict[int, float] = {}
    for t in PAIRED:
        runtime = make_runtime(model_dir, 1e9, t)
        pending = pending_windows(runtime, batch)
        x = np.ascontiguousarray(np.concatenate([p.windows.values for p in pending]),
                                 dtype=np.float32)
        scorer = runtime.loaded.scorer
        run = functools.partial(scorer.session.run, list(scorer.outputs), {"windows": x})
        raw[t], stage[t], ratios[t] = interleaved(
            run, functools.partial(Pipeline.score, pending), batch, seconds)
    default = _session(model_dir, 0)
    x = np.random.default_rng(0).standard_normal((batch, WINDOW, 1)).astype(np.float32)
    raw_default = median_rate(functools.partial(default.run, ["score", "errors"],
                                                {"windows": x}), batch, 3, seconds / 4)
    best = max(PAIRED, key=lambda t: raw[t])
    auto = make_runtime(model_dir, 1e9).loaded.scorer.threads
    return {"batch": batch,
            **{f"raw_{t}thread_windows_per_s": r for t, r in raw.items()},
            "raw_defaultthread_windows_per_s": raw_default,
            **{f"worker_{t}thread_windows_per_s": r for t, r in stage.items()},
            **{f"ratio_{t}thread": r for t, r in ratios.items()},
            "fastest_threads": best, "raw_windows_per_s": raw[best],
            "worker_windows_per_s": max(stage.values()),
            "ratio": max(stage.values()) / raw[best], "ratio_at_raw_fastest": ratios[best],
            "auto_threads": auto,
            "auto_vs_fastest": raw[auto] / raw[best] if auto in raw else float("nan")}


def cuda_rates(model_dir: Path, repeats: int, seconds: float) -> dict[str, Any]:
    """Windows/s on the CUDA provider against the CPU (best threads), per batch size; the
    batch from which the GPU is faster. Not run (and said so) without a usable GPU."""
    from stream_detector.core.providers import CUDA, gpu_available

    if not gpu_available(CUDA):
        return {"not_run": "no usable CUDA device (onnxruntime's CUDA provider not available)"}
    gpu = _session(model_dir, 1, [CUDA, "CPUExecutionProvider"])
    cpu = _session(model_dir, 1)
    rows = []
    for batch in (1, 64, 1024, 8192):
        x = np.random.default_rng(0).standard_normal((batch, WINDOW, 1)).astype(np.float32)
        g, c = paired_rates([functools.partial(gpu.run, ["score"], {"windows": x}),
                             functools.partial(cpu.run, ["score"], {"windows": x})], batch,
                            repeats, seconds)
        rows.append({"batch": batch, "cuda_windows_per_s": g, "cpu_windows_per_s": c})
    faster = [r["batch"] for r in rows if r["cuda_windows_per_s"] > r["cpu_windows_per_s"]]
    return {"rows": rows, "gpu_faster_from_batch": faster[0] if faster else None}


def python_costs(model_dir: Path, keys: int = 64, records: int = 20_000) -> dict[str, float]:
    """Microseconds per record of ``Pipeline.ingest`` and per window of ``decide``.

    ``keys`` series receive ``records`` points round-robin after their windows are full, so
    every record completes a window (the steady state). ``decide`` is timed without alerts
    (the usual case) and with every window alerting (event building included).
    """
    from schemas.events import SourceRef
    from schemas.records import SeriesPoint
    from stream_detector.core.key_state import DictStore
    from stream_detector.core.pipeline import Pipeline

    rows = [SeriesPoint(kind="series", series=f"k{i % keys}",
                        timestamp=f"2026-01-01T{(i // keys) // 3600 % 24:02d}:"
                                  f"{(i // keys) // 60 % 60:02d}:{(i // keys) % 60:02d}",
                        value=float(i % 17)) for i in range(records + WINDOW * keys)]
    for r in rows:
        _ = r.epoch_ns  # cached: the worker pays it in ingest too, but parse is timed apart
    out: dict[str, float] = {}
    for label, threshold in (("quiet", 1e9), ("alerting", -1.0)):
        runtime = make_runtime(model_dir, threshold)
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
    from stream_detector.settings import Settings

    repeats, seconds = (15, 0.2) if full else (5, 0.06)  # CUDA part
    pair_seconds = 3.0 if full else 1.5  # per thread count and batch size
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sd-bench-") as tmp:
        costs: dict[str, float] = {}
        cuda: dict[str, Any] = {}
        for family in FAMILIES:
            model_dir = family_model(Path(tmp), family, WINDOW)
            for batch in BATCHES:
                row = {"family": family, **score_rates(model_dir, batch, pair_seconds)}
                row["design_target"] = TARGETS[family] if batch > 1 else float("nan")
                rows.append(row)
                print(f"  {family:7s} batch {batch:5d}: raw {row['raw_windows_per_s']:12,.0f}"
                      f" ({row['fastest_threads'] or 'default'} threads)  worker "
                      f"{row['worker_windows_per_s']:12,.0f}  ratio {row['ratio']:.3f}",
                      flush=True)
            if family == "dense":
                costs = python_costs(model_dir, records=60_000 if full else 20_000)
                cuda = cuda_rates(model_dir, repeats, seconds)
    threads = _threads_summary(rows, Settings().intra_op_threads)
    data = {"window": WINDOW, "rows": rows, "python_costs": costs, "threads": threads,
            "cuda": cuda, "full": full}
    md = _markdown(data)
    path = write_results("scoring_ceiling", data, md, out_dir)
    print(md)
    print(f"\nwritten: {path} (+ .json)")
    return data


def _threads_summary(rows: list[dict[str, Any]], default: int) -> dict[str, Any]:
    """Which ORT thread count was fastest at batch >= 64 (votes over families, batches),
    how often the worker's default (-1: timed at load) ran with that count, and the worst
    ratio of raw's rate at the default's count to raw's best (1.0: always the fastest)."""
    votes: dict[int, int] = {}
    agree = 0
    worst = float("inf")
    for r in rows:
        if r["batch"] >= 64:
            votes[r["fastest_threads"]] = votes.get(r["fastest_threads"], 0) + 1
            agree += r["auto_threads"] == r["fastest_threads"]
            worst = min(worst, r["auto_vs_fastest"])
    fastest = max(votes, key=lambda t: votes[t]) if votes else default
    return {"votes": {str(k): v for k, v in votes.items()}, "fastest": fastest,
            "worker_default": default, "worker_ran_fastest": f"{agree}/{sum(votes.values())}",
            "worst_auto_vs_fastest": worst if votes else float("nan")}


def _markdown(data: dict[str, Any]) -> str:
    table = markdown_table(data["rows"], [
        "family", "batch", "raw_1thread_windows_per_s", "raw_2thread_windows_per_s",
        "raw_defaultthread_windows_per_s", "worker_1thread_windows_per_s",
        "worker_2thread_windows_per_s", "ratio_1thread", "ratio_2thread", "fastest_threads",
        "ratio_at_raw_fastest", "ratio", "auto_threads", "auto_vs_fastest",
        "design_target"])
    th = data["threads"]
    cost_rows = [{"stage": k, "microseconds": v} for k, v in data["python_costs"].items()]
    cuda = data["cuda"]
    cuda_md = (f"CUDA: not run ({cuda['not_run']})" if "not_run" in cuda else
               "CUDA provider vs CPU (raw session, score only)\n\n" +
               markdown_table(cuda["rows"], ["batch", "cuda_windows_per_s",
                                             "cpu_windows_per_s"]) +
               f"\n\nGPU faster from batch {cuda['gpu_faster_from_batch']}")
    return (f"ONNX Runtime CPU, window {WINDOW}, 1 feature, the outputs the worker asks for; "
            "raw session.run with 1, 2 and ORT's default intra-op threads, the worker's "
            "scoring stage (Pipeline.score) with 1 and 2 on the same session as raw, call by "
            "call in alternation, fastest call of each (ratio_N); ratio = the stage's fastest "
            "/ raw's fastest over both counts (fastest_threads: raw's faster count; "
            "ratio_at_raw_fastest: ratio_N there), target >= 0.9 at batch >= 64; "
            "auto_threads = what the worker's default (timed at model load) chose\n\n" + table +
            f"\n\nFastest thread count at batch >= 64: {th['fastest'] or 'ORT default'} "
            f"(votes {th['votes']}); the worker's default (Settings.intra_op_threads = "
            f"{th['worker_default']}, -1: timed at model load) chose the fastest count in "
            f"{th['worker_ran_fastest']} of those rows; raw at its choice / raw at the fastest "
            f"count, worst of those rows: {th['worst_auto_vs_fastest']:.3f}"
            "\n\nPython per-record costs (dense model)\n\n" +
            markdown_table(cost_rows, ["stage", "microseconds"]) + "\n\n" + cuda_md)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="more repetitions, longer timings")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    args = parser.parse_args(argv)
    run(args.full, args.out)


if __name__ == "__main__":
    main()
