"""A generated held-out proxy: the default detector on metric-like families it was not tuned on.

The held-out NAB groups must not be read, so this part stands in for them with
:mod:`offline_training.synthetic_heldout` (cpu, sensor, traffic, price and demand families,
1-10 minute cadences, irregular sampling; the generator was fixed before any detector was
scored on it). Same protocol as the NAB part: each file's model trains on its first 15%
with the default options, the whole file is scored once through the worker's pipeline
(``detection_replay.trace``) and each ablation variant re-decides it; NAB scores
(standard, reward-low-FP, reward-low-FN) are normalised per family. Baselines, computed here
on the same files:

- the windowed Gaussian of NAB (``windowedGaussian``): mean and standard deviation of a
  sliding window of past values (6,400 values, moved every 100), score ``1 - Q(|z|)``; its
  threshold is chosen per profile on the whole generated corpus, as NAB optimises each
  published detector's threshold (which favours the baseline: the default has no such
  tuning);
- "AE only": the default's own models re-decided without the seasonal and shift components.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from offline_training.nab import PROFILES, score_corpus
from offline_training.synthetic_heldout import FAMILIES, make_heldout
from offline_training.synthetic_series import LabelledSeries, write_series_csv
from stream_detector.files.history import load_source

try:
    from benchmarks import detection_replay
except ModuleNotFoundError:  # run as a script: benchmarks/ is on the path
    import detection_replay  # type: ignore[no-redef]

__all__ = ["GAUSSIAN", "HELDOUT_SEEDS", "heldout_quality", "markdown", "windowed_gaussian"]

HELDOUT_SEEDS = range(6)
GAUSSIAN = "windowed Gaussian (NAB's; threshold optimised per profile on this corpus)"
_Z_GRID = tuple(float(z) for z in np.arange(2.0, 12.01, 0.25))
_Files = dict[str, np.ndarray]  # "family/seed" -> one alert flag per row


def windowed_gaussian(values: np.ndarray, window: int = 6400, step: int = 100) -> np.ndarray:
    """NAB's windowed Gaussian, as |z| (``1 - Q(|z|)`` is NAB's score, monotone in |z|).

    Each value is judged against the mean and standard deviation of the past values in
    the window (all past values until ``window`` are seen, then the window moves every
    ``step`` values); the first value scores 0, a zero deviation counts as 1e-6.

    Parameters
    ----------
    values
        float (n,), in arrival order.

    Returns
    -------
    numpy.ndarray
        float (n,) |z| of each value against its past.

    >>> bool(windowed_gaussian(np.array([1.0, 1.0, 1.0, 4.0]))[-1] > 1e6)
    True
    """
    out = np.zeros(values.size)
    data: list[float] = []
    buffer: list[float] = []
    mean, sd = 0.0, 1e-6
    for i, x in enumerate(values.astype(float)):
        if data:
            out[i] = abs(x - mean) / sd
        if len(data) < window:
            data.append(x)
        else:
            buffer.append(x)
            if len(buffer) < step:
                continue
            data = data[step:] + buffer
            buffer = []
        mean, sd = float(np.mean(data)), float(np.std(data)) or 1e-6
    return out


def gaussian_score(z: np.ndarray) -> np.ndarray:
    """NAB's score ``1 - Q(z)`` of |z| values (0.5 at z 0, towards 1 far out).

    >>> [round(float(v), 4) for v in gaussian_score(np.array([0.0, 3.0]))]
    [0.5, 0.9987]
    """
    return np.array([1.0 - 0.5 * math.erfc(v / math.sqrt(2.0)) for v in z])


def _alerts_by_row(one: LabelledSeries, scored: detection_replay.Trace,
                   flags: list[bool]) -> np.ndarray:
    """One flag per row of ``one``: the window ending at that row alerted."""
    position = {int(t): i for i, t in enumerate(one.timestamps.astype(np.int64))}
    out = np.zeros(one.values.size, dtype=bool)
    for stamp, flag in zip(scored.stamps, flags, strict=True):
        if flag:
            out[position[pd.Timestamp(stamp.removesuffix("Z")).value]] = True
    return out


def heldout_detections(
    epochs: int, folder: Path, train: Callable[..., Path], variants: Mapping[str, dict[str, Any]],
    seeds: range = HELDOUT_SEEDS, families: tuple[str, ...] = FAMILIES,
) -> tuple[dict[str, _Files], dict[str, LabelledSeries], dict[str, np.ndarray]]:
    """Per variant, per ``family/seed``: alert flags per row; the labelled series; the
    windowed Gaussian's |z| per row. ``train(path, registry, epochs, **options)`` trains
    one file's model with the default options and returns its registry folder."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, _Files] = {name: {} for name in variants}
    series: dict[str, LabelledSeries] = {}
    gauss: dict[str, np.ndarray] = {}
    for family in families:
        for seed in seeds:
            name = f"{family}/{seed}"
            one = series[name] = make_heldout(family, seed)
            path = write_series_csv(folder / f"{family}_{seed}.csv", one)
            model = train(path, folder / "models", epochs, train_fraction=0.15,
                          name=f"{family}{seed}")
            scored = detection_replay.trace(model, list(load_source(path).records))
            for variant, overrides in variants.items():
                out[variant][name] = _alerts_by_row(
                    one, scored, detection_replay.replay(scored, overrides))
            gauss[name] = windowed_gaussian(one.values)
            print(f"heldout {name}: {int(out['default'][name].sum())} alerts", flush=True)
    return out, series, gauss


def family_scores(files: _Files, series: Mapping[str, LabelledSeries]) -> dict[str, Any]:
    """NAB scores normalised per family (three profiles), windows found, false positives
    and recall per anomaly kind (a kind's window counts as found when any alert is in it)."""
    result: dict[str, Any] = {}
    for family in sorted({k.split("/")[0] for k in files}, key=FAMILIES.index):
        mine = {k: v for k, v in files.items() if k.split("/")[0] == family}
        rows = {k: [(a.window_start, a.window_end) for a in series[k].anomalies] for k in mine}
        scores = {p: score_corpus(mine, rows, p) for p in PROFILES}
        found: dict[str, list[bool]] = {}
        for k, flags in mine.items():
            for a in series[k].anomalies:
                found.setdefault(a.kind, []).append(bool(flags[a.window_start:a.window_end + 1]
                                                         .any()))
        std = scores["standard"]
        result[family] = {
            **{p: round(s.normalized, 1) for p, s in scores.items()},
            "windows_found": sum(f.detected_windows for f in std.files.values()),
            "windows": sum(f.windows for f in std.files.values()),
            "false_positives": sum(f.fp for f in std.files.values()),
            "recall": {kind: round(float(np.mean(v)), 2) for kind, v in sorted(found.items())}}
    return result


def _corpus_normalised(files: _Files, series: Mapping[str, LabelledSeries], profile: str) -> float:
    rows = {k: [(a.window_start, a.window_end) for a in series[k].anomalies] for k in files}
    return score_corpus(files, rows, profile).normalized


def gaussian_thresholds(gauss: Mapping[str, np.ndarray],
                        series: Mapping[str, LabelledSeries]) -> dict[str, float]:
    """Per profile, the |z| threshold with the best normalised score over all files (NAB's
    threshold optimisation, done on the corpus being scored)."""
    return {p: max(_Z_GRID, key=lambda z, p=p: _corpus_normalised(
        {k: v >= z for k, v in gauss.items()}, series, p)) for p in PROFILES}


def heldout_quality(epochs: int, folder: Path, train: Callable[..., Path],
                      variants: Mapping[str, dict[str, Any]],
                      seeds: range = HELDOUT_SEEDS) -> dict[str, Any]:
    """The whole part: per detector (the default, each variant, the windowed Gaussian at
    each profile's threshold), per family: :func:`family_scores`."""
    began = time.monotonic()
    detections, series, gauss = heldout_detections(epochs, folder, train, variants, seeds)
    detectors = {name: family_scores(files, series) for name, files in detections.items()}
    thresholds = gaussian_thresholds(gauss, series)
    per_profile = {p: family_scores({k: v >= z for k, v in gauss.items()}, series)
                   for p, z in thresholds.items()}
    # each profile's figure at its own threshold; windows, FPs and recall at the standard's
    detectors[GAUSSIAN] = {f: {**per_profile["standard"][f],
                               **{p: per_profile[p][f][p] for p in PROFILES}}
                           for f in FAMILIES}
    return {"seeds": list(seeds), "detectors": detectors,
            "gaussian_z": thresholds, "seconds": round(time.monotonic() - began)}


def _mean(cells: Mapping[str, Any], profile: str) -> float:
    return round(float(np.mean([cells[f][profile] for f in FAMILIES])), 1)


def markdown(result: Mapping[str, Any]) -> list[str]:
    """The part's tables: NAB scores per family (standard / low FP / low FN) per detector,
    then windows found, false positives and recall per kind of the default and baselines."""
    seeds = result["seeds"]
    lines = ["", f"Generated held-out proxy (`--only heldout`; each family x seeds {seeds[0]}-"
             f"{seeds[-1]}; NAB score standard / reward-low-FP / reward-low-FN, normalised per "
             "family):", "",
             "| detector | " + " | ".join(FAMILIES) + " | mean standard |",
             "|---|" + "---|" * (len(FAMILIES) + 1)]
    for name, cells in result["detectors"].items():
        row = [f"{c['standard']} / {c['reward_low_FP_rate']} / {c['reward_low_FN_rate']}"
               for c in (cells[f] for f in FAMILIES)]
        lines.append(f"| {name} | " + " | ".join(row) + f" | {_mean(cells, 'standard')} |")
    lines += ["", "| held-out proxy, per family | detector | windows found | false positives | "
              "recall per kind |", "|---|---|---|---|---|"]
    shown = [n for n in ("default", "without the seasonal components (AE z-score only)",
                         GAUSSIAN) if n in result["detectors"]]
    for family in FAMILIES:
        for name in shown:
            c = result["detectors"][name][family]
            recall = ", ".join(f"{k} {v}" for k, v in c["recall"].items())
            lines.append(f"| {family} | {name} | {c['windows_found']}/{c['windows']} | "
                         f"{c['false_positives']} | {recall} |")
    z = ", ".join(f"{p} {v}" for p, v in result["gaussian_z"].items())
    lines += ["", f"Windowed Gaussian thresholds (|z|): {z}. This part took "
              f"{result['seconds']} s."]
    return lines
