"""Plots: each writes a real PNG and a self-contained plotly HTML file."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from offline_training import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RNG = np.random.default_rng(0)
LABELS = (RNG.random(300) < 0.1).astype(int)
SCORES = RNG.random(300) + LABELS


def check_outputs(paths: list[Path], stem: Path) -> None:
    assert paths == [stem.with_suffix(".png"), stem.with_suffix(".html")]
    png, html = paths
    assert png.read_bytes().startswith(PNG_MAGIC) and png.stat().st_size > 5_000
    text = html.read_text(encoding="utf-8")
    assert "Plotly.newPlot" in text
    # Self-contained: plotly.js itself is embedded (megabytes), no <script src=...> at all
    # (include_plotlyjs="cdn" would write <script src="https://cdn.plot.ly/...">).
    assert re.search(r"<script[^>]*\bsrc=", text) is None
    assert len(text) > 1_000_000


CASES: dict[str, Callable[[Path], list[Path]]] = {
    "history": lambda p: plots.plot_history(
        {"loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.7, 0.6]}, p
    ),
    "errors": lambda p: plots.plot_error_distribution(SCORES, 1.0, p, labels=LABELS),
    "roc": lambda p: plots.plot_roc(LABELS, SCORES, p),
    "confusion": lambda p: plots.plot_confusion_matrix(np.array([[250, 20], [3, 27]]), p),
    "series": lambda p: plots.plot_series(
        np.arange("2015-03-01T00:00", "2015-03-02T01:00", 5, dtype="datetime64[m]"),
        RNG.random(300),
        p,
        detections=LABELS.astype(bool),
        windows=[("2015-03-01 04:00:00.000000", "2015-03-01 06:00:00.000000")],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_plot_writes_png_and_self_contained_html(name: str, tmp_path: Path) -> None:
    stem = tmp_path / "nested" / name
    check_outputs(CASES[name](stem), stem)


def test_suffix_is_replaced_and_formats_can_be_limited(tmp_path: Path) -> None:
    written = plots.plot_roc(LABELS, SCORES, tmp_path / "roc.png", formats=("png",))
    assert written == [tmp_path / "roc.png"]
    assert not (tmp_path / "roc.html").exists()
    with pytest.raises(ValueError, match="formats"):
        plots.plot_roc(LABELS, SCORES, tmp_path / "roc", formats=("svg",))


def test_bad_inputs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="both"):
        plots.plot_roc(np.zeros(5), np.arange(5.0), tmp_path / "r")
    with pytest.raises(ValueError, match="shape"):
        plots.plot_confusion_matrix(np.zeros((3, 3)), tmp_path / "c")
    with pytest.raises(ValueError, match="empty"):
        plots.plot_history({}, tmp_path / "h")
