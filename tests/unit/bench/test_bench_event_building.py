"""The event-building benchmark compares two paths that emit the same bytes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks import event_building as eb
from benchmarks.bench_models import STANDARD_SCALER, window_mean_model, write_registry_model
from benchmarks.scoring_ceiling import make_runtime, pending_windows
from schemas.events import AnomalyEvent
from stream_detector.core.key_state import DictStore
from stream_detector.core.model_runtime import PendingRun
from stream_detector.core.pipeline import Pipeline


def test_before_and_after_emit_identical_events(tmp_path: Path) -> None:
    entry = write_registry_model(tmp_path / "m", window_mean_model(eb.WINDOW, 1), name="m",
                                 window=eb.WINDOW, scaler=STANDARD_SCALER)
    runtime = eb._every_window_alerts(make_runtime(entry, threshold=-1.0))
    items = pending_windows(runtime, 16)
    batches = Pipeline.score(items)
    at = "2026-11-22T08:00:00.000Z"
    old = eb.before(runtime, items, batches[0], at)
    new = eb.after(Pipeline([runtime], DictStore()), items, batches, at)
    assert len(new) == 16 and new == old
    event = AnomalyEvent.model_validate_json(new[0])
    assert event.expected is not None and len(event.top_contributors) == 5
    assert json.loads(new[0])["detected_at"] == at


def test_equal_errors_pick_the_same_cells_on_both_paths(tmp_path: Path) -> None:
    """Flat windows: every error is 0, so which five cells are listed is up to argpartition."""
    entry = write_registry_model(tmp_path / "m", window_mean_model(eb.WINDOW, 1), name="m",
                                 window=eb.WINDOW, scaler=STANDARD_SCALER)
    runtime = eb._every_window_alerts(make_runtime(entry, threshold=-1.0))
    items = [PendingRun.of(replace(p, window=p.window._replace(
                 values=np.full_like(p.window.values, 3.0)))) if i % 2 else run
             for i, (run, p) in enumerate((r, r.item(0)) for r in pending_windows(runtime, 8))]
    batches = Pipeline.score(items)
    at = "2026-11-22T08:00:00.000Z"
    new = eb.after(Pipeline([runtime], DictStore()), items, batches, at)
    assert new == eb.before(runtime, items, batches[0], at)
    flat = AnomalyEvent.model_validate_json(new[1])
    assert [c.error for c in flat.top_contributors] == [0.0] * 5
