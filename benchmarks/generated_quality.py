"""Detection quality on generated series of other shapes (part of detection_quality.py).

The default's settings were chosen on NAB realTweets and the artificial groups; this part
asks whether they carry over to feeds of other kinds (server metrics, sensors, traffic,
prices, demand: :mod:`offline_training.synthetic_metrics`), none of them tuned on. Same
protocol and scorer as NAB: each series' model trains on its first 15% with the defaults,
the whole series is scored through the worker's own pipeline (``score_records``), and the
NAB standard score is normalised per family (4 seeds each), at the listed anomaly sizes and
at half of them. Detection variants re-score the same models.

    python benchmarks/detection_quality.py --only generated     # about 2 minutes on 2 cores
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from offline_training.nab import score_corpus
from offline_training.synthetic_metrics import METRIC_FAMILIES, make_metric
from offline_training.synthetic_series import write_series_csv
from stream_detector.files.history import load_source

SEEDS = range(4)
MAGNITUDES = (1.0, 0.5)

Trainer = Callable[..., Path]


class Replayer(Protocol):
    """``benchmarks/detection_replay.py``: score once, re-decide per variant."""

    def trace(self, model_dir: Path, records: list[Any]) -> Any: ...

    def replay(self, t: Any, overrides: dict[str, Any]) -> list[bool]: ...


def generated_quality(
    epochs: int, folder: Path, variants: Mapping[str, dict[str, Any]], train: Trainer,
    replayer: Replayer, families: tuple[str, ...] = tuple(METRIC_FAMILIES),
) -> dict[str, Any]:
    """Per variant, per magnitude: NAB standard score per family, windows found, FPs.

    ``train(path, registry, epochs, **options)`` is detection_quality's own; each series is
    scored once through the worker's pipeline and every variant re-decides its windows
    (``replayer``: detection_replay's ``trace`` and ``replay``).
    """
    detections: dict[str, dict[tuple[float, str], dict[str, np.ndarray]]] = {
        v: {} for v in variants}
    windows: dict[tuple[float, str], dict[str, list[tuple[int, int]]]] = {}
    folder.mkdir(parents=True, exist_ok=True)
    for magnitude in MAGNITUDES:
        for family in families:
            group = (magnitude, family)
            windows[group] = {}
            for seed in SEEDS:
                one = make_metric(family, seed, magnitude)
                name = f"{family}_{seed}_{magnitude}"
                path = write_series_csv(folder / f"{name}.csv", one)
                model = train(path, folder / "models", epochs, train_fraction=0.15)
                records = list(load_source(path).records)
                stamps = pd.DatetimeIndex(one.timestamps).strftime("%Y-%m-%dT%H:%M:%S")
                windows[group][name] = [(a.window_start, a.window_end) for a in one.anomalies]
                scored = replayer.trace(model, records)
                for variant, overrides in variants.items():
                    alerts = replayer.replay(scored, overrides)
                    ends = {t.removesuffix("Z")[:19]
                            for t, alert in zip(scored.stamps, alerts, strict=True) if alert}
                    detections[variant].setdefault(group, {})[name] = np.asarray(
                        stamps.isin(ends))
            print(f"generated {family} x{magnitude}: done", flush=True)
    return {v: _scores(detections[v], windows) for v in variants}


def _scores(
    detections: dict[tuple[float, str], dict[str, np.ndarray]],
    windows: dict[tuple[float, str], dict[str, list[tuple[int, int]]]],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for (magnitude, family), files in detections.items():
        s = score_corpus(files, windows[(magnitude, family)], "standard")
        out.setdefault(str(magnitude), {})[family] = {
            "standard": round(s.normalized, 1),
            "windows_found": sum(f.detected_windows for f in s.files.values()),
            "windows": sum(f.windows for f in s.files.values()),
            "false_positives": sum(f.fp for f in s.files.values())}
    for per_family in out.values():
        per_family["mean"] = round(float(np.mean([f["standard"] for f in per_family.values()])),
                                   1)
    return out


def markdown(result: Mapping[str, Any]) -> list[str]:
    """Table rows: one per variant and magnitude, NAB standard score per family."""
    if not result:
        return []
    first = next(iter(result.values()))
    families = [f for f in next(iter(first.values())) if f != "mean"]
    lines = ["", "## Generated series of other shapes (`--only generated`)", "",
             "NAB standard score, normalised per family (4 series each; windows found / "
             "labelled, false positives in brackets).", "",
             "| detector | anomaly size | mean | " + " | ".join(families) + " |",
             "|---|---|---|" + "---|" * len(families)]
    for variant, by_size in result.items():
        label = "stream-detector default" if variant == "default" else f"ablation: {variant}"
        for size, q in by_size.items():
            cells = [f"{q[f]['standard']} ({q[f]['windows_found']}/{q[f]['windows']}, "
                     f"{q[f]['false_positives']})" for f in families]
            lines.append(f"| {label} | x{size} | {q['mean']} | " + " | ".join(cells) + " |")
    return lines
