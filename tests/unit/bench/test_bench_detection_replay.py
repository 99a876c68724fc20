"""The detection replay: a file scored once through the worker's pipeline, then re-decided
with other settings, gives exactly what scoring it again with those settings gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from model_fixtures import window_mean_model, write_registry_model

from benchmarks.detection_replay import replay, trace
from offline_training.synthetic_series import make_series
from schemas.records import SeriesPoint
from stream_detector.core.detection import DetectionParams
from stream_detector.files.batch import load_runtime, score_records

# the seasonal and shift components read each window's newest value; the quiet period is
# short so that settings change which windows alert
_DETECTION = {"halflife": 288, "warmup": 288, "suppress": 36, "offset": 5.0, "season": 288,
              "season_weight": 0.6, "shift_weight": 1.0, "season_gate": 1.0,
              "value_weight": 1.0, "value_trend": 0.3, "value_gate": 1.0, "shift_trend": 0.015,
              "shift_hold": 3.0, "burst_weight": 1.0, "burst_gate": 1.0, "value_excess": 0.4,
              "habituate": 1.5, "habituate_ae": 1.75, "habituate_halflife": 720}


def _records() -> list[SeriesPoint]:
    series = make_series(seed=3, key="s")
    stamps = np.datetime_as_string(series.timestamps, unit="s")
    rows = [SeriesPoint(kind="series", series="s", timestamp=f"{t}Z", value=float(v))
            for t, v in zip(stamps, series.values, strict=True)]
    return rows[:2000] + rows[2010:]  # a gap: windows across it are judged, not learnt


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    entry = write_registry_model(tmp_path_factory.mktemp("reg") / "tiny" / "1",
                                 window_mean_model(12, 1, last_k=1), window=12,
                                 threshold=4.0, detection=_DETECTION,
                                 time={"cadence_s": 300.0})
    return entry.parent


def _rescored(model: Path, records: list[SeriesPoint], overrides: dict[str, Any]) -> list[bool]:
    runtime = load_runtime(model, "cpu")
    runtime.params = DetectionParams.from_card({**runtime.card.detection, **overrides})
    return [row.alert for _, row in score_records(runtime, records)]


@pytest.mark.parametrize("overrides", [{}, {"season_gate": 0.0}, {"shift_weight": 0.0},
                                       {"season_weight": 0.0, "shift_weight": 0.0},
                                       {"suppress": 288}, {"value_gate": 0.0},
                                       {"value_weight": 0.0}, {"burst_weight": 0.0},
                                       {"shift_trend": 0.0, "shift_hold": 0.0},
                                       {"habituate": 0.0}, {"habituate_ae": 0.0},
                                       {"value_excess": 1.0}])
def test_replay_equals_scoring_again_with_the_settings(
    model: Path, overrides: dict[str, Any]
) -> None:
    records = _records()
    scored = trace(model, records)
    assert not all(scored.learn), "the gap's windows should be judged, not learnt"
    got = replay(scored, overrides)
    assert got == _rescored(model, records, overrides)
    assert sum(got) >= 1


def test_settings_change_the_alerts(model: Path) -> None:
    scored = trace(model, _records())
    assert replay(scored, {}) == scored.alerts
    assert replay(scored, {"season_weight": 0.0, "shift_weight": 0.0}) != scored.alerts


def test_max_windows_0_replays_the_uncapped_warm_up_and_quiet_period(
        tmp_path: Path) -> None:
    """On 1-minute data the card holds the capped counts (288); ``max_windows`` 0 replays
    what a whole day (1,440 windows) would have given, as training without the cap does."""
    section = {**_DETECTION, "warmup": 288, "suppress": 288, "warmup_s": 86_400.0,
               "suppress_s": 86_400.0}
    entry = write_registry_model(tmp_path / "reg" / "tiny" / "1",
                                 window_mean_model(12, 1, last_k=1), window=12, threshold=4.0,
                                 detection=section, time={"cadence_s": 60.0})
    records = _records()
    scored = trace(entry.parent, records)
    assert scored.uncapped == {"warmup": 1440, "suppress": 1440}
    uncapped = replay(scored, {"max_windows": 0})
    assert uncapped == _rescored(entry.parent, records, {"warmup": 1440, "suppress": 1440})
    assert uncapped != scored.alerts
    explicit = write_registry_model(tmp_path / "reg2" / "tiny" / "1",
                                    window_mean_model(12, 1, last_k=1), window=12,
                                    threshold=4.0, detection={**section, "suppress": 144},
                                    time={"cadence_s": 60.0})
    assert trace(explicit.parent, records).uncapped == {"warmup": 1440}  # 144 was given
