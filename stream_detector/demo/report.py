"""The demo's report: one self-contained HTML file of plotly figures and the summary.

plotly.js is embedded once, at the first figure (``include_plotlyjs=True``), and every
later figure reuses it, so the file opens offline, from a mail attachment, years later.

Figures: the data with the worker's anomaly events and the labelled windows; the detection
score against the threshold over time (from :func:`stream_detector.files.batch.score_records`,
whose decisions are the worker's); the score distribution; the latency histogram. Panels
(sales) show the few keys with anomalies; feature events show the score per event, signal
events highlighted, and the score distribution of signal against background.

plotly is imported inside the functions that draw: the worker image carries no plotly.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stream_detector.demo.summary import signal_mask, summary_lines

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from stream_detector.demo.run import DemoRun

__all__ = ["write_report", "figures", "render_html", "keys_to_show", "judge", "missed_windows"]

_MAX_KEYS = 4
_BLUE = "#1f77b4"
# legends above the plots: stacked time plots keep the same width, so their axes line up
_LEGEND = {"orientation": "h", "yanchor": "bottom", "y": 1.04, "xanchor": "right", "x": 1.0}
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1300px; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 4px; } p.sub { color: #666; margin-top: 0; }
table.summary { border-collapse: collapse; margin: 12px 0 24px; }
table.summary td { padding: 3px 14px 3px 0; vertical-align: top; }
table.summary td:first-child { font-weight: 600; white-space: nowrap; }
.figure { margin-bottom: 28px; }
"""


def keys_to_show(
    event_keys: Sequence[str], labelled_keys: Sequence[str], all_keys: Sequence[str],
    limit: int = _MAX_KEYS,
) -> list[str]:
    """The keys worth a plot: those with anomaly events first, then labelled ones.

    >>> keys_to_show(["2/1", "1/3", "2/1"], ["1/1", "1/3"], ["1/1", "1/3", "2/1"], 3)
    ['2/1', '1/3', '1/1']
    """
    chosen: list[str] = []
    for key in [*event_keys, *labelled_keys, *all_keys]:
        if key not in chosen:
            chosen.append(key)
    return chosen[:limit]


def _ns_text(ns: int) -> str:
    return str(np.datetime64(int(ns), "ns").astype("datetime64[s]"))


def _half_step(recs: list[Any]) -> int:
    """Half the median spacing of the records, in ns (0 for fewer than two)."""
    if len(recs) < 2:
        return 0
    stamps = np.array([r.epoch_ns for r in recs], dtype=np.int64)
    return int(np.median(np.diff(stamps)) // 2)


def _shade(fig: go.Figure, run: DemoRun, key: str, recs: list[Any], row: int) -> None:
    """Grey: the part the model trained on; orange: labelled windows, named by kind."""
    if run.train_fraction > 0 and recs:
        last = recs[max(0, int(len(recs) * run.train_fraction) - 1)]
        fig.add_vrect(x0=recs[0].timestamp_text, x1=last.timestamp_text, fillcolor="grey",
                      opacity=0.12, line_width=0, row=row, col=1, annotation_text="trained on",
                      annotation_position="top left")
    kinds = run.data.kinds.get(key, [])
    pad = _half_step(recs)  # a one-row window stays visible on a two-year axis
    missed = set(judge(run, key)[2])
    for i, (lo, hi) in enumerate((run.data.labels or {}).get(key, [])):
        colour = "purple" if (lo, hi) in missed else "orange"
        fig.add_vrect(x0=_ns_text(lo - pad), x1=_ns_text(hi + pad), fillcolor=colour,
                      opacity=0.35,
                      line_width=0, row=row, col=1,
                      annotation_text=kinds[i] if i < len(kinds) else None,
                      annotation_position="top left", annotation_font_size=10)


def _value_name(run: DemoRun) -> str:
    return {"sales": "units sold per day"}.get(run.data.kind, "value")


def _score_name(run: DemoRun) -> str:
    if run.normalised:
        return "detection score (z-score against the key's own history)"
    return "detection score (reconstruction error)"


def _in_labels(run: DemoRun, key: str, end_ns: int, pad: int) -> bool:
    return any(lo - pad <= end_ns <= hi + pad for lo, hi in (run.data.labels or {}).get(key, []))


def judge(run: DemoRun, key: str) -> tuple[list[Any], list[Any], list[tuple[int, int]]]:
    """A key's events split into true alerts (in a labelled window) and false ones, and
    the labelled windows no event fell in (missed)."""
    recs = [r for r in run.records if r.key == key]
    pad = _half_step(recs)
    events = [r.event for r in run.received if r.event.key == key]
    ends = {id(e): int(np.datetime64(e.window_end, "ns").astype(np.int64)) for e in events}
    true = [e for e in events if _in_labels(run, key, ends[id(e)], pad)]
    false = [e for e in events if e not in true]
    missed = [(lo, hi) for lo, hi in (run.data.labels or {}).get(key, [])
              if not any(lo - pad <= ends[id(e)] <= hi + pad for e in true)]
    return true, false, missed


def missed_windows(run: DemoRun) -> list[str]:
    """Every labelled window without an anomaly event, as ``key: start .. end``."""
    return [f"{key}: {_ns_text(lo)} .. {_ns_text(hi)}" for key in (run.data.labels or {})
            for lo, hi in judge(run, key)[2]]


def _event_traces(fig: go.Figure, run: DemoRun, key: str, row: int) -> None:
    """True alerts (green), false alerts (red x), and each event's expected value joined
    to the observed one: the band the model expected against what came."""
    import plotly.graph_objects as go

    true, false, _ = judge(run, key)
    kinds: tuple[tuple[list[Any], str, dict[str, Any]], ...] = (
        (true, "true alert (in a labelled window)", {"color": "green", "size": 10}),
        (false, "false alert", {"color": "red", "size": 10, "symbol": "x"}),
    )
    if run.data.labels is None:  # a user's file without labels: no alert is true or false
        kinds = ((false, "alert (no labels to judge it)", {"color": "darkorange",
                                                           "size": 10}),)
    for events, name, marker in kinds:
        fig.add_trace(go.Scatter(
            x=[e.window_end for e in events], y=[e.observed[0] for e in events],
            mode="markers", name=name, showlegend=row == 1, marker=marker,
            text=[f"score {e.score:.2f} > {e.threshold:.2f}, severity {e.severity:.0f}"
                  for e in events]), row=row, col=1)
    both = [e for e in (*true, *false) if e.expected]
    xs: list[Any] = []
    ys: list[Any] = []
    for e in both:
        xs += [e.window_end, e.window_end, None]
        ys += [e.expected[0], e.observed[0], None]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers",
                             name="expected vs observed (grey bar)", showlegend=row == 1,
                             line={"color": "grey", "width": 2},
                             marker={"symbol": "line-ew-open", "size": 10, "color": "grey"}),
                  row=row, col=1)


def _shown(keys: list[str], total: int) -> str:
    """Say when only some keys are plotted.

    >>> _shown(["a", "b"], 12)
    ' (2 of 12 keys shown: those with anomaly events first, then labelled ones)'
    """
    if len(keys) >= total:
        return ""
    return (f" ({len(keys)} of {total} keys shown: those with anomaly events first, then "
            "labelled ones)")


def _series_figure(run: DemoRun, keys: list[str], total: int) -> go.Figure:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=len(keys), cols=1, subplot_titles=[f"key {k}" for k in keys],
                        vertical_spacing=0.08)
    for i, key in enumerate(keys, start=1):
        recs = [r for r in run.records if r.key == key]
        fig.add_trace(go.Scatter(x=[r.timestamp_text for r in recs], y=[r.values[0] for r in recs],
                                 mode="lines", name="value",
                                 line={"width": 1, "color": _BLUE},
                                 showlegend=i == 1), row=i, col=1)
        _event_traces(fig, run, key, i)
        _shade(fig, run, key, recs, i)
        fig.update_yaxes(title_text=_value_name(run), row=i, col=1)
    fig.update_layout(title="Data with the worker's anomaly events; labelled windows in "
                      "orange (purple: missed), the training part in grey" + _shown(keys, total),
                      height=320 * len(keys) + 100, legend=_LEGEND)
    return fig


def _score_figure(run: DemoRun, keys: list[str]) -> go.Figure:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=len(keys), cols=1, subplot_titles=[f"key {k}" for k in keys],
                        vertical_spacing=0.08)
    for i, key in enumerate(keys, start=1):
        recs = [r for r in run.records if r.key == key]
        rows = [r for r in run.rows if r.key == key and not r.warm_up]
        x = [r.timestamp for r in rows]
        fig.add_trace(go.Scatter(x=x, y=[r.score for r in rows], mode="lines",
                                 name="detection score", line={"width": 1, "color": _BLUE},
                                 showlegend=i == 1), row=i, col=1)
        fig.add_trace(go.Scatter(x=x, y=[r.threshold for r in rows], mode="lines",
                                 name="threshold", line={"color": "black", "dash": "dash"},
                                 showlegend=i == 1), row=i, col=1)
        alerts = [r for r in rows if r.alert]
        fig.add_trace(go.Scatter(x=[r.timestamp for r in alerts], y=[r.score for r in alerts],
                                 mode="markers", name="alert", showlegend=i == 1,
                                 marker={"color": "red", "size": 9}), row=i, col=1)
        quiet = [r for r in rows if r.score > r.threshold and not r.alert]
        fig.add_trace(go.Scatter(
            x=[r.timestamp for r in quiet], y=[r.score for r in quiet], mode="markers",
            name="above threshold, no alert: the quiet period after an alert",
            showlegend=i == 1, marker={"color": "grey", "size": 6}), row=i, col=1)
        fig.update_yaxes(title_text=_score_name(run), row=i, col=1)
        if recs:  # the data's time axis; a blank start is the warm-up
            fig.update_xaxes(range=[recs[0].timestamp_text, recs[-1].timestamp_text], row=i,
                             col=1)
    fig.update_layout(title="Detection score against the threshold (blank: warm-up, no alerts;"
                      " grey: above it in a key's quiet period, which follows each alert)",
                      height=300 * len(keys) + 100, legend=_LEGEND)
    return fig


def _log_range(scores: np.ndarray, threshold: float) -> list[float]:
    """A log axis from the 0.5th percentile of the positive scores to above the largest:
    a handful of near-zero scores no longer stretch it over twelve decades.

    >>> _log_range(np.array([1e-9] + [1.0, 10.0, 100.0] * 100), 5.0)
    [-0.2, 2.2]
    """
    positive = np.asarray(scores, dtype=float)[np.asarray(scores) > 0]
    if positive.size == 0:
        return [-1.0, 1.0]
    lo = min(float(np.percentile(positive, 0.5)), threshold)
    hi = max(float(positive.max()), threshold)
    return [round(float(np.log10(lo)) - 0.2 * float(lo != positive.min()), 1),
            round(float(np.log10(hi)) + 0.2, 1)]  # plain floats (plotly, JSON)


def _event_scores(run: DemoRun) -> tuple[np.ndarray, np.ndarray]:
    scores = np.array([r.score for r in run.rows])
    ends = [int(np.datetime64(r.timestamp, "ns").astype(np.int64)) for r in run.rows]
    return scores, np.array(signal_mask(ends, run.data.labels), dtype=bool)


def _events_figures(run: DemoRun) -> list[go.Figure]:
    import plotly.graph_objects as go

    scores, signal = _event_scores(run)
    index = np.arange(len(scores))
    over = go.Figure()
    over.add_trace(go.Scattergl(x=index[~signal], y=scores[~signal], mode="markers",
                                name="background", marker={"size": 3, "color": "#1f77b4"}))
    over.add_trace(go.Scattergl(x=index[signal], y=scores[signal], mode="markers",
                                name="injected signal", marker={"size": 6, "color": "red"}))
    over.add_hline(y=run.threshold, line_dash="dash", annotation_text="threshold")
    over.update_layout(title="Score per event (signal events in red)",
                       xaxis_title="event number (in replay order)",
                       yaxis_title=f"{_score_name(run)}, log scale", yaxis_type="log",
                       yaxis_range=_log_range(scores, run.threshold), height=450)
    dist = go.Figure()
    for mask, name in ((~signal, "background"), (signal, "injected signal")):
        if mask.any():
            dist.add_trace(go.Histogram(x=np.log10(np.maximum(scores[mask], 1e-12)), name=name,
                                        histnorm="probability density", opacity=0.6))
    dist.add_vline(x=float(np.log10(max(run.threshold, 1e-12))), line_dash="dash",
                   annotation_text="threshold")
    dist.update_layout(title="Score distribution: signal against background",
                       xaxis_title=f"log10 {_score_name(run)}", yaxis_title="density",
                       barmode="overlay", height=400)
    return [over, dist]


def _distribution(run: DemoRun) -> go.Figure:
    import plotly.graph_objects as go

    scores = [r.score for r in run.rows if not r.warm_up]
    fig = go.Figure(go.Histogram(x=scores, nbinsx=80, name="detection score"))
    fig.add_vline(x=run.threshold, line_dash="dash", annotation_text="threshold")
    fig.update_layout(title="Detection score distribution (all windows after warm-up)",
                      xaxis_title=_score_name(run), yaxis={"type": "log", "dtick": 1},
                      yaxis_title="windows (log scale)", height=400)
    return fig


def _latency(run: DemoRun) -> go.Figure:
    import plotly.graph_objects as go

    fig = go.Figure(go.Histogram(x=run.latencies, nbinsx=40, name="latency"))
    fig.update_layout(title=f"Latency, record produced -> anomaly event ({len(run.latencies)} "
                      "events)", xaxis_title="milliseconds", yaxis_title="events", height=360)
    return fig


def figures(run: DemoRun) -> list[go.Figure]:
    """Every figure of the report, in reading order."""
    if run.data.kind == "events":
        return [*_events_figures(run), _latency(run)]
    keys = keys_to_show([r.event.key for r in run.received], list(run.data.labels or {}),
                        list(dict.fromkeys(r.key for r in run.records)))
    total = len({r.key for r in run.records})
    return [_series_figure(run, keys, total), _score_figure(run, keys), _distribution(run),
            _latency(run)]


def render_html(title: str, lines: Sequence[str], figs: Sequence[Any]) -> str:
    """A whole HTML page: title, summary table, figures (plotly.js embedded once)."""
    import plotly.io as pio

    cells = []
    for line in lines:
        name, _, value = line.partition(": ")
        cells.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(value)}</td></tr>")
    parts = [
        pio.to_html(fig, include_plotlyjs=i == 0, full_html=False,
                    config={"displaylogo": False})
        for i, fig in enumerate(figs)
    ]
    body = "\n".join(f'<div class="figure">{p}</div>' for p in parts)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            f"</title><style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            "<p class=\"sub\">Scores and alerts come from the worker's own pipeline; the "
            "events are those the worker emitted to Kafka.</p>"
            f"<table class=\"summary\">{''.join(cells)}</table>\n{body}\n</body></html>\n")


def write_report(run: DemoRun, path: Path) -> Path:
    """Write the report to ``path`` (folders created) and return it."""
    title = f"stream-detector demo: {run.data.kind} ({run.data.path.name})"
    lines = summary_lines(run.summary)
    if run.data.labels and run.data.kind != "events":
        missed = missed_windows(run)
        lines.append(f"labelled windows without an anomaly event: {len(missed)}"
                     + (f" ({'; '.join(missed[:10])})" if missed else ""))
    text = render_html(title, lines, figures(run))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
