"""Evaluation plots as PNG (matplotlib, Agg) and self-contained HTML (plotly).

Each function takes arrays and an output path without suffix (or with one, which is
replaced) and writes ``<path>.png`` and/or ``<path>.html``; it returns the files written.
Figures are built on ``matplotlib.figure.Figure`` directly, never through pyplot's global
state, so plotting works headless and from threads. HTML embeds plotly.js
(``include_plotlyjs=True``): a report opens offline, years later, without a CDN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score, roc_curve

__all__ = [
    "plot_confusion_matrix",
    "plot_error_distribution",
    "plot_history",
    "plot_roc",
    "plot_series",
    "score_label",
]

Formats = Sequence[str]
_DEFAULT_FORMATS: tuple[str, ...] = ("png", "html")


def _new_figure(width: float = 8.0, height: float = 4.5) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, interactive: go.Figure, path: str | Path, formats: Formats) -> list[Path]:
    unknown = set(formats) - set(_DEFAULT_FORMATS)
    if unknown:
        raise ValueError(f"formats must be among {_DEFAULT_FORMATS}, got {sorted(unknown)}")
    base = Path(path)
    base = base.with_suffix("") if base.suffix in {".png", ".html"} else base
    base.parent.mkdir(parents=True, exist_ok=True)
    written = []
    if "png" in formats:
        fig.savefig(base.with_suffix(".png"), dpi=120)
        written.append(base.with_suffix(".png"))
    if "html" in formats:
        interactive.write_html(base.with_suffix(".html"), include_plotlyjs=True, full_html=True)
        written.append(base.with_suffix(".html"))
    return written


def plot_history(
    history: Mapping[str, Sequence[float]],
    path: str | Path,
    formats: Formats = _DEFAULT_FORMATS,
) -> list[Path]:
    """Training curves, e.g. ``{"loss": [...], "val_loss": [...]}``, per epoch (log y)."""
    if not history:
        raise ValueError("history is empty; nothing to plot")
    fig = _new_figure()
    ax = fig.add_subplot()
    interactive = go.Figure()
    for name, values in history.items():
        epochs = np.arange(1, len(values) + 1)
        ax.plot(epochs, values, label=name)
        interactive.add_trace(go.Scatter(x=epochs, y=list(values), mode="lines", name=name))
    ax.set(xlabel="epoch", ylabel="loss", yscale="log", title="Training history")
    ax.legend()
    interactive.update_layout(title="Training history", xaxis_title="epoch", yaxis_type="log")
    return _save(fig, interactive, path, formats)


def score_label(normalised: bool) -> str:
    """What a model's detection score is, for axis titles.

    >>> score_label(True)
    "detection score (z-score against the key's own history)"
    """
    if normalised:
        return "detection score (z-score against the key's own history)"
    return "detection score (reconstruction error)"


def plot_error_distribution(
    errors: np.ndarray,
    threshold: float,
    path: str | Path,
    labels: np.ndarray | None = None,
    formats: Formats = _DEFAULT_FORMATS,
    xlabel: str = "detection score (reconstruction error)",
) -> list[Path]:
    """Histogram of scores with the threshold line; split by label when given.

    ``xlabel`` says what the score is (:func:`score_label`): a z-score is not an error.
    """
    values = np.asarray(errors, dtype=np.float64).ravel()
    groups = {"all": values}
    if labels is not None:
        flags = np.asarray(labels).ravel().astype(bool)
        groups = {"normal": values[~flags], "anomaly": values[flags]}
    bins = np.histogram_bin_edges(values, bins=60)
    fig = _new_figure()
    ax = fig.add_subplot()
    interactive = go.Figure()
    for name, group in groups.items():
        ax.hist(group, bins=bins.tolist(), alpha=0.6, label=f"{name} ({group.size})")
        interactive.add_trace(go.Histogram(x=group, name=name, opacity=0.6, nbinsx=60))
    ax.axvline(threshold, color="red", linestyle="--", label=f"threshold {threshold:.4g}")
    ax.set(xlabel=xlabel, ylabel="windows (log scale)", yscale="log",
           title="Score distribution")
    ax.legend()
    interactive.add_vline(x=threshold, line_dash="dash", line_color="red")
    interactive.update_layout(barmode="overlay", title="Score distribution", yaxis_type="log",
                              xaxis_title=xlabel, yaxis_title="windows (log scale)")
    return _save(fig, interactive, path, formats)


def plot_roc(
    labels: np.ndarray,
    scores: np.ndarray,
    path: str | Path,
    formats: Formats = _DEFAULT_FORMATS,
) -> list[Path]:
    """ROC curve with its AUC; needs both classes in ``labels``."""
    y = np.asarray(labels).ravel().astype(int)
    if y.min() == y.max():
        raise ValueError("ROC needs both normal (0) and anomalous (1) labels")
    fpr, tpr, _ = roc_curve(y, np.asarray(scores).ravel())
    auc = float(roc_auc_score(y, np.asarray(scores).ravel()))
    fig = _new_figure(5.5, 5.0)
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, label=f"AUC = {auc:.4f}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
    ax.legend(loc="lower right")
    interactive = go.Figure(go.Scatter(x=fpr, y=tpr, mode="lines", name=f"AUC = {auc:.4f}"))
    interactive.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance"))
    interactive.update_layout(title="ROC curve", xaxis_title="FPR", yaxis_title="TPR")
    return _save(fig, interactive, path, formats)


def plot_confusion_matrix(
    matrix: np.ndarray,
    path: str | Path,
    class_names: Sequence[str] = ("normal", "anomaly"),
    formats: Formats = _DEFAULT_FORMATS,
    title: str = "Confusion matrix",
) -> list[Path]:
    """Counts ``[[tn, fp], [fn, tp]]`` (scikit-learn's layout: rows true, columns predicted)."""
    counts = np.asarray(matrix, dtype=np.int64)
    if counts.shape != (len(class_names), len(class_names)):
        raise ValueError(f"matrix shape {counts.shape} does not match {len(class_names)} classes")
    fig = _new_figure(5.0, 4.5)
    ax = fig.add_subplot()
    image = ax.imshow(counts, cmap="Blues")
    fig.colorbar(image, ax=ax)
    for (row, col), count in np.ndenumerate(counts):
        dark = count > counts.max() / 2
        ax.text(col, row, str(count), ha="center", va="center", color="white" if dark else "black")
    ticks = np.arange(len(class_names))
    ax.set(xticks=ticks, yticks=ticks, xticklabels=class_names, yticklabels=class_names)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    names = list(class_names)
    interactive = go.Figure(
        go.Heatmap(
            z=counts, x=names, y=names, text=counts, texttemplate="%{text}", colorscale="Blues"
        )
    )
    interactive.update_layout(title=title, xaxis_title="predicted", yaxis_title="true")
    interactive.update_yaxes(autorange="reversed")
    return _save(fig, interactive, path, formats)


def plot_series(
    timestamps: np.ndarray,
    values: np.ndarray,
    path: str | Path,
    detections: np.ndarray | None = None,
    windows: Sequence[tuple[object, object]] = (),
    title: str = "Series",
    formats: Formats = _DEFAULT_FORMATS,
) -> list[Path]:
    """The series, detected anomalies as red points and labelled windows shaded.

    ``detections`` is a boolean mask over rows; ``windows`` are ``(start, end)`` times (as
    in NAB's label files).
    """
    x = np.asarray(timestamps).astype("datetime64[ns]")
    y = np.asarray(values, dtype=np.float64).ravel()
    hits = np.zeros(y.size, bool) if detections is None else np.asarray(detections, bool).ravel()
    spans = [(pd.Timestamp(str(a)), pd.Timestamp(str(b))) for a, b in windows]
    fig = _new_figure(11.0, 4.0)
    ax = fig.add_subplot()
    ax.plot(x, y, linewidth=0.7, label="value")
    for k, (start, end) in enumerate(spans):
        # matplotlib's date converter takes datetimes here; its stubs only admit floats.
        label = "labelled window" if k == 0 else None
        ax.axvspan(start, end, color="orange", alpha=0.25, label=label)  # type: ignore[arg-type]
    ax.scatter(x[hits], y[hits], color="red", s=12, zorder=3, label=f"detected ({int(hits.sum())})")
    ax.set(xlabel="time", ylabel="value", title=title)
    ax.legend(loc="upper left")
    interactive = go.Figure(go.Scattergl(x=x, y=y, mode="lines", name="value"))
    interactive.add_trace(go.Scattergl(x=x[hits], y=y[hits], mode="markers", name="detected"))
    for start, end in spans:
        interactive.add_vrect(
            x0=start.isoformat(), x1=end.isoformat(), fillcolor="orange", opacity=0.25, line_width=0
        )
    interactive.update_layout(title=title, xaxis_title="time", yaxis_title="value")
    return _save(fig, interactive, path, formats)
