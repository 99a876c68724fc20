"""NAB realTweets under the causal protocol: train on each file's first 15%, score it all.

For every model family asked for, each of the 10 files is trained with
``--train-fraction 0.15`` and scored through the worker's pipeline (the ``alert`` column is
the detector's real alerting decision); the alerts are scored with NAB's standard,
reward-low-FP and reward-low-FN profiles and normalised per group as DESIGN.md says.

    python benchmarks/nab_realtweets.py --families dense conv1d --out benchmarks/results

Writes ``nab_realtweets.json`` and ``nab_realtweets.md``. Needs ../shared/data/nab.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from offline_training.nab import PROFILES, load_windows, score_corpus, window_indices
from offline_training.train import train
from offline_training.train_options import TrainOptions
from offline_training.trainer import TrainConfig
from stream_detector.files.batch import load_runtime, score_records
from stream_detector.files.history import load_source

ROOT = Path(__file__).resolve().parents[1]
NAB = ROOT.parent / "shared" / "data" / "nab"
PUBLISHED = {"ARTime": 81.8, "contextOSE": 74.5, "Numenta HTM": 68.0, "KNN-CAD": 64.3,
             "Random Cut Forest": 48.1}


def run_file(path: Path, family: str, registry: Path, epochs: int) -> dict[str, Any]:
    started = time.perf_counter()
    report = train(TrainOptions(data=path, out=registry, family=family, train_fraction=0.15,
                                train=TrainConfig(max_epochs=epochs, progress=False),
                                plots=False))
    trained = time.perf_counter() - started
    runtime = load_runtime(report.path, "cpu")
    records = list(load_source(path).records)
    rows = [row for _, row in score_records(runtime, records)]
    alert_ends = {row.timestamp for row in rows if row.alert}
    stamps = pd.read_csv(path).timestamp
    iso = stamps.str.replace(" ", "T", regex=False)
    detections = iso.isin(alert_ends).to_numpy()
    return {"detections": detections, "timestamps": pd.to_datetime(stamps).to_numpy(),
            "train_seconds": trained, "total_seconds": time.perf_counter() - started,
            "alerts": int(detections.sum()), "threshold": report.card.thresholds.default,
            "raw_scores": np.array([r.raw_score for r in rows]),
            "detection": report.card.detection}


def run_family(
    family: str, epochs: int, dump: Path | None = None, nab: Path = NAB
) -> dict[str, Any]:
    windows = load_windows(nab / "labels" / "combined_windows.json")
    files = sorted((nab / "data" / "realTweets").glob("*.csv"))
    per_file: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            per_file[f"realTweets/{path.name}"] = run_file(path, family, Path(tmp), epochs)
    if dump is not None:  # raw scores, to study detection settings without retraining
        dump.mkdir(parents=True, exist_ok=True)
        np.savez(dump / f"{family}.npz", **{k: v["raw_scores"] for k, v in per_file.items()})
        (dump / f"{family}.json").write_text(json.dumps(
            {k: v["detection"] for k, v in per_file.items()}))
    detections = {k: v["detections"] for k, v in per_file.items()}
    wins = {k: window_indices(v["timestamps"], windows[k]) for k, v in per_file.items()}
    scores = {profile: score_corpus(detections, wins, profile) for profile in PROFILES}
    std = scores["standard"]
    return {
        "family": family,
        "normalized": {p: round(s.normalized, 2) for p, s in scores.items()},
        "detected_windows": sum(f.detected_windows for f in std.files.values()),
        "windows": sum(f.windows for f in std.files.values()),
        "false_positives": sum(f.fp for f in std.files.values()),
        "train_seconds_mean": round(
            float(np.mean([v["train_seconds"] for v in per_file.values()])), 1),
        "files": {k: {"alerts": v["alerts"], "threshold": round(v["threshold"], 3),
                      "score": round(std.files[k].score, 3),
                      "detected": std.files[k].detected_windows} for k, v in per_file.items()},
    }


def markdown(results: list[dict[str, Any]]) -> str:
    lines = ["| detector | standard | reward low FP | reward low FN | windows found | FP | "
             "train s/file |", "|---|---|---|---|---|---|---|"]
    for r in results:
        n = r["normalized"]
        lines.append(f"| stream-detector {r['family']} | {n['standard']} | "
                     f"{n['reward_low_FP_rate']} | {n['reward_low_FN_rate']} | "
                     f"{r['detected_windows']}/{r['windows']} | {r['false_positives']} | "
                     f"{r['train_seconds_mean']} |")
    for name, value in PUBLISHED.items():
        lines.append(f"| {name} (published) | {value} | | | | | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=["dense"])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--dump", type=Path, default=None, help="save raw scores here")
    args = parser.parse_args()
    results = []
    for family in args.families:
        result = run_family(family, args.epochs, args.dump)
        results.append(result)
        print(json.dumps({k: v for k, v in result.items() if k != "files"}), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "nab_realtweets.json").write_text(json.dumps(results, indent=2))
    (args.out / "nab_realtweets.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
