"""Contract: an events model trained on background only separates an injected resonance.

Trained the way ``stream-detector train`` trains it (the events AE, ONNX export, the
default "spread" error norm) on generated background, then scored through the worker's
pipeline (``score_records``) on a separate generated sample with signal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from offline_training.synthetic_events import EventsConfig, make_events, write_events
from offline_training.train import train
from offline_training.train_options import TrainOptions
from offline_training.trainer import TrainConfig
from stream_detector.files.batch import load_runtime, score_records
from stream_detector.files.history import load_source


def _auc(tmp_path: Path, error_norm: str | None) -> float:
    background = make_events(EventsConfig(events=4000, signal_fraction=0.0), seed=21)
    test = make_events(EventsConfig(events=2000, signal_fraction=0.1), seed=22)
    report = train(TrainOptions(
        data=write_events(tmp_path / "background.h5", background), out=tmp_path / "registry",
        name=f"events-{error_norm}", plots=False, error_norm=error_norm,
        train=TrainConfig(max_epochs=15, progress=False, num_threads=1)))
    records = list(load_source(write_events(tmp_path / "test.h5", test)).records)
    rows = [row for _, row in score_records(load_runtime(report.path, "cpu"), records)]
    assert report.card.training["scoring"]["aggregate"] == (
        "mean" if error_norm == "none" else "rms")
    return float(roc_auc_score(test.labels, np.array([r.score for r in rows])))


@pytest.mark.slow
def test_events_model_separates_injected_signal(tmp_path: Path) -> None:
    default, plain = _auc(tmp_path, None), _auc(tmp_path, "none")
    print(f"ROC AUC: default (spread) {default:.3f}, plain mean squared error {plain:.3f}")
    assert default >= 0.93
    assert default > plain + 0.03


@pytest.mark.slow
def test_every_event_above_the_threshold_alerts_with_the_default_detection(
    tmp_path: Path,
) -> None:
    """The series defaults (a 288-event warm-up, 288 quiet events after each alert) were
    applied to events: of 42 plainly shifted events, 37 scored above the threshold and 10
    alerted, one every ~300 rows."""
    rng = np.random.default_rng(5)
    background = rng.normal(size=(4000, 20))
    sample = rng.normal(size=(4000, 20))
    signal = np.sort(rng.choice(np.arange(10, 4000), 42, replace=False))
    sample[signal] += 4.0
    columns = [f"f{i}" for i in range(20)]
    train_csv, test_csv = tmp_path / "background.csv", tmp_path / "sample.csv"
    pd.DataFrame(background, columns=columns).to_csv(train_csv, index=False)
    pd.DataFrame(sample, columns=columns).to_csv(test_csv, index=False)
    report = train(TrainOptions(
        data=train_csv, out=tmp_path / "registry", name="ev", family="events", plots=False,
        train=TrainConfig(max_epochs=5, progress=False, num_threads=1)))
    rows = [row for _, row in score_records(load_runtime(report.path, "cpu"),
                                            list(load_source(test_csv).records))]
    scores = np.array([r.score for r in rows])
    alerts = np.array([r.alert for r in rows])
    assert (alerts == (scores > report.card.thresholds.default)).all()  # nothing held back
    assert alerts[signal].mean() >= 0.9
    assert alerts.sum() - alerts[signal].sum() <= 0.01 * len(rows)  # about the percentile
    detection = report.card.detection
    assert (detection["warmup"], detection["suppress"], detection["normalise"]) == (0, 0, False)
