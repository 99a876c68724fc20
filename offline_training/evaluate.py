"""``stream-detector evaluate``: score a labelled file and say how good the detector is.

Scores come from the worker's own pipeline (:mod:`stream_detector.files.batch`). Labels are NAB
anomaly windows (``combined_windows.json``, or the JSON the synthetic generators write)
matched to the file by name, or a 0/1 ``label`` column for feature events. Outputs one page,
``index.html`` (see :mod:`offline_training.eval_report`: alert-level and window-level
numbers named as such, NAB normalised, the series with true and false alerts marked and
missed windows shaded), ``report.json`` with the same numbers, and the plots as PNG.
"""

from __future__ import annotations

import html
import json
import shutil
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from offline_training import plots
from offline_training.eval_report import (
    AlertJudgement,
    judge_alerts,
    render_index,
    rounded,
    timeline_html,
)
from offline_training.labels import Windows, key_windows, read_labels
from offline_training.metrics import detection_metrics
from offline_training.nab import score_corpus, window_indices
from stream_detector.core.detection import DetectionParams
from stream_detector.exceptions import DataError
from stream_detector.files.batch import (
    COLUMNS,
    ScoreRow,
    load_runtime,
    require_kind,
    require_memory,
    score_records,
)
from stream_detector.files.history import load_source
from stream_detector.files.time_report import time_report

__all__ = ["MAX_TIMELINES", "Evaluation", "evaluate"]

MAX_TIMELINES = 6  # labelled keys charted on the page (each chart holds its whole series)


@dataclass
class Evaluation:
    """What ``evaluate`` measured and where it wrote it."""

    metrics: dict[str, Any]
    report: Path
    plots: list[Path] = field(default_factory=list)
    time_line: str = ""  # what the time policy flagged (time_report), "" when nothing


def _frame(rows: list[ScoreRow]) -> pd.DataFrame:
    frame = pd.DataFrame([r.as_tuple() for r in rows], columns=COLUMNS)
    frame["time"] = pd.to_datetime(frame["timestamp"])
    return frame


def _report_folder(out: Path) -> list[Path]:
    """The files of an earlier report in ``out`` (replaced by this one), or [] for a new or
    empty folder.

    Raises
    ------
    DataError
        ``out`` holds anything else: evaluate replaced a folder's index.html and
        report.json without a word (the data folder's too), and left an earlier run's plots
        beside a report they contradict.
    """
    if not out.is_dir():
        return []
    files = sorted(out.iterdir())
    ours = [p for p in files if p.is_file() and (p.name in {"index.html", "report.json"}
                                                  or p.suffix == ".png")]
    report = out / "report.json"
    try:
        earlier = {"model", "data", "windows"} <= set(json.loads(report.read_text()))
    except (OSError, ValueError, TypeError):
        earlier = False
    if not files or (earlier and len(ours) == len(files)):
        return ours
    others = [p.name for p in files if p not in ours or not earlier]
    shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
    raise DataError(f"--out {out} holds other files ({shown}); evaluate "
                    "writes index.html, report.json and plots into a folder of its own: give "
                    "a new or empty folder, or an earlier report's")


Progress = Callable[[int], AbstractContextManager[Callable[[int], None]]]


def evaluate(
    model_dir: Path, data: Path, out: Path, labels: Path | None = None, key: str | None = None,
    strict_time: bool = False, missing: Literal["reject", "impute"] = "reject",
    progress: Progress | None = None,
) -> Evaluation:
    """Score ``data`` with the model at ``model_dir``; write ``out/index.html`` (summary and
    plots, one page), ``out/report.json`` and the PNGs. Nothing is written unless every
    step succeeds (the files are made in a temporary folder, then moved). ``progress``,
    given the record count, opens a context that takes the records scored as they go (the
    CLI's progress bar)."""
    earlier = _report_folder(out)  # before any work: a folder of other files is refused
    runtime = load_runtime(model_dir, "auto")
    table = None
    if labels is not None and runtime.card.record_kind != "events":
        table = read_labels(labels)  # an unreadable label file fails before any work
    source = load_source(data, kind=require_kind(runtime, data, None), key=key,
                         strict_time=strict_time, missing=missing,
                         features=runtime.card.features)
    require_memory(source.total, str(data))
    records = list(source.records)
    windows = None
    if table is not None and labels is not None:
        windows = key_windows(table, labels, data, sorted({r.key for r in records}))
    with progress(len(records)) if progress is not None else nullcontext(None) as advance:
        frame = _frame([row for _, row in score_records(runtime, records, advance,
                                                         name=str(data))])
    time_line = time_report(records, runtime.time, source.ignored).lines()
    metrics: dict[str, Any] = {"model": f"{runtime.card.name} v{runtime.card.version}",
                               "data": str(data), "windows": len(frame),
                               "alerts": int(frame["alert"].sum()),
                               "keys": int(frame["key"].nunique())}
    params = DetectionParams.from_card(runtime.card.detection)
    if frame["warm_up"].all():
        raise DataError(
            f"{data}: all {len(frame):,} windows are in the detector's warm-up (the first "
            f"{params.warmup:,} windows of each key, which never alert); evaluate a file "
            "with more records per key")
    score_name = plots.score_label(params.normalise)
    with tempfile.TemporaryDirectory(prefix="sd-evaluate-") as tmp:
        staging = Path(tmp)
        scored = frame[~frame["warm_up"]]
        pngs = plots.plot_error_distribution(
            scored["score"].to_numpy(), float(scored["threshold"].median()),
            staging / "score_distribution", formats=("png",), xlabel=score_name)
        timeline = ""
        if windows is not None:
            judged, extra, timeline = _with_windows(frame, records, windows, staging,
                                                    score_name)
            pngs += extra.pop("_pngs")
            metrics.update(extra)
        metrics = rounded(metrics)
        (staging / "report.json").write_text(json.dumps(metrics, indent=2))
        title = f"{metrics['model']} on {data.name}"
        (staging / "index.html").write_text(render_index(title, metrics, timeline, pngs))
        out.mkdir(parents=True, exist_ok=True)
        for old in earlier:  # an earlier report's plots would contradict this one
            old.unlink(missing_ok=True)
        made = [shutil.move(str(p), out / p.name) for p in sorted(staging.iterdir())]
    return Evaluation(metrics, out / "index.html", [Path(p) for p in made], time_line)


def _with_windows(
    frame: pd.DataFrame, records: list[Any], windows: dict[str, Windows], out: Path,
    score_name: str,
) -> tuple[AlertJudgement, dict[str, Any], str]:
    """Each labelled key judged against its own windows (alerts, NAB with each key as one
    of NAB's files, window level); keys the labels do not name are left out."""
    judged = AlertJudgement()
    detections: dict[str, np.ndarray] = {}
    rows_of: dict[str, list[tuple[int, int]]] = {}
    labelled_rows: list[pd.DataFrame] = []
    charts: list[str] = []
    several = len(windows) > 1
    records_of: dict[str, list[Any]] = {}
    for r in records:  # grouped once: per key scans took keys x records (hours at 10k keys)
        records_of.setdefault(r.key, []).append(r)
    frames_of = dict(iter(frame.groupby("key", sort=False)))
    for name, key_windows_ in windows.items():
        mine = records_of.get(name, [])
        scored = frames_of.get(name, frame.iloc[:0])
        times = np.array([r.epoch_ns for r in mine], dtype=np.int64).astype("datetime64[ns]")
        values = pd.DataFrame({"time": times, "timestamp": [r.timestamp_text for r in mine],
                               "value": [r.values[0] for r in mine]})
        rows = window_indices(times, key_windows_)
        inside = np.zeros(len(times), bool)
        for lo, hi in rows:
            inside[lo : hi + 1] = True
        alerts_at = set(scored.loc[scored["alert"], "timestamp"])
        detections[name] = values["timestamp"].isin(alerts_at).to_numpy()
        rows_of[name] = rows
        one = judge_alerts(scored, key_windows_)
        if len(charts) < MAX_TIMELINES:
            chart = timeline_html(scored, values, one, key_windows_, score_name)
            charts.append(f"<h2>{html.escape(name)}</h2>{chart}" if several else chart)
        judged = judged.merged(one, name if several else None)
        row_of = {t: i for i, t in enumerate(values["timestamp"])}
        labelled_rows.append(scored.assign(
            label=[int(inside[row_of[t]]) for t in scored["timestamp"]]))
    nab = score_corpus(detections, rows_of)
    result: dict[str, Any] = {
        "alert_level": judged.summary(),
        "nab": {"standard_normalised": nab.normalized, "raw": nab.raw, "null": nab.null,
                "perfect": nab.perfect},
    }
    others = frame[~frame["key"].isin(list(windows))]  # said, not judged: their alerts
    if len(others):  # were left out of every figure without a word
        names = sorted(set(others["key"].astype(str)))
        result["unlabelled_keys"] = {"keys": len(names), "alerts": int(others["alert"].sum()),
                                     "names": names[:5]}
    if several:
        result["labelled_keys"] = len(windows)
        if len(windows) > MAX_TIMELINES:
            result["keys_charted"] = MAX_TIMELINES
    labelled = pd.concat(labelled_rows) if labelled_rows else frame.iloc[:0].assign(label=0)
    y = labelled["label"].to_numpy(dtype=int)
    pngs: list[Path] = []
    if 0 < y.sum() < len(y):
        scores = labelled["score"].to_numpy()
        d = detection_metrics(y, scores, float(labelled["threshold"].median()))
        result["window_level"] = {
            "windows_in_labelled_windows": int(y.sum()), "windows_above_threshold":
            int(d.tp + d.fp), "precision": d.precision, "recall": d.recall, "f1": d.f1,
            "roc_auc": d.roc_auc, "pr_auc": d.pr_auc}
        pngs += plots.plot_roc(y, scores, out / "roc", formats=("png",))
        pngs += plots.plot_confusion_matrix(
            np.array([[d.tn, d.fp], [d.fn, d.tp]]), out / "window_confusion_matrix",
            formats=("png",), title="Windows: above threshold vs label")
    result["_pngs"] = pngs
    return judged, result, "".join(charts)
