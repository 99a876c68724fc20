"""The model card ``stream-detector train`` writes: its sections built from the options and
the training records (name, version, features, time, serves, detection, provenance), and
the atomic write of ``card.json``.

Pure apart from :func:`write_card`, :func:`build_card` (it hashes the data file and reads
the library versions) and :func:`next_version` (it lists the model's folder).
"""

from __future__ import annotations

import platform
import re
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from offline_training.durations import detection_windows
from offline_training.train_options import TrainOptions, detection_defaults
from offline_training.trainer import TrainResult
from schemas.card import NAME_PATTERN, ModelCard
from schemas.records import Record
from stream_detector.core.detection import season_rows
from stream_detector.core.recurrence import RECUR_MAX, RECUR_MIN
from stream_detector.core.registry import sha256_file
from stream_detector.core.timing import cadence_s
from stream_detector.exceptions import DataError

__all__ = ["build_card", "detection_section", "feature_names", "library_versions",
           "model_name", "next_version", "serves_section", "time_section", "write_card"]


def model_name(opts: TrainOptions) -> str:
    """The registry name: ``--name`` or the data file's stem, with every character outside
    ``A-Za-z0-9._-`` replaced by ``-``, at most 100 characters (``model`` if nothing is left).

    >>> model_name(TrainOptions(data=Path("Twitter volume AAPL.csv"), out=Path("r")))
    'Twitter-volume-AAPL'
    """
    raw = opts.name or opts.data.stem
    return re.sub(r"[^A-Za-z0-9._-]", "-", raw).strip("-.")[:100] or "model"


def next_version(root: Path, requested: str | None) -> str:
    """``requested``, or one more than the largest numeric version folder under ``root``
    (``"1"`` when there is none or ``root`` does not exist).

    Raises
    ------
    DataError
        ``requested`` is not a version a card can hold (``schemas.card.NAME_PATTERN``).
    """
    if requested:
        if not re.fullmatch(NAME_PATTERN, requested):
            raise DataError(f"--version {requested!r}: use letters, digits, '.', '_' and '-' "
                            "(at most 128, first a letter or digit), e.g. 2 or 2026-12-01")
        return requested
    existing = [int(p.name) for p in root.glob("*") if p.name.isdigit()] if root.is_dir() else []
    return str(max(existing, default=0) + 1)


def library_versions() -> dict[str, str]:
    """The card's ``library_versions``: python, torch, onnx, onnxruntime and numpy."""
    import onnx
    import onnxruntime
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
            "numpy": np.__version__}


def serves_section(opts: TrainOptions, kind: str, records: Sequence[Record]) -> dict[str, Any]:
    """The card's ``serves`` section (see :class:`schemas.card.ServesCard`)."""
    choice = opts.serves or ("trained" if kind == "series" else "all")
    if choice == "trained":
        return {"keys": sorted({r.key for r in records})}
    if choice == "all":
        return {}
    if choice.startswith("pattern:"):
        return {"pattern": choice.removeprefix("pattern:")}
    raise ValueError(f"serves must be trained, all or pattern:REGEX, got {choice!r}")


def build_card(
    opts: TrainOptions, name: str, version: str, kind: str, features: list[str], window: int,
    scaler: dict[str, Any], sha: str, thresholds: dict[str, Any], detection: dict[str, Any],
    result: TrainResult, records: Sequence[Record],
) -> ModelCard:
    """The validated card of one trained model.

    Parameters
    ----------
    opts
        The training options (family, stride, serves, seed, data path, ...).
    name, version
        Registry name and version (:func:`model_name`, :func:`next_version`).
    kind
        Record kind of the training data.
    features
        Feature names, one per value column (:func:`feature_names`).
    window
        Records per window.
    scaler
        The scaler's card section (with its ``transform``).
    sha
        SHA-256 (hex) of the exported ``model.onnx``.
    thresholds, detection
        The card's ``thresholds`` and ``detection`` sections.
    result
        The fit's loss history, best epoch, device and seconds.
    records
        The training part (rows counted, cadence and served keys read from it).

    Returns
    -------
    ModelCard
        Stamped with the current UTC time, the data file's SHA-256 and the library versions.

    Raises
    ------
    pydantic.ValidationError
        When a section does not fit :class:`schemas.card.ModelCard`.
    """
    return ModelCard.model_validate({
        "name": name, "version": version, "family": opts.family,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "onnx_sha256": sha, "record_kind": kind, "window": window, "stride": opts.stride,
        "features": features, "scaler": scaler, "thresholds": thresholds,
        "detection": detection, "time": time_section(kind, records),
        "serves": serves_section(opts, kind, records),
        "metrics": {"train_loss": result.history[-1]["loss"] if result.history else None,
                    "val_loss": min((h["val_loss"] for h in result.history), default=None)},
        "training": {"config": opts.model_config, "train": asdict(opts.train),
                     "epochs": len(result.history), "best_epoch": result.best_epoch,
                     "stopped_early": result.stopped_early, "seconds": result.seconds,
                     "device": result.device, "history": result.history,
                     "rows": len(records), "train_fraction": opts.train_fraction,
                     "train_until": opts.train_until,
                     "last": opts.last, "seed": opts.seed, "data": str(opts.data)},
        "data_sha256": sha256_file(opts.data), "library_versions": library_versions(),
    })


def time_section(kind: str, records: Sequence[Record]) -> dict[str, float] | None:
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


def detection_section(opts: TrainOptions, kind: str, records: Sequence[Record],
                      window: int = 1) -> dict[str, Any]:
    """The card's detection section: the defaults of the record kind and the options, with
    durations as windows at the data's cadence, and the season (windows per day, or week)
    when the seasonal component is weighed in, and the values a page's shape holds
    (``recur``: the windows one record stays in, 8 to 256) when pages keep theirs. Events
    are independent feature vectors:
    each is judged on its own raw score (no per-key history, warm-up or quiet period), so
    every event above the threshold alerts."""
    base = {**detection_defaults(kind), **opts.detection}
    time = time_section(kind, records)  # durations become windows at the data's cadence
    step_s = time["cadence_s"] * opts.stride if time else 0.0
    if base.get("season_weight", 0) and "season" not in base:
        base["season"] = season_rows(step_s * 1e9)
    span = -(-window // opts.stride)  # the windows one record stays in
    if base.get("recur_memory", 0) and "recur" not in base:  # a page's shape: its window
        base["recur"] = min(max(span, RECUR_MIN), RECUR_MAX)
    return detection_windows(base, time["cadence_s"] if time else None, opts.stride,
                             span=span)


def feature_names(kind: str, records: Sequence[Record]) -> list[str]:
    """The card's feature names when the file named none: ``value`` for series, ``sales``
    for sales; for events the 57 synthetic event features when the width matches, else
    ``f0``, ``f1``, ... (a file's own names win: ``RecordSource.names``)."""
    if kind == "series":
        return ["value"]
    if kind == "sales":
        return ["sales"]
    from offline_training.synthetic_events import EVENT_FEATURES

    width = len(records[0].values) if records else 0
    return list(EVENT_FEATURES) if width == len(EVENT_FEATURES) else [
        f"f{i}" for i in range(width)]


def write_card(directory: Path, card: ModelCard) -> None:
    """Write ``directory/card.json`` atomically (a temporary file, then a rename), creating
    ``directory`` when missing."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / "card.json.tmp"
    tmp.write_text(card.model_dump_json(indent=2))
    tmp.replace(directory / "card.json")
