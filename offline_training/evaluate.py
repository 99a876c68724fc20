"""``stream-detector evaluate``: score a labelled file and say how good the detector is.

Scores come from the worker's own pipeline (:mod:`stream_detector.batch`). Labels are NAB
anomaly windows (``combined_windows.json``, or the JSON the synthetic generators write)
matched to the file by name, or a 0/1 ``label`` column for feature events. Outputs a JSON
report (detection metrics at the alerting decision, ROC/PR AUC of the detection score, the
NAB score of the alerts) and plots as PNG and interactive HTML.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from offline_training import plots
from offline_training.metrics import detection_metrics
from offline_training.nab import score_file, window_indices, windows_for
from stream_detector.batch import COLUMNS, ScoreRow, load_runtime, score_records
from stream_detector.history import load_source

__all__ = ["Evaluation", "evaluate", "windows_for"]


@dataclass
class Evaluation:
    """What ``evaluate`` measured and where it wrote it."""

    metrics: dict[str, Any]
    report: Path
    plots: list[Path] = field(default_factory=list)


def _frame(rows: list[ScoreRow]) -> pd.DataFrame:
    frame = pd.DataFrame([r.as_tuple() for r in rows], columns=COLUMNS)
    frame["time"] = pd.to_datetime(frame["timestamp"])
    return frame


def evaluate(
    model_dir: Path, data: Path, out: Path, labels: Path | None = None, key: str | None = None,
) -> Evaluation:
    """Score ``data`` with the model at ``model_dir`` and write ``out/report.json`` + plots."""
    runtime = load_runtime(model_dir, "auto")
    if labels is not None and runtime.card.record_kind != "events":
        windows_for(labels, data)  # a label file without this data fails before any work
    source = load_source(data, kind=runtime.card.record_kind, key=key)
    records = list(source.records)
    frame = _frame([row for _, row in score_records(runtime, records)])
    out.mkdir(parents=True, exist_ok=True)
    metrics: dict[str, Any] = {"windows": len(frame), "alerts": int(frame["alert"].sum()),
                               "keys": int(frame["key"].nunique())}
    made: list[Path] = []
    scored = frame[~frame["warm_up"]]
    made += plots.plot_error_distribution(scored["score"].to_numpy(),
                                          float(scored["threshold"].median()),
                                          out / "score_distribution")
    if labels is not None and source.kind != "events":
        metrics.update(_with_windows(frame, records, labels, data, out, made))
    (out / "report.json").write_text(json.dumps(metrics, indent=2, default=float))
    return Evaluation(metrics, out / "report.json", made)


def _with_windows(
    frame: pd.DataFrame, records: list[Any], labels: Path, data: Path, out: Path,
    made: list[Path],
) -> dict[str, Any]:
    windows = windows_for(labels, data)
    times = np.array([r.epoch_ns for r in records], dtype=np.int64).astype("datetime64[ns]")
    values = np.array([r.values[0] for r in records])
    rows = window_indices(times, windows)
    inside = np.zeros(len(times), bool)
    for lo, hi in rows:
        inside[lo : hi + 1] = True
    alerts_at = set(frame.loc[frame["alert"], "timestamp"])
    detections = np.array([r.timestamp_text in alerts_at for r in records])
    nab = score_file(detections, rows)
    row_of = {r.timestamp_text: i for i, r in enumerate(records)}
    y = np.array([inside[row_of[t]] for t in frame["timestamp"]], dtype=int)
    result: dict[str, Any] = {"nab_score": nab.score, "nab_detected_windows":
                              nab.detected_windows, "nab_windows": nab.windows,
                              "nab_false_positives": nab.fp}
    if 0 < y.sum() < len(y):
        d = detection_metrics(y, frame["score"].to_numpy(), float(frame["threshold"].median()))
        result.update({"roc_auc": d.roc_auc, "pr_auc": d.pr_auc, "precision": d.precision,
                       "recall": d.recall, "f1": d.f1})
        made += plots.plot_roc(y, frame["score"].to_numpy(), out / "roc")
        made += plots.plot_confusion_matrix(np.array([[d.tn, d.fp], [d.fn, d.tp]]),
                                            out / "confusion_matrix")
    made += plots.plot_series(times, values, out / "series", detections=detections,
                              windows=windows, title=data.name)
    return result
