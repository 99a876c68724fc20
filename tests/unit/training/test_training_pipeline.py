"""The data modules together: synthetic -> CSV -> load -> scale -> window -> score -> NAB."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from offline_training import load_tables, nab
from offline_training.metrics import evaluate
from offline_training.scaling import fit_scaler
from offline_training.synthetic_series import make_series, write_labels, write_series_csv
from offline_training.windows import sliding_windows


def test_simple_detector_on_synthetic_data_beats_the_null_detector(tmp_path: Path) -> None:
    truth = make_series(seed=11, key="s")
    csv = write_series_csv(tmp_path / "s.csv", truth)
    (labels,) = write_labels(tmp_path / "windows.json", {"synthetic/s.csv": truth})
    series = load_tables.load_series(csv)

    train_rows = nab.probationary_length(len(series.values))  # causal: fit on probation only
    scaler = fit_scaler(series.values[:train_rows], "robust")
    windows = sliding_windows(scaler.transform(series.values), window=12)
    # Stand-in for a model: distance of the newest point from the window's median.
    scores = np.abs(windows.windows[:, -1, 0] - np.median(windows.windows[:, :, 0], axis=1))
    row_scores = np.zeros(len(series.values))
    row_scores[windows.ends] = scores
    threshold = float(np.quantile(row_scores[:train_rows], 0.999)) * 1.5

    report = evaluate(labels=truth.labels, scores=row_scores, threshold=threshold)
    assert report.detection is not None and report.detection.roc_auc > 0.6

    spans = nab.window_indices(series.timestamps, nab.load_windows(labels)["synthetic/s.csv"])
    result = nab.score_corpus(
        {"synthetic/s.csv": row_scores > threshold}, {"synthetic/s.csv": spans}
    )
    assert result.null < result.raw <= result.perfect
    assert 0 < result.normalized <= 100
