"""Detection quality on the demo's generated physics events (part of detection_quality.py).

Two questions, each answered through the worker's own scoring path (``score_records``):

1. Single events: how well does the event model's score separate signal from background?
   The model trains on a generated *background-only* sample (as the CERN seed trains on
   Standard Model events), then scores the demo's events (``make_events(seed=0)``: 10,000
   events, 1% dijet resonance at 500 GeV), which it never saw; ROC AUC by scikit-learn.
   Reported for the demo's training options over three model seeds, and for the plain mean
   squared error (``error_norm`` "none") as the ablation.
2. Samples: the hybrid's NPLM test compares a *sample* of a key's recent events with the
   reference, so its p-value belongs to the sample. A hybrid model trained on background
   tests consecutive, non-overlapping samples of ``SAMPLE`` events (``every`` =
   ``sample_size``): background-only samples give the calibration of the test under the
   null (share of p below 0.01 and 0.05, Kolmogorov-Smirnov distance of the p-values from
   uniform); samples with signal injected at a few fractions give its power. The sample's
   p-value combines the NPLM shape test of the events the AE stage left with the count of
   those it took (``stream_detector.core.hybrid``); the shape test alone is reported too.

    python benchmarks/detection_quality.py --only events     # about 2 minutes on 2 cores
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from offline_training import synthetic_events as syn
from offline_training.train import train
from offline_training.train_options import TrainOptions
from offline_training.trainer import TrainConfig
from stream_detector.files.batch import load_runtime, score_records
from stream_detector.files.history import load_source

MODEL_SEEDS = (0, 1, 2)
SAMPLE = 250  # events per NPLM sample (the hybrid's default sample_size)
NULL_SAMPLES = 200
SIGNAL_SAMPLES = 40
FRACTIONS = (0.005, 0.01, 0.02, 0.05)
ALPHA = 0.01


def _train(path: Path, registry: Path, epochs: int, **options: Any) -> Path:
    report = train(TrainOptions(data=path, out=registry, plots=False,
                                train=TrainConfig(max_epochs=epochs, progress=False,
                                                  num_threads=1), **options))
    return report.path


def _background(folder: Path, name: str, events: int, seed: int) -> Path:
    sample = syn.make_events(syn.EventsConfig(events=events, signal_fraction=0.0), seed=seed)
    return syn.write_events(folder / f"{name}.h5", sample)


def events_auc(epochs: int, folder: Path, options: dict[str, Any]) -> dict[str, Any]:
    """ROC AUC of the event model's score on the demo's events, trained on background."""
    from sklearn.metrics import roc_auc_score

    test = syn.make_events(seed=0)  # the events `stream-detector demo --kind events` plays
    records = list(load_source(syn.write_events(folder / "demo_events.h5", test)).records)
    options = {**options, "train_fraction": 1.0}  # the training file is all background

    def auc(seed: int, **extra: Any) -> float:
        data = _background(folder, f"background_{seed}", test.features.shape[0], 100 + seed)
        name = f"events{seed}{extra.get('error_norm', '')}"
        model = _train(data, folder / "models", epochs, name=name, **{**options, **extra,
                                                                      "seed": seed})
        scores = [row.score for _, row in score_records(load_runtime(model, "cpu"), records)]
        return round(float(roc_auc_score(test.labels, scores)), 3)

    by_seed = [auc(seed) for seed in MODEL_SEEDS]
    return {"roc_auc": by_seed[0], "roc_auc_seeds": by_seed,
            "roc_auc_plain_mse": auc(0, error_norm="none"),
            "events": int(test.labels.size), "signal": int(test.labels.sum()),
            "trained_on": "background only (a separate generated sample, seeds 100-102)"}


def _p_values(model: Path, samples: int, fraction: float, seed: int
              ) -> tuple[list[tuple[float, float]], int]:
    """(sample p-value, NPLM shape-only p-value) of ``samples`` consecutive samples of one
    stream; how many events the AE stage took."""
    config = syn.EventsConfig(events=samples * SAMPLE * 2, signal_fraction=fraction)
    events = syn.make_events(config, seed=seed)
    runtime = load_runtime(model, "cpu")
    records = list(load_source(syn.write_events(model.parent / f"stream_{seed}.h5", events))
                   .records)
    p_values: list[tuple[float, float]] = []
    ae_stage = 0
    for scored, _ in score_records(runtime, records):
        ae_stage += scored.raw_score > runtime.hybrid.section.ae_threshold  # type: ignore[union-attr]
        if scored.nplm is not None:
            p_values.append((scored.nplm.p_value, scored.nplm.p_shape))
        if len(p_values) == samples:
            break
    return p_values, int(ae_stage)


def nplm_samples(epochs: int, folder: Path, options: dict[str, Any]) -> dict[str, Any]:
    """NPLM p-values per sample: calibration under the null and power per signal fraction."""
    from scipy import stats

    data = _background(folder, "hybrid_background", 20_000, 200)
    model = _train(data, folder / "hybrid", epochs, name="hybrid", family="hybrid",
                   train_fraction=1.0, threshold_method=options["threshold_method"],
                   threshold_value=options["threshold_value"], detection=options["detection"],
                   nplm={"sample_size": SAMPLE, "every": SAMPLE})
    null, _ = _p_values(model, NULL_SAMPLES, 0.0, 300)
    p, shape = np.asarray(null).T
    result: dict[str, Any] = {"sample_size": SAMPLE, "alpha": ALPHA, "null": {
        "samples": int(p.size), "share_below_0.01": round(float(np.mean(p < 0.01)), 3),
        "share_below_0.05": round(float(np.mean(p < 0.05)), 3),
        "ks_distance_from_uniform": round(float(stats.kstest(p, "uniform").statistic), 3),
        "median_p": round(float(np.median(p)), 3),
        "shape_only_share_below_0.01": round(float(np.mean(shape < 0.01)), 3)}, "signal": {}}
    for i, fraction in enumerate(FRACTIONS):
        got, ae_stage = _p_values(model, SIGNAL_SAMPLES, fraction, 400 + i)
        q, q_shape = np.asarray(got).T
        result["signal"][str(fraction)] = {
            "samples": int(q.size), "median_p": float(f"{np.median(q):.3g}"),
            "share_below_alpha": round(float(np.mean(q < ALPHA)), 3),
            "shape_only_share_below_alpha": round(float(np.mean(q_shape < ALPHA)), 3),
            "events_left_to_the_ae_stage": ae_stage}
    return result


def markdown(events: dict[str, Any]) -> list[str]:
    """The events tables of docs/detection_quality.md."""
    auc = events["auc"]
    lines = ["", "| events (demo data, model trained on background only) | ROC AUC |",
             "|---|---|",
             "| default (error over its spread per feature, RMS), model seed 0 | "
             f"{auc['roc_auc']} |",
             f"| same, model seeds {', '.join(map(str, MODEL_SEEDS))} | "
             f"{', '.join(map(str, auc['roc_auc_seeds']))} |",
             f"| ablation: plain mean squared error | {auc['roc_auc_plain_mse']} |"]
    nplm = events.get("nplm")
    if nplm:
        null = nplm["null"]
        lines += ["", f"| hybrid, p-value per sample of {nplm['sample_size']} events | "
                  f"samples | median p | share p < {nplm['alpha']} | share p < 0.05 | "
                  f"NPLM shape test alone: share p < {nplm['alpha']} |",
                  "|---|---|---|---|---|---|",
                  f"| background only (null; KS distance from uniform "
                  f"{null['ks_distance_from_uniform']}) | {null['samples']} | {null['median_p']} "
                  f"| {null['share_below_0.01']} | {null['share_below_0.05']} | "
                  f"{null['shape_only_share_below_0.01']} |"]
        for fraction, row in nplm["signal"].items():
            lines.append(f"| signal injected: {float(fraction):.1%} of events | {row['samples']} "
                         f"| {row['median_p']} | {row['share_below_alpha']} | | "
                         f"{row['shape_only_share_below_alpha']} |")
    return lines
