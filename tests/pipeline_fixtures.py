"""A tiny loaded model and its records, for tests of the pipeline and the key states."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from model_fixtures import window_mean_model, write_registry_model

from schemas.records import parse_message
from stream_detector.core.model_runtime import ModelRuntime
from stream_detector.core.registry import load_model
from stream_detector.worker.threshold_cache import ThresholdCache

__all__ = ["MemoryTable", "series_records", "tiny_runtime"]


def tiny_runtime(tmp_path: Path) -> ModelRuntime:
    """A window-of-4 last-step model (threshold 3.0, warm-up 6 windows) served on the CPU."""
    model_dir = write_registry_model(
        tmp_path / "m", window_mean_model(4, 1, last_k=1), window=4, features=["value"],
        threshold=3.0, detection={"halflife": 10, "warmup": 6, "suppress": 3, "offset": 0.01},
    )
    loaded = load_model(model_dir, preference="cpu")
    return ModelRuntime(loaded, ThresholdCache(loaded.card, client=None).lookup)  # type: ignore[arg-type]


def series_records(key: str, values: list[float]) -> list[Any]:
    """One series record per value, a second apart (at most 60)."""
    return [parse_message(json.dumps({"kind": "series", "series": key, "value": v,
                                      "timestamp": f"2026-01-01T00:00:{i:02d}"}).encode())[0]
            for i, v in enumerate(values)]


class MemoryTable:
    """Stands in for the worker's Faust table: its data, and changelog writes recorded."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.changelog: list[tuple[int | None, bytes, bytes]] = []

    def send_changelog(self, partition: int | None, key: bytes, value: bytes) -> None:
        self.changelog.append((partition, key, value))
