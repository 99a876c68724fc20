"""Reconstruction and detection metrics on small hand-checked inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from offline_training.metrics import (
    detection_metrics,
    evaluate,
    reconstruction_metrics,
    tpr_at_fpr,
)


def test_reconstruction_metrics_by_hand() -> None:
    x = np.array([[1.0], [2.0], [3.0], [4.0]])
    y = np.array([[1.0], [2.0], [3.0], [6.0]])
    m = reconstruction_metrics(x, y)
    assert m.mse == pytest.approx(1.0)  # (0 + 0 + 0 + 4) / 4
    assert m.mae == pytest.approx(0.5)
    assert m.rmse == pytest.approx(1.0)
    assert m.r2 == pytest.approx(1 - 4 / 5)  # SS_res 4, SS_tot 5


def test_reconstruction_metrics_accept_windows_and_reject_mismatch() -> None:
    x = np.random.default_rng(0).random((8, 5, 3))
    assert reconstruction_metrics(x, x).mse == 0.0
    assert reconstruction_metrics(x, x).r2 == pytest.approx(1.0)
    with pytest.raises(ValueError, match="must match"):
        reconstruction_metrics(x, x[:4])


def test_detection_metrics_confusion_matrix_and_rates() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 0])
    scores = np.array([0.1, 0.2, 0.7, 0.3, 0.9, 0.8, 0.4, 0.1])
    m = detection_metrics(labels, scores, threshold=0.5)
    # predicted anomalies: 0.7 (normal), 0.9, 0.8 (anomalies); 0.4 anomaly missed
    assert (m.tp, m.fp, m.tn, m.fn) == (2, 1, 4, 1)
    assert m.precision == pytest.approx(2 / 3)
    assert m.recall == m.tpr == pytest.approx(2 / 3)
    assert m.f1 == pytest.approx(2 / 3)
    assert m.tnr == pytest.approx(4 / 5)
    assert m.fpr == pytest.approx(1 / 5)
    # 15 anomaly/normal pairs; anomaly ranks above normal in 13 (0.4 loses to 0.7)
    assert m.roc_auc == pytest.approx(14 / 15)


def test_perfect_separation_gives_unit_aucs() -> None:
    m = detection_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]), 0.5)
    assert m.roc_auc == m.pr_auc == 1.0
    assert m.tpr_at_fpr[0.001] == 1.0


def test_tpr_at_fpr_picks_best_rate_within_budget() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.95, 0.9, 0.5])
    assert tpr_at_fpr(labels, scores, 0.0) == 0.0  # the top score is a normal point
    assert tpr_at_fpr(labels, scores, 0.25) == 1.0
    with pytest.raises(ValueError, match="fpr"):
        tpr_at_fpr(labels, scores, 1.5)


def test_single_class_gives_nan_aucs_without_warnings() -> None:
    m = detection_metrics(np.zeros(5), np.arange(5.0), threshold=2.5)
    assert math.isnan(m.roc_auc)
    assert (m.fp, m.tn, m.precision, m.recall) == (2, 3, 0.0, 0.0)


def test_evaluate_to_dict_is_flat_finite_json() -> None:
    x = np.random.default_rng(1).random((20, 2))
    labels = (np.arange(20) >= 18).astype(int)
    report = evaluate(
        inputs=x, reconstruction=x * 0.9, labels=labels, scores=np.arange(20.0), threshold=10.0
    )
    flat = report.to_dict()
    assert {"mse", "r2", "roc_auc", "precision", "tnr", "tpr", "tpr_at_fpr_0.01"} <= set(flat)
    assert flat["tpr_at_fpr_0.01"] == 1.0
    json.dumps(flat, allow_nan=False)
    # With one class the AUCs are undefined and are left out so the card stays valid JSON.
    one_class = evaluate(labels=np.zeros(20), scores=np.arange(20.0), threshold=10.0).to_dict()
    assert "roc_auc" not in one_class
    assert "tpr_at_fpr_0.01" not in one_class
    assert one_class["fp"] == 9.0


def test_evaluate_requires_threshold_with_labels() -> None:
    with pytest.raises(ValueError, match="threshold"):
        evaluate(labels=np.array([0, 1]), scores=np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="0 \\(normal\\) or 1"):
        detection_metrics(np.array([0, 2]), np.array([0.0, 1.0]), 0.5)
