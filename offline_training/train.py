"""``stream-detector train``: a data file in, a registry entry (model.onnx + card.json) out.

    load (replay's record builder: the worker sees the same records) -> causal split
    -> scale (fitted on the training part only, per key for panels)
    -> windows -> fit (PyTorch) -> export ONNX (+ parity check)
    -> calibrate: the worker's own pipeline scores the training part; thresholds are
       quantiles of its detection scores -> card.json (written last) -> plots

Calibration runs through :class:`stream_detector.core.pipeline.Pipeline`, so a threshold means
the same thing offline and in the worker.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from offline_training.calibration import calibrate_per_key
from offline_training.durations import DURATION_DEFAULTS, detection_windows
from offline_training.scaling import fit_scaler, fit_scaler_per_key
from offline_training.train_summary import training_keys
from offline_training.trainer import TrainConfig, TrainResult
from schemas.card import ModelCard
from schemas.events import SourceRef, ThresholdSource
from schemas.kinds import CalibrationMethod, RecordKind
from schemas.records import Record
from stream_detector.core.detection import DetectionParams, season_rows
from stream_detector.core.registry import sha256_file
from stream_detector.core.scoring import signed_log1p
from stream_detector.core.timing import cadence_s
from stream_detector.exceptions import DataError

__all__ = ["TrainOptions", "TrainReport", "train", "split_records", "DEFAULTS"]

# The default model: what `train` builds without --model. Chosen on NAB realTweets and
# the two artificial groups under the causal protocol (benchmarks/detection_quality.py), one
# configuration for all: a small dense AE on 24-step windows of standard-scaled values,
# scoring the newest 8 steps; its log score and the value's change from one season earlier
# (a day: detection.season_rows of the training cadence) are z-scores against the key's own
# history, the detection score is the larger (the seasonal one weighed 0.6), alerting at
# 5.5 sigma at most once a day (288 five-minute windows). The detection defaults hold for
# every family on series and sales; events keep raw defaults. Series are scaled without a
# log: on counts, log1p blows up the noise of the quiet hours (0 -> 1 -> 0 tweets) until it
# drowns real spikes (NAB 41-50 with log1p, 61-63 without, over three seeds).
DEFAULTS: dict[str, Any] = {
    "family": "dense", "window": 24, "last": 8,
    "transform": {"series": "none", "sales": "log1p", "events": "none"},
    # durations, turned into windows with the learned cadence (offline_training/durations.py)
    "detection": {**DURATION_DEFAULTS, "offset_factor": 3.0, "season_weight": 0.6,
                  "shift_weight": 1.0, "season_gate": 1.0},
    "threshold_method": {True: "sigma", False: "percentile"},  # by detection.normalise
    # how the score weighs features, per record kind (offline_training.models.ScoringHead):
    # "spread" divides each feature's squared error by its spread on the held-out validation
    # windows and takes the root mean square. Events: ROC AUC 0.86 -> 0.97 between signal and
    # background (benchmarks/detection_quality.py); series stay plain (one feature).
    "error_norm": {"events": "spread"},
    "threshold_value": {"sigma": 5.5, "percentile": 99.5, "contamination": 0.005,
                        "fpr": 0.005},
}

# Export parity of a trained model: 1e-5 absolute plus this share of its largest output.
PARITY_RTOL = 1e-5


@dataclass
class TrainOptions:
    """Everything ``train`` needs; the CLI fills it from flags and an optional config file."""

    data: Path
    out: Path
    family: str = DEFAULTS["family"]
    kind: RecordKind | None = None
    key: str | None = None
    name: str | None = None
    version: str | None = None
    window: int | None = None
    stride: int = 1
    last: int | None = None  # score the newest `last` steps of a window (None: all)
    train_fraction: float | None = None
    train_until: str | None = None
    scaler: str = "standard"
    transform: str | None = None
    threshold_method: CalibrationMethod | None = None  # None: sigma when scores are normalised
    threshold_value: float | None = None  # None: the method's default (DEFAULTS)
    error_norm: str | None = None  # "none" or "spread"; None: the record kind's (DEFAULTS)
    per_key_thresholds: bool = False
    model_config: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    detection: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    plots: bool = True
    nplm: dict[str, Any] = field(default_factory=dict)  # hybrid: offline_training.hybrid
    strict_time: bool = False  # refuse repeated/out-of-order times (default: flag them)
    step: Callable[[str], None] = field(default=lambda _: None, repr=False)  # progress text
    # which keys the model serves in a worker: "trained" (the keys in the data), "all" (every
    # key of its kind) or "pattern:REGEX"; None: trained for series, all for sales and events
    serves: str | None = None


@dataclass
class TrainReport:
    """Where the model went and what it took."""

    path: Path
    card: ModelCard
    result: TrainResult
    seconds: float
    plots: list[Path] = field(default_factory=list)


def split_records(
    records: Sequence[Record], fraction: float | None, until: str | None
) -> list[Record]:
    """The training part: per key, the first ``fraction`` of its records or those up to
    ``until`` (a causal split: a model never sees the future it will score)."""
    if fraction is not None and not 0.0 < fraction <= 1.0:
        raise DataError(f"--train-fraction must be in (0, 1], got {fraction}")
    by_key: dict[str, list[Record]] = {}
    for r in records:
        by_key.setdefault(r.key, []).append(r)
    part: list[Record] = []
    if until is not None:
        limit = int(np.datetime64(until, "ns").astype(np.int64))
        return [r for r in records if r.epoch_ns <= limit]
    for rows in by_key.values():
        part.extend(rows[: max(1, int(len(rows) * (fraction or 1.0)))])
    return part


def _arrays(records: Sequence[Record]) -> dict[str, np.ndarray]:
    by_key: dict[str, list[list[float]]] = {}
    for r in records:
        by_key.setdefault(r.key, []).append(list(r.values))
    return {k: np.asarray(v, dtype=np.float32) for k, v in by_key.items()}


def _scaler_card(
    values: dict[str, np.ndarray], method: str, transform: str, per_key: bool
) -> dict[str, Any]:
    prep = {k: signed_log1p(v) if transform == "log1p" else v for k, v in values.items()}
    if per_key:
        scaler = fit_scaler_per_key(prep, method)
    else:
        scaler = fit_scaler(np.concatenate(list(prep.values())), method)
    return {**scaler.to_card(), "transform": transform}


def _windows(
    values: dict[str, np.ndarray], scaler: dict[str, Any], window: int, stride: int
) -> np.ndarray:
    from stream_detector.core.scoring import ScaleTable
    from stream_detector.core.windows import sliding_windows

    table = ScaleTable(scaler, next(iter(values.values())).shape[1])
    parts = []
    for key, v in values.items():
        if len(v) < window:
            continue
        w = np.ascontiguousarray(sliding_windows(v, window, stride))
        parts.append(table.transform(w, [key] * len(w)))
    if not parts:
        raise DataError(f"no key has {window} training rows: lower --window or train on more")
    return np.concatenate(parts)


def _enough_windows(n: int, window: int, opts: TrainOptions) -> None:
    """The trainer's minimum (two windows to fit beside the validation part), as a DataError."""
    from offline_training.trainer import validation_size

    if n - validation_size(n, opts.train) < 2:
        need = next(k for k in range(n + 1, n + 10_000) if k - validation_size(k, opts.train) >= 2)
        raise DataError(
            f"{opts.data}: the training part gives {n} window(s) of {window} record(s); "
            f"training needs at least {need}: train on more rows (--train-fraction) or a "
            "smaller --window")


def _name(opts: TrainOptions) -> str:
    raw = opts.name or opts.data.stem
    return re.sub(r"[^A-Za-z0-9._-]", "-", raw).strip("-.")[:100] or "model"


def _version(root: Path, requested: str | None) -> str:
    if requested:
        return requested
    existing = [int(p.name) for p in root.glob("*") if p.name.isdigit()] if root.is_dir() else []
    return str(max(existing, default=0) + 1)


def _library_versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
            "numpy": np.__version__}


def _serves(opts: TrainOptions, kind: str, records: Sequence[Record]) -> dict[str, Any]:
    """The card's ``serves`` section (see :class:`schemas.card.ServesCard`)."""
    choice = opts.serves or ("trained" if kind == "series" else "all")
    if choice == "trained":
        return {"keys": sorted({r.key for r in records})}
    if choice == "all":
        return {}
    if choice.startswith("pattern:"):
        return {"pattern": choice.removeprefix("pattern:")}
    raise ValueError(f"serves must be trained, all or pattern:REGEX, got {choice!r}")


def _card(
    opts: TrainOptions, name: str, version: str, kind: str, features: list[str], window: int,
    scaler: dict[str, Any], sha: str, thresholds: dict[str, Any], detection: dict[str, Any],
    result: TrainResult, records: Sequence[Record],
) -> ModelCard:
    return ModelCard.model_validate({
        "name": name, "version": version, "family": opts.family,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "onnx_sha256": sha, "record_kind": kind, "window": window, "stride": opts.stride,
        "features": features, "scaler": scaler, "thresholds": thresholds,
        "detection": detection, "time": _time_section(kind, records),
        "serves": _serves(opts, kind, records),
        "metrics": {"train_loss": result.history[-1]["loss"] if result.history else None,
                    "val_loss": min((h["val_loss"] for h in result.history), default=None)},
        "training": {"config": opts.model_config, "train": asdict(opts.train),
                     "epochs": len(result.history), "best_epoch": result.best_epoch,
                     "stopped_early": result.stopped_early, "seconds": result.seconds,
                     "device": result.device, "history": result.history,
                     "rows": len(records), "train_fraction": opts.train_fraction,
                     "train_until": opts.train_until,
                     "last": opts.last, "seed": opts.seed, "data": str(opts.data)},
        "data_sha256": sha256_file(opts.data), "library_versions": _library_versions(),
    })


def _time_section(kind: str, records: Sequence[Record]) -> dict[str, float] | None:
    """The card's ``time`` section: the cadence the worker judges gaps and skew by.

    Feature events carry no regular cadence: they get none (late/repeated only).
    """
    if kind == "events":
        return None
    times: dict[str, list[int]] = {}
    for r in records:
        times.setdefault(r.key, []).append(r.epoch_ns)
    cadence = cadence_s([np.asarray(t, dtype=np.int64) for t in times.values()])
    return None if cadence is None else {"cadence_s": cadence}


def _calibration_scores(
    model_dir: Path, records: Sequence[Record], detection: dict[str, Any]
) -> tuple[dict[str, list[float]], list[float]]:
    """Detection scores of the training records, by key, through the worker's pipeline."""
    from stream_detector.core.key_state import DictStore
    from stream_detector.core.model_runtime import ModelRuntime
    from stream_detector.core.pipeline import Pipeline
    from stream_detector.core.registry import load_model
    from stream_detector.core.thresholds import ResolvedThreshold

    loaded = load_model(model_dir, preference="cpu")
    never = ResolvedThreshold(
        float("inf"), ThresholdSource(method="manual", version="calibration", scope="default")
    )
    runtime = ModelRuntime(loaded, lambda key: never)
    runtime.params = DetectionParams.from_card(detection)
    pipeline = Pipeline([runtime], DictStore())
    pending = pipeline.ingest(records, SourceRef(topic="calibration"))
    scored = pipeline.decide(pending, Pipeline.score(pending))
    by_key: dict[str, list[float]] = {}
    for s in scored:
        if not s.decision.warm_up:
            by_key.setdefault(s.pending.key, []).append(s.decision.detection_score)
    return by_key, [s.raw_score for s in scored]


def _detection(opts: TrainOptions, kind: str, records: Sequence[Record]) -> dict[str, Any]:
    """The card's detection section: the defaults (not for events) and the options, with
    durations as windows at the data's cadence, and the season (windows per day, or week)
    when the seasonal component is weighed in."""
    base = dict(DEFAULTS["detection"]) if kind != "events" else {}
    base.update(opts.detection)
    time = _time_section(kind, records)  # durations become windows at the data's cadence
    step_s = time["cadence_s"] * opts.stride if time else 0.0
    if base.get("season_weight", 0) and "season" not in base:
        base["season"] = season_rows(step_s * 1e9)
    return detection_windows(base, time["cadence_s"] if time else None, opts.stride)


def _threshold_rule(opts: TrainOptions, normalised: bool) -> tuple[CalibrationMethod, float]:
    """The calibration method and value: the options' or the defaults for a detector whose
    scores are (``normalised``) or are not z-scores against each key's history."""
    method: CalibrationMethod = opts.threshold_method or DEFAULTS["threshold_method"][normalised]
    value = opts.threshold_value
    return method, float(DEFAULTS["threshold_value"][method] if value is None else value)


def train(opts: TrainOptions) -> TrainReport:
    """Train, export, calibrate and register one model; see the module docstring."""
    from offline_training.export import export_onnx, verify_parity
    from offline_training.models import build_model, config_dict, make_time_weights
    from offline_training.trainer import fit
    from stream_detector.core.registry import publish_version
    from stream_detector.files.history import load_source

    started = time.perf_counter()
    source = load_source(opts.data, kind=opts.kind, key=opts.key, strict_time=opts.strict_time)
    records = list(source.records)
    part = split_records(records, opts.train_fraction, opts.train_until)
    fit_part, reference_part = _hybrid_split(opts, part)
    values = _arrays(fit_part)
    features = _feature_names(source.kind, records)
    window = opts.window or (1 if source.kind == "events" else DEFAULTS["window"])
    transform = opts.transform or DEFAULTS["transform"].get(source.kind, "none")
    scaler = _scaler_card(values, opts.scaler, transform, per_key=source.kind == "sales")
    windows = _windows(values, scaler, window, opts.stride)
    _enough_windows(len(windows), window, opts)

    family = _ae_family(opts.family, source.kind)
    model = build_model(family, window, len(features), opts.model_config, seed=opts.seed)
    opts.model_config = config_dict(model)
    result = fit(model, windows, opts.train)

    opts.step("exporting to ONNX and checking it against PyTorch")
    name = _name(opts)
    version = _version(opts.out / name, opts.version)
    final = opts.out / name / version
    if final.exists():
        raise DataError(f"{final} exists: choose another --version")
    staging = opts.out / name / f".{version}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    last = opts.last if opts.last is not None else (
        DEFAULTS["last"] if source.kind != "events" and window == DEFAULTS["window"] else None)
    opts.last = last
    weights = make_time_weights(window, last=last) if last else None
    head = _scoring_head(model, source.kind, windows, opts, weights)
    sha = export_onnx(head, window, len(features), staging / "model.onnx")
    verify_parity(head, staging / "model.onnx", rtol=PARITY_RTOL)

    detection = _detection(opts, source.kind, part)
    factor = float(detection.pop("offset_factor", 0.0))
    normalised = DetectionParams.from_card(detection).normalise
    method, value = _threshold_rule(opts, normalised)
    provisional = {"method": method, "value_param": value, "default": 0.0}
    card = _card(opts, name, version, source.kind, features, window, scaler, sha, provisional,
                 detection, result, part)
    card = card.model_copy(update={"training": {
        **card.training, **training_keys(records), "scoring": head.card_section()}})
    _write_card(staging, card)
    if factor > 0:  # log offset relative to the median training score (see detection.py)
        _, raw = _calibration_scores(staging, part, detection)
        detection["offset"] = factor * float(np.median(raw)) if raw else 0.0
    opts.step(f"calibrating the threshold ({method} {value:g}) on the training part's scores")
    by_key, _ = _calibration_scores(staging, part, detection)
    thresholds = calibrate_per_key(by_key, method, value, per_key=opts.per_key_thresholds,
                                   zscores=normalised)
    card = card.model_copy(update={"thresholds": card.thresholds.model_validate(
        thresholds.to_card()), "detection": detection})
    if opts.family == "hybrid":
        card = _with_nplm(card, staging, reference_part, opts)
    _write_card(staging, card)
    plots = _plots(staging, result, by_key, thresholds.default, normalised) if opts.plots else []
    publish_version(staging, final)  # one rename: workers never see a half-written version
    plots = [final / p.name for p in plots]
    return TrainReport(final, card, result, time.perf_counter() - started, plots)


def _scoring_head(
    model: Any, kind: str, windows: np.ndarray, opts: TrainOptions, weights: Any
) -> Any:
    """The exported scoring head: plain mean squared error, or (``error_norm`` "spread")
    each feature's error over its spread on the validation windows, fit never trained on."""
    from offline_training.models import ScoringHead, error_spread
    from offline_training.trainer import reconstruction_scores, validation_size

    norm = opts.error_norm or DEFAULTS["error_norm"].get(kind, "none")
    window = windows.shape[1]
    if norm == "none":
        return ScoringHead(model, window, weights)
    if norm != "spread":
        raise ValueError(f"error_norm must be none or spread, got {norm!r}")
    held_out = windows[-validation_size(len(windows), opts.train):]
    _, errors = reconstruction_scores(model, held_out)
    return ScoringHead(model, window, weights, feature_scale=error_spread(errors),
                       aggregate="rms")


def _ae_family(family: str, kind: str) -> str:
    if family != "hybrid":
        return family
    from offline_training.hybrid import ae_family

    return ae_family(kind)


def _hybrid_split(opts: TrainOptions, part: list[Record]) -> tuple[list[Record], list[Record]]:
    """Hybrid models hold the last part of each key's records out of the AE fit."""
    if opts.family != "hybrid":
        return part, []
    from offline_training.hybrid import hybrid_options, split_reference

    return split_reference(part, hybrid_options(opts.nplm)["reference_fraction"])


def _with_nplm(
    card: ModelCard, staging: Path, reference: list[Record], opts: TrainOptions
) -> ModelCard:
    from offline_training.hybrid import hybrid_options, nplm_section

    section = nplm_section(staging, reference, hybrid_options(opts.nplm), seed=opts.seed)
    training = {**card.training, "ae_family": _ae_family("hybrid", card.record_kind),
                "nplm": opts.nplm, "reference_records": len(reference)}
    return ModelCard.model_validate({**card.model_dump(), "nplm": section, "training": training})


def _feature_names(kind: str, records: Sequence[Record]) -> list[str]:
    if kind == "series":
        return ["value"]
    if kind == "sales":
        return ["sales"]
    from offline_training.synthetic import EVENT_FEATURES

    width = len(records[0].values) if records else 0
    return list(EVENT_FEATURES) if width == len(EVENT_FEATURES) else [
        f"f{i}" for i in range(width)]


def _write_card(directory: Path, card: ModelCard) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / "card.json.tmp"
    tmp.write_text(card.model_dump_json(indent=2))
    tmp.replace(directory / "card.json")


def _plots(
    directory: Path, result: TrainResult, by_key: dict[str, list[float]], threshold: float,
    normalised: bool,
) -> list[Path]:
    from offline_training import plots

    curves = {k: [h[k] for h in result.history] for k in ("loss", "val_loss")}
    score_name = plots.score_label(normalised)
    # PNG only: a registry version stays mostly the model (an interactive page embeds
    # plotly.js, 4.8 MB, once per file)
    out = list(plots.plot_history(curves, directory / "history", formats=("png",)))
    scores = np.concatenate([np.asarray(v) for v in by_key.values()]) if by_key else np.zeros(0)
    if scores.size:
        out += list(plots.plot_error_distribution(scores, threshold,
                                                  directory / "calibration_scores",
                                                  formats=("png",), xlabel=score_name))
    return out


def summary(report: TrainReport) -> dict[str, Any]:
    """A JSON-ready summary for the CLI."""
    card = report.card
    return {"path": str(report.path), "name": card.name, "version": card.version,
            "family": card.family, "window": card.window, "epochs": len(report.result.history),
            "device": report.result.device, "seconds": round(report.seconds, 2),
            "threshold": card.thresholds.default, "per_key": len(card.thresholds.per_key),
            "plots": [str(p) for p in report.plots]}


def dumps(report: TrainReport) -> str:
    return json.dumps(summary(report), indent=2)
