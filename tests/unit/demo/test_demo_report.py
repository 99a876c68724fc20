"""The demo report from a real offline run (no Kafka): a tiny ONNX model scores the
generated series through the worker's pipeline; its events stand in for the worker's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from model_fixtures import window_mean_model, write_registry_model

from stream_detector.demo import DemoOptions, prepare_data, quality_of
from stream_detector.demo_live import Received
from stream_detector.demo_run import DemoRun, _offline
from stream_detector.demo_summary import DemoSummary, latency_stats, summary_lines
from stream_detector.report import keys_to_show, render_html, write_report


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    out = tmp_path_factory.mktemp("demo")
    data = prepare_data(DemoOptions(kind="series", out=out))
    model = write_registry_model(
        out / "registry" / "tiny" / "1", window_mean_model(12, 1, last_k=1), window=12,
        features=["value"], threshold=4.0,
        detection={"halflife": 288, "warmup": 288, "suppress": 288,
                   "offset": 5.0})  # about 3x the median score, as train sets it
    records, rows = _offline(model.parent, data)
    events = [Received(s.event, 1000) for s in _events(model.parent, records)]
    latencies = [5.0 + i for i in range(len(events))]
    quality = quality_of(data, [(r.event.key, r.event.window_end) for r in events])
    summary = DemoSummary("series", len(records), 1, len(rows), len(events), len(events),
                          quality, 60.0, 60.5, 67.0, latency_stats(latencies), 70.0,
                          "tiny v1 (dense)", True)
    return DemoRun(summary, data, rows, events, latencies, 4.0, records, 0.2)


def _events(model: Path, records: list[object]) -> list[object]:
    from stream_detector.batch import load_runtime, score_records

    return [s for s, _ in score_records(load_runtime(model, "cpu"), records)  # type: ignore[arg-type]
            if s.event is not None]


def test_report_is_one_self_contained_page(run: DemoRun, tmp_path: Path) -> None:
    assert run.received, "the tiny model should raise at least one event"
    path = write_report(run, tmp_path / "sub" / "report.html")
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert text.count("plotly.js v") == 1  # the library is embedded exactly once
    assert not re.search(r"<script[^>]+src=[\"']https?:", text)
    assert text.count('<div class="figure">') == 4
    for line in summary_lines(run.summary):  # the summary table carries every figure
        name, _, value = line.partition(": ")
        assert f"<td>{name}</td>" in text and value.split()[0] in text
    for kind in ("spike", "level_shift", "trained on"):  # labelled windows are named
        assert kind in text


def test_render_escapes_text() -> None:
    page = render_html("<b>x</b>", ["records: <1>"], [])
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "&lt;1&gt;" in page and "<b>" not in page


def test_keys_with_events_come_first_then_labelled_then_the_rest() -> None:
    assert keys_to_show([], [], ["a", "b"], 4) == ["a", "b"]
    assert keys_to_show(["c"], ["b"], ["a", "b", "c"], 2) == ["c", "b"]
