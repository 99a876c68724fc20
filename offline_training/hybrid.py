"""Training the hybrid detector: an AE plus the NPLM stage's reference sample.

``train --model hybrid`` builds the AE of the data's kind (the events AE for feature events,
the dense AE for series and sales), trains, exports and calibrates it like any other family,
then writes the card's ``nplm`` section (:class:`schemas.card.NPLMCard`)::

    training part of each key:  [ fit the AE ........ | reference (last 30%) ]
                                                         |
                    exported model.onnx, worker pipeline v
                    scores + errors -> NPLM features -> drop windows over ae_threshold
                                                     -> at most 2000 rows -> card.nplm

The reference windows are held out of the AE fit on purpose: an AE scores the windows it was
fitted on lower than new normal data, and the NPLM test is sensitive enough to call that
difference an anomaly on background alone. Scores come from the exported ONNX model through
:class:`stream_detector.core.pipeline.Pipeline`, the code the worker runs, so a key's sample and
the reference are the same kind of number.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from schemas.card import NPLMCard
from schemas.events import SourceRef, ThresholdSource
from schemas.records import Record
from stream_detector.core.nplm import nplm_numpy_features

__all__ = ["HYBRID_DEFAULTS", "ae_family", "hybrid_options", "nplm_section", "split_reference"]

# reference_fraction: share of each key's training records held out of the AE fit for the
# reference; ae_quantile: windows above this quantile of the reference's raw AE scores are
# the AE stage's (they enter neither the reference nor a key's sample).
HYBRID_DEFAULTS: dict[str, Any] = {
    "reference_fraction": 0.3, "max_reference": 2000, "ae_quantile": 0.99,
    "degree": 4, "ridge": 1e-2, "alpha": 0.01, "sample_size": 250, "every": 50,
}


def ae_family(kind: str) -> str:
    """The AE a hybrid model uses for records of ``kind``."""
    return "events" if kind == "events" else "dense"


def hybrid_options(given: dict[str, Any]) -> dict[str, Any]:
    """Defaults overridden by ``given`` (the ``nplm`` options); unknown keys raise."""
    unknown = set(given) - set(HYBRID_DEFAULTS)
    if unknown:
        raise ValueError(
            f"unknown nplm options {sorted(unknown)}; valid: {sorted(HYBRID_DEFAULTS)}")
    options = {**HYBRID_DEFAULTS, **given}
    if not 0.0 < options["reference_fraction"] < 1.0:
        raise ValueError("nplm reference_fraction must be in (0, 1)")
    return options


def split_reference(
    records: Sequence[Record], fraction: float
) -> tuple[list[Record], list[Record]]:
    """Per key, the first ``1 - fraction`` of its records (AE fit) and the rest (reference)."""
    by_key: dict[str, list[Record]] = {}
    for r in records:
        by_key.setdefault(r.key, []).append(r)
    fit_part: list[Record] = []
    reference: list[Record] = []
    for rows in by_key.values():
        cut = len(rows) - int(len(rows) * fraction)
        fit_part += rows[:cut]
        reference += rows[cut:]
    return fit_part, reference


def _scores(model_dir: Path, records: Sequence[Record]) -> tuple[np.ndarray, np.ndarray]:
    """Raw AE scores (n,) and errors (n, window, features) of the records' windows."""
    from stream_detector.core.key_state import DictStore
    from stream_detector.core.model_runtime import ModelRuntime
    from stream_detector.core.pipeline import Pipeline
    from stream_detector.core.registry import load_model
    from stream_detector.core.thresholds import ResolvedThreshold

    loaded = load_model(model_dir, preference="cpu")
    unused = ResolvedThreshold(
        float("inf"), ThresholdSource(method="manual", version="reference", scope="default"))
    pipeline = Pipeline([ModelRuntime(loaded, lambda key: unused)], DictStore())
    pending = pipeline.ingest(records, SourceRef(topic="reference"))
    if not pending:
        raise ValueError("no reference windows: train on more records or lower --window")
    batch = Pipeline.score(pending)[0]
    return np.asarray(batch.scores, dtype=np.float64), np.asarray(batch.errors)


def nplm_section(
    model_dir: Path, records: Sequence[Record], options: dict[str, Any], seed: int = 0
) -> dict[str, Any]:
    """The card's ``nplm`` section from the held-out reference records (validated)."""
    scores, errors = _scores(model_dir, records)
    features = nplm_numpy_features(scores, errors)
    ae_threshold = float(np.quantile(scores, options["ae_quantile"]))
    keep = np.flatnonzero(scores <= ae_threshold)
    if len(keep) > options["max_reference"]:  # a seeded subsample, kept in time order
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(keep, options["max_reference"], replace=False))
    section = {
        "reference": features[keep].tolist(), "ae_threshold": ae_threshold,
        # add-one: a rate estimated as 0 would make one flagged window impossible
        "flag_rate": float((np.sum(scores > ae_threshold) + 1) / (len(scores) + 1)),
        **{k: options[k] for k in ("degree", "ridge", "alpha", "sample_size", "every")},
    }
    return NPLMCard.model_validate(section).model_dump()
