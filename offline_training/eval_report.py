"""``evaluate``'s one page: a summary table and the plots, in ``index.html``.

Two kinds of numbers, named as such because they answer different questions:

* **alert level**: the decisions the worker takes (the ``alert`` column; one per incident,
  then a quiet period). An alert inside a labelled window is a true alert, outside a false
  one; a labelled window without an alert is missed. NAB scores these, normalised as the
  README's table: ``100 (S - S_null) / (S_perfect - S_null)``.
* **window level**: every scored window whose score is above the threshold counts as a
  positive, quiet period or not; precision/recall/F1 and ROC/PR AUC of the score.

The page loads plotly.js once (embedded, so it opens offline); every other plot is a PNG.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["AlertJudgement", "judge_alerts", "render_index", "rounded", "timeline_html"]


def rounded(value: Any, digits: int = 4) -> Any:
    """Floats to ``digits`` significant digits, recursively (report.json is read by people).

    >>> rounded({"a": 0.123456789, "b": [2.0000001, 3]})
    {'a': 0.1235, 'b': [2.0, 3]}
    """
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if not math.isfinite(f) or f == 0 else float(f"{f:.{digits}g}")
    if isinstance(value, np.integer):
        return int(value)
    return value


@dataclass
class AlertJudgement:
    """Alerts against labelled windows (alert level)."""

    true_alerts: list[str] = field(default_factory=list)  # timestamps
    false_alerts: list[str] = field(default_factory=list)
    detected: list[tuple[str, str]] = field(default_factory=list)  # windows
    missed: list[tuple[str, str]] = field(default_factory=list)
    quiet: list[str] = field(default_factory=list)  # above threshold, no alert

    def merged(self, other: AlertJudgement, key: str | None = None) -> AlertJudgement:
        """This judgement and ``other``'s (a key's: its times and windows named
        ``KEY @ TIME`` when ``key`` is given)."""
        def named(items: list[str]) -> list[str]:
            return [f"{key} @ {t}" for t in items] if key is not None else list(items)

        def spans(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
            return [(f"{key} @ {a}", b) for a, b in items] if key is not None else list(items)

        return AlertJudgement(
            self.true_alerts + named(other.true_alerts),
            self.false_alerts + named(other.false_alerts),
            self.detected + spans(other.detected), self.missed + spans(other.missed),
            self.quiet + named(other.quiet))

    def summary(self) -> dict[str, Any]:
        alerts = len(self.true_alerts) + len(self.false_alerts)
        windows = len(self.detected) + len(self.missed)
        return {
            "alerts": alerts, "true_alerts": len(self.true_alerts),
            "false_alerts": len(self.false_alerts),
            "alert_precision": len(self.true_alerts) / alerts if alerts else None,
            "labelled_windows": windows, "windows_detected": len(self.detected),
            "window_recall": len(self.detected) / windows if windows else None,
            "missed_windows": [f"{a} .. {b}" for a, b in self.missed],
            "above_threshold_in_quiet_period": len(self.quiet),
        }


def judge_alerts(frame: pd.DataFrame, windows: list[tuple[pd.Timestamp, pd.Timestamp]]
                 ) -> AlertJudgement:
    """Classify a scored frame's alerts (columns ``time``, ``timestamp``, ``alert``,
    ``score``, ``threshold``) against labelled ``windows`` (inclusive start/end)."""
    judged = AlertJudgement()
    times = frame["time"].to_numpy()
    inside = np.zeros(len(frame), bool)
    for start, end in windows:
        hit = (times >= np.datetime64(start)) & (times <= np.datetime64(end))
        inside |= hit
        span = (str(start), str(end))
        (judged.detected if bool((hit & frame["alert"].to_numpy()).any())
         else judged.missed).append(span)
    alerts = frame["alert"].to_numpy(bool)
    judged.true_alerts = frame.loc[alerts & inside, "timestamp"].tolist()
    judged.false_alerts = frame.loc[alerts & ~inside, "timestamp"].tolist()
    above = (frame["score"] > frame["threshold"]).to_numpy() & ~frame["warm_up"].to_numpy(bool)
    judged.quiet = frame.loc[above & ~alerts, "timestamp"].tolist()
    return judged


def timeline_html(frame: pd.DataFrame, values: pd.DataFrame, judged: AlertJudgement,
              windows: list[tuple[pd.Timestamp, pd.Timestamp]], score_name: str) -> str:
    """The interactive chart: the series with alerts marked, the score with its threshold."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        row_heights=[0.6, 0.4])
    fig.add_trace(go.Scattergl(x=values["time"], y=values["value"], mode="lines",
                               name="value", line={"width": 1}), row=1, col=1)
    at = values.set_index("timestamp")["value"]
    for name, stamps, style in (
        ("true alert (in a labelled window)", judged.true_alerts,
         {"color": "green", "size": 9, "symbol": "circle"}),
        ("false alert", judged.false_alerts, {"color": "red", "size": 9, "symbol": "x"}),
    ):
        picked = [s for s in stamps if s in at.index]
        fig.add_trace(go.Scatter(x=pd.to_datetime(picked), y=at.loc[picked], mode="markers",
                                 name=f"{name} ({len(stamps)})", marker=style), row=1, col=1)
    fig.add_trace(go.Scattergl(x=frame["time"], y=frame["score"], mode="lines",
                               name="detection score", line={"width": 1}), row=2, col=1)
    fig.add_trace(go.Scattergl(x=frame["time"], y=frame["threshold"], mode="lines",
                               name="threshold", line={"dash": "dash", "color": "red"}),
                  row=2, col=1)
    quiet = frame[frame["timestamp"].isin(set(judged.quiet))]
    fig.add_trace(go.Scatter(
        x=quiet["time"], y=quiet["score"], mode="markers", marker={"color": "gray", "size": 5},
        name=f"above threshold, no alert: quiet period after an alert ({len(quiet)})"),
        row=2, col=1)
    missed = set(judged.missed)
    for start, end in windows:
        colour = "orange" if (str(start), str(end)) not in missed else "purple"
        fig.add_vrect(x0=start, x1=end, fillcolor=colour, opacity=0.2, line_width=0)
    fig.update_layout(height=650, legend={"orientation": "h", "y": -0.12},
                      title="labelled windows shaded: orange detected, purple missed")
    fig.update_yaxes(title_text="value", row=1, col=1)
    fig.update_yaxes(title_text=score_name, row=2, col=1)
    fig.update_xaxes(title_text="time", row=2, col=1)
    return str(fig.to_html(full_html=False, include_plotlyjs=False))


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(_fmt(v))}</td></tr>"
                    for k, v in rows)
    return f"<table>{cells}</table>"


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value) or "none"
    return str(value)


def _png(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def render_index(title: str, metrics: dict[str, Any], timeline: str, pngs: list[Path]) -> str:
    """The whole page (plotly.js inline once, PNGs inline: one file to send around)."""
    from plotly.offline import get_plotlyjs

    alert, window, nab = (metrics.get(k) or {} for k in ("alert_level", "window_level", "nab"))
    sections = [
        "<h2>Alert level: the worker's decisions</h2>",
        _table([(k.replace("_", " "), v) for k, v in alert.items()]),
        "<h2>NAB score of the alerts</h2>",
        _table([(k.replace("_", " "), v) for k, v in nab.items()]),
        "<h2>Window level: every window above the threshold</h2>",
        _table([(k.replace("_", " "), v) for k, v in window.items()]),
    ]
    style = ("body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:"
             "collapse;margin-bottom:1em}th{text-align:left;padding:2px 12px 2px 0;font-weight:"
             "normal;color:#444}td{font-weight:bold}img{max-width:49%;vertical-align:top}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{style}</style><script>{get_plotlyjs()}</script></head><body>"
            f"<h1>{html.escape(title)}</h1>"
            f"<p>{html.escape(_overview(metrics))}</p>{timeline}{''.join(sections)}"
            f"<h2>Plots</h2>{''.join(_png(p) for p in pngs)}</body></html>")


def _overview(metrics: dict[str, Any]) -> str:
    a, n = metrics.get("alert_level") or {}, metrics.get("nab") or {}
    text = (f"{metrics['windows']:,} windows scored, {metrics['alerts']} alerts "
            f"(one per incident, then a quiet period).")
    if a:
        text += (f" {a['true_alerts']} in labelled windows, {a['false_alerts']} false;"
                 f" {a['windows_detected']} of {a['labelled_windows']} labelled windows"
                 " detected.")
    if n:
        text += f" NAB standard score {n['standard_normalised']:.1f} (normalised; 100 perfect)."
    return text
