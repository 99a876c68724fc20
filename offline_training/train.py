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

import shutil
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from offline_training.calibration import calibrate_per_key, check_method, per_key_shortfall
from offline_training.scaling import fit_scaler, fit_scaler_per_key
from offline_training.train_card import (
    build_card,
    detection_section,
    feature_names,
    model_name,
    next_version,
    write_card,
)
from offline_training.train_options import (
    DEFAULTS,
    PARITY_RTOL,
    TrainOptions,
    TrainReport,
    detection_defaults,
)
from offline_training.train_summary import training_keys
from offline_training.trainer import TrainResult
from schemas.card import ModelCard
from schemas.events import SourceRef, ThresholdSource
from schemas.kinds import CalibrationMethod
from schemas.records import MAX_WINDOW_LENGTH, Record, parse_iso8601
from stream_detector.core.detection import DetectionParams
from stream_detector.core.scoring import signed_log1p
from stream_detector.exceptions import DataError

__all__ = ["split_records", "train"]


def split_records(
    records: Sequence[Record], fraction: float | None, until: str | None
) -> list[Record]:
    """The training part: per key, the first ``fraction`` of its records or those up to
    ``until`` (ISO 8601, naive = UTC; a causal split: a model never sees the future it will
    score).

    Raises
    ------
    DataError
        ``fraction`` outside (0, 1], ``until`` not ISO 8601, or no record up to ``until``.
    """
    if fraction is not None and not 0.0 < fraction <= 1.0:
        raise DataError(f"--train-fraction must be in (0, 1], got {fraction}")
    by_key: dict[str, list[Record]] = {}
    for r in records:
        by_key.setdefault(r.key, []).append(r)
    part: list[Record] = []
    if until is not None:
        try:
            limit = parse_iso8601(until) - datetime(1970, 1, 1, tzinfo=UTC)
        except ValueError:
            raise DataError(f"--train-until {until!r} is not an ISO 8601 time; give e.g. "
                            "2015-03-01 or 2015-03-01T12:00:00+01:00") from None
        limit_ns = limit // timedelta(microseconds=1) * 1000
        chosen = [r for r in records if r.epoch_ns <= limit_ns]
        if records and not chosen:
            first = min(records, key=lambda r: r.epoch_ns)
            raise DataError(f"--train-until {until}: no record is that old; the data starts at "
                            f"{first.timestamp_text}")
        return chosen
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


def _enough_windows(n: int, window: int, opts: TrainOptions, kind: str) -> None:
    """The trainer's minimum as a DataError: two windows to fit beside the validation part,
    and, when errors are normalised by their spread (:func:`_scoring_head`), two steps of
    validation windows to measure that spread on."""
    from offline_training.trainer import validation_size

    spread = (opts.error_norm or DEFAULTS["error_norm"].get(kind, "none")) == "spread"

    def enough(k: int) -> bool:
        held = validation_size(k, opts.train)
        return k - held >= 2 and (not spread or held * window >= 2)

    if not enough(n):
        need = next(k for k in range(n + 1, n + 10_000) if enough(k))
        raise DataError(
            f"{opts.data}: the training part gives {n} window(s) of {window} record(s); "
            f"training needs at least {need}: train on more rows (--train-fraction) or a "
            "smaller --window")


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


def _threshold_rule(opts: TrainOptions, normalised: bool) -> tuple[CalibrationMethod, float]:
    """The calibration method and value: the options' or the defaults for a detector whose
    scores are (``normalised``) or are not z-scores against each key's history."""
    method: CalibrationMethod = opts.threshold_method or DEFAULTS["threshold_method"][normalised]
    value = opts.threshold_value
    return method, float(DEFAULTS["threshold_value"][method] if value is None else value)


def _check_threshold_rule(opts: TrainOptions, kind: str) -> None:
    """Refuse a threshold value its method cannot use (percentile 150, sigma 0, nan), as
    one DataError before training: it crashed with a traceback after the whole fit."""
    normalised = DetectionParams.from_card({**detection_defaults(kind),
                                            **opts.detection}).normalise
    method, value = _threshold_rule(opts, normalised)
    try:
        check_method(method, value)
    except ValueError as exc:
        raise DataError(f"--threshold-value {value:g} ({method}): {exc}") from None


def train(opts: TrainOptions) -> TrainReport:
    """Train, export, calibrate and register one model; see the module docstring."""
    from offline_training.export import export_onnx, verify_parity
    from offline_training.models import build_model, config_dict, make_time_weights
    from offline_training.trainer import fit
    from stream_detector.core.registry import publish_version
    from stream_detector.core.timing import TimePolicy
    from stream_detector.files.batch import require_memory
    from stream_detector.files.history import load_source
    from stream_detector.files.time_report import time_report

    started = time.perf_counter()
    next_version(opts.out / model_name(opts), opts.version)  # a bad --version: now, not later
    if opts.window is not None and not 1 <= opts.window <= MAX_WINDOW_LENGTH:
        raise DataError(f"--window {opts.window}: must be 1 to {MAX_WINDOW_LENGTH:,} records "
                        "(the most a worker keeps per key)")
    source = load_source(opts.data, kind=opts.kind, key=opts.key, strict_time=opts.strict_time,
                         missing=opts.missing)
    require_memory(source.total, str(opts.data))  # records, then windows and the model
    _check_threshold_rule(opts, source.kind)  # before training, not after it
    records = list(source.records)
    part = split_records(records, opts.train_fraction, opts.train_until)
    fit_part, reference_part = _hybrid_split(opts, part)
    values = _arrays(fit_part)
    features = list(source.names) or feature_names(source.kind, records)
    window = opts.window or (1 if source.kind == "events" else DEFAULTS["window"])
    transform = opts.transform or DEFAULTS["transform"].get(source.kind, "none")
    scaler = _scaler_card(values, opts.scaler, transform, per_key=source.kind == "sales")
    windows = _windows(values, scaler, window, opts.stride)
    _enough_windows(len(windows), window, opts, source.kind)

    family = _ae_family(opts.family, source.kind)
    model = build_model(family, window, len(features), opts.model_config, seed=opts.seed)
    opts.model_config = config_dict(model)
    result = fit(model, windows, opts.train)

    opts.step("exporting to ONNX and checking it against PyTorch")
    name = model_name(opts)
    version = next_version(opts.out / name, opts.version)
    final = opts.out / name / version
    if final.exists():
        raise DataError(f"{final} exists: choose another --version")
    staging = opts.out / name / f".{version}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    try:  # a failed step leaves no half-written version behind
        last = opts.last if opts.last is not None else (
            DEFAULTS["last"] if source.kind != "events" and window == DEFAULTS["window"] else None)
        opts.last = last
        weights = make_time_weights(window, last=last) if last else None
        head = _scoring_head(model, source.kind, windows, opts, weights)
        sha = export_onnx(head, window, len(features), staging / "model.onnx")
        verify_parity(head, staging / "model.onnx", rtol=PARITY_RTOL)

        detection = detection_section(opts, source.kind, part, window)
        factor = float(detection.pop("offset_factor", 0.0))
        normalised = DetectionParams.from_card(detection).normalise
        method, value = _threshold_rule(opts, normalised)
        provisional = {"method": method, "value_param": value, "default": 0.0}
        card = build_card(opts, name, version, source.kind, features, window, scaler, sha,
                          provisional, detection, result, part)
        card = card.model_copy(update={"training": {
            **card.training, **training_keys(records, window), "scoring": head.card_section(),
            "imputed": source.imputed}})
        timing = time_report(records, TimePolicy.from_cadence(card.time.cadence_s if card.time
                                                              else None), source.ignored).lines()
        write_card(staging, card)
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
        write_card(staging, card)
        plots = (_plots(staging, result, by_key, thresholds.default, normalised)
                 if opts.plots else [])
        publish_version(staging, final)  # one rename: workers never see a half-written version
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    plots = [final / p.name for p in plots]
    shortfall = per_key_shortfall(thresholds, len(by_key), normalised) \
        if opts.per_key_thresholds else ""
    return TrainReport(final, card, result, time.perf_counter() - started, plots, timing,
                       shortfall, _no_calibration_plot(opts.plots, by_key, detection))


def _no_calibration_plot(plotted: bool, by_key: dict[str, list[float]],
                         detection: dict[str, Any]) -> str:
    """Why ``calibration_scores.png`` is missing when plots were asked for ("" when it is
    not): every training window fell in its key's warm-up, so no detection score was kept
    (it was left out without a word)."""
    if not plotted or any(by_key.values()):
        return ""
    return (f"no calibration_scores plot: every training window was in its key's warm-up "
            f"({detection.get('warmup', 0)} windows); train on more rows (--train-fraction) "
            "or set a shorter warm-up (detection.warmup or max_windows in --config)")


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
