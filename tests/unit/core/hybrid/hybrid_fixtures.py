"""A hybrid model on 57-feature events, built without torch: the energy model + NPLM card.

The AE stage is ``energy_model`` (score = mean squared z-score of an event under a standard
scaler fitted on background); the NPLM reference comes from ``nplm_section``, the training
code's own function, on held-out background events scored through the worker pipeline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from model_fixtures import energy_model, write_registry_model

from offline_training.hybrid import hybrid_options, nplm_section
from offline_training.synthetic_events import EVENT_FEATURES, EventsConfig, make_events
from schemas.records import FeatureEvent
from stream_detector.core.model_runtime import ModelRuntime
from stream_detector.core.registry import load_model
from stream_detector.worker.threshold_cache import ThresholdCache

NPLM_OPTIONS = {"sample_size": 200, "every": 50}


def event_records(source: str, n: int, signal: float, seed: int) -> list[FeatureEvent]:
    """``n`` generated events of one source, a fraction ``signal`` of them resonance."""
    features = make_events(EventsConfig(events=n, signal_fraction=signal), seed=seed).features
    return [
        FeatureEvent(kind="events", source=source, event_id=f"{source}-{i}",
                     timestamp=f"2026-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}",
                     features=row)
        for i, row in enumerate(features.tolist())
    ]


def _scaler(features: np.ndarray) -> dict[str, Any]:
    std = features.std(axis=0)
    return {"method": "standard", "params": {"*": {
        "center": features.mean(axis=0).tolist(), "scale": np.where(std > 0, std, 1.0).tolist()}}}


def build_hybrid_model(directory: Path) -> Path:
    """Write the energy model, then its card with the NPLM section from held-out background."""
    background = make_events(EventsConfig(events=2000, signal_fraction=0.0), seed=1).features
    model_dir = write_registry_model(
        directory, energy_model(len(EVENT_FEATURES)), name="hyb", window=1,
        features=list(EVENT_FEATURES), record_kind="events", threshold=4.5,
        scaler=_scaler(background),
        detection={"halflife": 100, "warmup": 50, "suppress": 50, "offset": 0.5},
    )
    reference = event_records("reference", 1500, 0.0, seed=2)
    section = nplm_section(model_dir, reference, hybrid_options(NPLM_OPTIONS))
    card = json.loads((model_dir / "card.json").read_text())
    card.update(family="hybrid", nplm=section)
    (model_dir / "card.json").write_text(json.dumps(card))
    return model_dir


def runtime_of(model_dir: Path) -> ModelRuntime:
    loaded = load_model(model_dir, preference="cpu")
    cache = ThresholdCache(loaded.card, client=None)  # type: ignore[arg-type]  # card values
    return ModelRuntime(loaded, cache.lookup)

