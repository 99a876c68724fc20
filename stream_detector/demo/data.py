"""``stream-detector demo``: the whole pipeline on one machine, end to end, in a few minutes.

    data (generated with labelled anomalies, or --data FILE) -> train (cached) ----+
    Kafka + redis-server (local, or --kafka/--redis) -> thresholds into Redis <----+
    -> worker subprocess -> replay of the data, paced over --duration
    -> anomaly events read back (live table) -> summary + HTML report

Everything lives under ``--out`` (default ``runs/demo``): the data, the trained models
(``models/<cache key>/``, keyed by the data's sha256 and the training options, so a second
run skips training) and the report. Each run uses topics and a consumer group of its own;
the worker, the broker and redis-server die with the demo, including on Ctrl-C.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from schemas.kinds import RecordKind
from stream_detector.core.registry import sha256_file
from stream_detector.demo.summary import (
    Quality,
    cache_key,
    detection_quality,
    roc_auc,
    signal_mask,
)

__all__ = ["DemoData", "DemoOptions", "prepare_data", "plan_model", "ModelPlan", "train_options",
           "labelled_windows", "event_ends", "quality_of", "roc_auc_of", "topics_for"]

_SEED = 0
_TRAIN_SEED = 100  # the events model's background-only training sample (as the benchmark)
_GENERATOR = "synthetic-v3"  # bump when the generated data changes shape
# Training per kind, checked on the generated data (seed 0). Series: the default model
# (dense AE, 24 steps, z-scores against the key's history). Sales: two weeks of days scoring
# only the newest day ("last": 1), raw errors of per-key scaled sales against one threshold
# (7-day alert suppression), so a bad day alerts on that day: 0.56 precision, 0.94 recall
# against 0.31/0.31 with the series defaults. Events: the event AE, raw, no history, trained
# on a separate background-only sample (seed 100), as benchmarks/events_quality.py does: on
# half of the played file, signal included, it learnt the signal too (precision/recall 0.06).
_TRAINING: dict[str, dict[str, Any]] = {
    # series: the default detector, one page per incident within half a day (144 five-minute
    # windows) instead of a day: the demo's anomalies are hours long and a day or two apart
    # (#11: seeds 0-4, contextual 0.8 -> 1.0, trend change 0.6 -> 0.8, precision 1.0 kept)
    "series": {"family": "dense", "train_fraction": 0.2, "detection": {"suppress": 144}},
    # sales: the default detector (z-scores against each key's history, weekly season),
    # one page per key per two weeks (#11: precision 0.56 -> 0.95 on seed 0, 0.48 -> 0.90 on 1)
    "sales": {"family": "dense", "train_fraction": 0.3, "window": 14,
              "extra": {"last": 1}, "detection": {"suppress": 14}},
    "events": {"family": "events", "train_fraction": 1.0, "threshold_method": "percentile",
               "threshold_value": 99.0,
               "detection": {"normalise": False, "warmup": 0, "suppress": 0}},
}


@dataclass(frozen=True)
class DemoOptions:
    """The command's options (see ``stream-detector demo --help``)."""

    kind: RecordKind = "series"
    duration: float = 60.0
    data: Path | None = None
    kafka: str | None = None
    redis: str | None = None
    rate: float | None = None
    out: Path = Path("runs/demo")
    live: bool = True
    epochs: int = 30
    ui: bool = True  # the live explorer (stream-detector ui) on the run's topics
    stay: bool = False  # keep everything up after the replay, until Ctrl-C


_Labels = dict[str, list[tuple[int, int]]]


@dataclass(frozen=True)
class DemoData:
    """The file to replay and, for generated data, its labelled windows (ns, inclusive)."""

    path: Path
    kind: RecordKind
    labels: dict[str, list[tuple[int, int]]] | None
    sha256: str = field(default="")
    kinds: dict[str, list[str]] = field(default_factory=dict)  # what each window holds
    # a separate training file (events: background only, another seed); None: train on path
    train_path: Path | None = None


def labelled_windows(stamps: np.ndarray, rows: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Row ranges (inclusive) of ``stamps`` (datetime64) as inclusive ns ranges.

    >>> t = np.array(["2020-01-01T00:00", "2020-01-01T00:05"], dtype="datetime64[ns]")
    >>> labelled_windows(t, [(0, 1)])
    [(1577836800000000000, 1577837100000000000)]
    """
    ns = stamps.astype("datetime64[ns]").astype(np.int64)
    return [(int(ns[lo]), int(ns[hi])) for lo, hi in rows]


def _training_background(folder: Path, events: int) -> Path:
    """The events model's training file: ``events`` background-only events, seed 100 (the
    played file uses seed 0), as ``benchmarks/events_quality.py`` trains."""
    from offline_training.synthetic_events import EventsConfig, make_events, write_events

    sample = make_events(EventsConfig(events=events, signal_fraction=0.0), seed=_TRAIN_SEED)
    return write_events(folder / "training_background.h5", sample)


def _generate(kind: RecordKind, folder: Path) -> tuple[Path, _Labels, dict[str, list[str]]]:
    """Write the kind's generated file; its labelled windows and their anomaly kinds."""
    from offline_training.synthetic_events import make_events, write_events
    from offline_training.synthetic_sales import make_sales, write_panel_csv
    from offline_training.synthetic_series import make_series, write_series_csv

    folder.mkdir(parents=True, exist_ok=True)
    if kind == "events":
        events = make_events(seed=_SEED)
        _training_background(folder, int(events.labels.size))
        path = write_events(folder / "synthetic_events.h5", events)
        # replay stamps event i at epoch + i seconds (see stream_detector.files.history)
        signal = np.flatnonzero(events.labels).astype(np.int64) * 10**9
        return path, {"events": [(int(t), int(t)) for t in signal]}, {}
    if kind == "series":
        one = make_series(seed=_SEED, key="synthetic_series")
        path = write_series_csv(folder / "synthetic_series.csv", one)
        series = {one.key: one}
    else:
        panel = make_sales(seed=_SEED)
        path = write_panel_csv(folder / "synthetic_sales.csv", panel)
        series = panel.series
    labels = {key: labelled_windows(s.timestamps, [(a.window_start, a.window_end)
                                                   for a in s.anomalies])
              for key, s in series.items()}
    return path, labels, {key: [a.kind for a in s.anomalies] for key, s in series.items()}


def prepare_data(opts: DemoOptions) -> DemoData:
    """The demo's data: ``--data`` as given, else generated once under ``--out/data``.

    Raises
    ------
    DataError
        ``--data`` cannot be read as records of ``opts.kind`` (checked before anything starts).
    """
    if opts.data is not None:  # read once now: a bad file is refused before any service starts
        from stream_detector.files.history import load_source

        load_source(opts.data, kind=opts.kind, limit=1)
        return DemoData(opts.data, opts.kind, None, sha256_file(opts.data))
    folder = opts.out / "data" / opts.kind
    labels_path = folder / "labels.json"
    if labels_path.is_file():
        stored = json.loads(labels_path.read_text())
        path = folder / stored["file"]
        if stored.get("generator") == _GENERATOR and path.is_file():
            labels = {k: [(int(a), int(b)) for a, b in v] for k, v in stored["labels"].items()}
            return DemoData(path, opts.kind, labels, sha256_file(path), stored["kinds"],
                            _train_path(opts.kind, folder))
    path, labels, kinds = _generate(opts.kind, folder)
    labels_path.write_text(json.dumps({"generator": _GENERATOR, "file": path.name,
                                       "labels": labels, "kinds": kinds}))
    return DemoData(path, opts.kind, labels, sha256_file(path), kinds,
                    _train_path(opts.kind, folder))


def _train_path(kind: RecordKind, folder: Path) -> Path | None:
    path = folder / "training_background.h5"
    return path if kind == "events" and path.is_file() else None


def train_options(opts: DemoOptions) -> dict[str, Any]:
    """The training options of a kind: what the model cache is keyed on (with the data)."""
    return {**_TRAINING[opts.kind], "kind": opts.kind, "epochs": opts.epochs, "seed": _SEED}


@dataclass(frozen=True)
class ModelPlan:
    """Where the model lives, and the command that trains it when the cache misses."""

    entry: Path
    cached: bool
    command: list[str] | None


def plan_model(opts: DemoOptions, data: DemoData) -> ModelPlan:
    """The model's registry entry for this data and these options (``models/<key>/<name>``,
    its newest version served); a training command only when it is not cached yet."""
    options = train_options(opts)
    train = data.train_path or data.path
    key = {**options, "train_data": sha256_file(train)} if data.train_path else options
    root = opts.out / "models" / cache_key(data.sha256, key)
    name = f"demo-{opts.kind}"
    if (root / name / "1" / "card.json").is_file():
        return ModelPlan(root / name, True, None)
    shutil.rmtree(root, ignore_errors=True)  # a half-trained entry from an interrupted run
    return ModelPlan(root / name, False, _train_command(train, root, name, options))


def _train_command(data: Path, root: Path, name: str, options: dict[str, Any]) -> list[str]:
    """``stream-detector train`` in a child process: it trains while this process starts
    Kafka, and Ctrl-C stops it at once (a thread could not be interrupted)."""
    config = root / "train-config.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    # one torch thread: on a shared 2-core box it trains these small AEs fastest
    config.write_text(json.dumps({"detection": options.get("detection", {}), "plots": False,
                                  "train": {"num_threads": 1}, **options.get("extra", {})}))
    return [sys.executable, "-m", "stream_detector", "train", "--data", str(data),
            "--out", str(root), "--name", name, "--version", "1", "--model", options["family"],
            "--kind", options["kind"], "--train-fraction", str(options["train_fraction"]),
            "--epochs", str(options["epochs"]), "--seed", str(options["seed"]),
            "--device", "cpu", "--no-progress", "--config", str(config),
            *[arg for flag in ("window", "threshold_method", "threshold_value") if flag in options
              for arg in (f"--{flag.replace('_', '-')}", str(options[flag]))]]


def event_ends(window_ends: Sequence[tuple[str, str]]) -> dict[str, list[int]]:
    """``(key, window_end text)`` pairs as ns per key.

    >>> event_ends([("a", "1970-01-01T00:00:01")])
    {'a': [1000000000]}
    """
    out: dict[str, list[int]] = {}
    for key, end in window_ends:
        stamp = np.datetime64(end.removesuffix("Z"), "ns").astype(np.int64)
        out.setdefault(key, []).append(int(stamp))
    return out


def quality_of(data: DemoData, window_ends: Sequence[tuple[str, str]]) -> Quality | None:
    """Precision/recall of events against the data's labels (None without labels)."""
    if data.labels is None:
        return None
    return detection_quality(event_ends(window_ends), data.labels)


def roc_auc_of(data: DemoData, rows: Sequence[Any]) -> float | None:
    """Events: ROC AUC of the scored windows' ``score`` (rows with ``timestamp``, ``score``:
    the offline pass, the worker's decisions) for signal against background; None for other
    kinds or without labels."""
    if data.kind != "events" or not data.labels:
        return None
    ends = [int(np.datetime64(r.timestamp, "ns").astype(np.int64)) for r in rows]
    return roc_auc([r.score for r in rows], signal_mask(ends, data.labels))


def topics_for(kind: str) -> dict[str, str]:
    """Topic names and a Faust app id of one demo run (a time stamp and a random suffix, so
    runs never share a topic or a consumer group)."""
    suffix = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    return {"input": f"demo-{kind}-in-{suffix}", "output": f"demo-{kind}-anomalies-{suffix}",
            "dead": f"demo-{kind}-dead-{suffix}", "app_id": f"sd-demo-{kind}-{suffix}",
            "suffix": suffix}


