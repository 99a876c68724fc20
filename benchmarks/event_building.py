"""Event building per alert: the path before the fast event path against the current one.

Every window of a batch of 1,024 (window 50, one feature, a window-mean model that exports
reconstructions, so events carry expected values) alerts. Both sides run the detection step
and build and serialise each window's event, timed in alternation in the same run:

- **before**: the per-alert steps as they were (a copy of the old decide loop): the scaler
  inverted over the whole window, a fresh ``Quality``, the provider asked of the ONNX
  session, ``datetime.isoformat`` per event, :func:`build_event_checked` (every nested
  model validated on its own; kept here as the reference), ``model_dump_json().encode()``;
- **after**: :meth:`Pipeline.decide` (cached model parts, one validation pass per event,
  last steps inverted once per batch) and :func:`event_json`, as the worker sends events.

Before timing, both sides build the batch's events with one fixed ``detected_at`` and must
give the same bytes. Reported: microseconds per alert and before / after, plus
``decide`` per window without alerts (the detection step alone).

    python -m benchmarks.event_building [--full]
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.bench_models import STANDARD_SCALER, window_mean_model, write_registry_model
from benchmarks.report import markdown_table, paired_rates, ratio, write_results
from benchmarks.scoring_ceiling import make_runtime, pending_windows
from schemas.card import ModelCard
from schemas.events import AnomalyEvent, ModelRef, Quality, SourceRef, event_id_for, utc_now_iso
from stream_detector.core.events import severity
from stream_detector.core.explanations import top_contributors
from stream_detector.core.thresholds import ResolvedThreshold

__all__ = ["build_event_checked", "main", "run"]

WINDOW = 50
BATCH = 1024


def _every_window_alerts(runtime: Any) -> Any:
    runtime.params = type(runtime.params)(normalise=False, warmup=0, suppress=1)
    return runtime


def build_event_checked(
    card: ModelCard,
    *,
    key: str,
    window_start: str,
    window_end: str,
    score: float,
    threshold: ResolvedThreshold,
    errors: npt.ArrayLike,
    observed: npt.ArrayLike,
    provider: str,
    source: SourceRef,
    expected: npt.ArrayLike | None = None,
    quality: Quality | None = None,
    p_value: float | None = None,
    raw_score: float | None = None,
    detected_at: str | None = None,
    top_k: int = 5,
    feature_names: Sequence[str] | None = None,
) -> AnomalyEvent:
    """``build_event`` as it was: every nested model built and validated on its own.

    The reference ``stream_detector.core.events.build_event`` must match (the same JSON for
    valid input, the same errors for invalid input) and is timed against.
    """
    if not math.isfinite(score):
        raise ValueError(f"score {score} is not finite: the model is broken, not the data")
    names = list(feature_names) if feature_names is not None else card.features
    return AnomalyEvent(
        event_id=event_id_for(card.name, card.version, key, window_end),
        key=key,
        record_kind=card.record_kind,
        window_start=window_start,
        window_end=window_end,
        detected_at=detected_at if detected_at is not None else utc_now_iso(),
        score=float(score),
        raw_score=None if raw_score is None else float(raw_score),
        threshold=threshold.value,
        threshold_source=threshold.source,
        severity=severity(float(score), threshold.value),
        p_value=p_value,
        observed=_old_floats(observed) or [],  # records are finite by validation
        expected=_old_floats(expected),
        top_contributors=top_contributors(errors, names, top_k),
        model=ModelRef(
            name=card.name,
            version=card.version,
            onnx_sha256=card.onnx_sha256,
            family=card.family,
        ),
        provider=provider,
        source=source,
        quality=quality if quality is not None else Quality(),
    )


def _old_floats(values: npt.ArrayLike | None) -> list[float] | None:
    """Plain floats for JSON; None when absent or not all finite (as the old path did)."""
    if values is None:
        return None
    arr = np.asarray(values, dtype=np.float64).ravel()
    return arr.tolist() if bool(np.isfinite(arr).all()) else None


def _old_utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def before(runtime: Any, items: list[Any], scores: Any, detected_at: str | None = None
           ) -> list[bytes]:
    """The path before the fast event path: a copy of the old ``Pipeline.decide`` loop and
    ``_event`` for a model without an NPLM stage, then ``model_dump_json().encode()``."""
    from stream_detector.core.detection import decide
    from stream_detector.core.model_runtime import Scored

    items = [run.item(0) for run in items]  # one window a run, as single-record messages
    results = {}
    for i, item in enumerate(items):
        raw = float(scores.scores[i])
        threshold = runtime.thresholds(item.key)
        decision = decide(item.state.detector, raw, threshold.value, runtime.params)
        expected = runtime.scale.inverse(scores.reconstructions[i : i + 1], [item.key])[0, -1]
        event = build_event_checked(
            runtime.card, key=item.key, window_start=item.window.start_text,
            window_end=item.window.end_text, score=decision.detection_score, raw_score=raw,
            threshold=threshold, errors=scores.errors[i], observed=item.window.values[-1],
            expected=expected, provider=runtime.loaded.scorer.provider, source=item.source,
            quality=Quality(imputed=item.imputed, late=item.window.late,
                            warm_up=decision.warm_up),
            detected_at=detected_at if detected_at is not None else _old_utc_now_iso(),
        )
        results[id(item)] = Scored(item, raw, decision, threshold, event, scores.errors[i])
    scored = [results[id(p)] for p in items]
    return [s.event.model_dump_json().encode() for s in scored if s.event is not None]


def after(pipeline: Any, items: list[Any], batches: list[Any], detected_at: str | None = None
          ) -> list[bytes]:
    """What the worker does now: :meth:`Pipeline.decide`, then :func:`event_json`."""
    from stream_detector.core.events import event_json

    return [event_json(s.event) for s in pipeline.decide(items, batches, detected_at)
            if s.event is not None]


def measure(model_dir: Path, repeats: int, seconds: float) -> dict[str, Any]:
    """Microseconds per alert before and after, timed in alternation; their ratio."""
    from stream_detector.core.key_state import DictStore
    from stream_detector.core.pipeline import Pipeline

    runtime = _every_window_alerts(make_runtime(model_dir, threshold=-1.0))
    pipeline = Pipeline([runtime], DictStore())
    items = pending_windows(runtime, BATCH)
    batches = Pipeline.score(items)
    fixed = "2026-11-22T08:00:00.000Z"
    old, new = before(runtime, items, batches[0], fixed), after(pipeline, items, batches, fixed)
    if old != new or len(new) != BATCH:
        raise AssertionError("the two paths built different events; fix that before timing")
    old_rate, new_rate = paired_rates(
        [lambda: before(runtime, items, batches[0]), lambda: after(pipeline, items, batches)],
        BATCH, repeats, seconds)
    quiet_runtime = make_runtime(model_dir, threshold=1e9)
    quiet = Pipeline([quiet_runtime], DictStore())
    quiet_items = pending_windows(quiet_runtime, BATCH)
    quiet_batches = Pipeline.score(quiet_items)
    (quiet_rate,) = paired_rates([lambda: quiet.decide(quiet_items, quiet_batches)], BATCH,
                                 repeats, seconds)
    return {"before_us_per_alert": 1e6 / old_rate, "after_us_per_alert": 1e6 / new_rate,
            "before_over_after": ratio(new_rate, old_rate),
            "decide_quiet_us_per_window": 1e6 / quiet_rate, "identical_bytes": True}


def run(full: bool = False, out_dir: Path | None = None) -> dict[str, Any]:
    """Measure, print, and write ``event_building.{json,md}``."""
    repeats, seconds = (15, 0.5) if full else (7, 0.25)
    with tempfile.TemporaryDirectory(prefix="sd-bench-") as tmp:
        model_dir = write_registry_model(Path(tmp) / "mean", window_mean_model(WINDOW, 1),
                                         name="bench-mean", window=WINDOW,
                                         scaler=STANDARD_SCALER)
        row = measure(model_dir, repeats, seconds)
    md = (f"Every window of a batch of {BATCH} alerts (window {WINDOW}, one feature, expected "
          "values exported); detection step + event building + JSON bytes per alert, the "
          "path before the fast event path and the current one timed in alternation.\n\n" +
          markdown_table([row], ["before_us_per_alert", "after_us_per_alert",
                                 "before_over_after", "decide_quiet_us_per_window",
                                 "identical_bytes"]))
    data = {"window": WINDOW, "batch": BATCH, "full": full, **row}
    path = write_results("event_building", data, md, out_dir)
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
