"""The demo report from a real offline run (no Kafka): a tiny ONNX model scores the
generated series through the worker's pipeline; its events stand in for the worker's."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from model_fixtures import window_mean_model, write_registry_model

from stream_detector.demo.data import DemoOptions, prepare_data, quality_of
from stream_detector.demo.live import Received
from stream_detector.demo.report import keys_to_show, render_html, write_report
from stream_detector.demo.run import DemoRun, offline_scores
from stream_detector.demo.summary import DemoSummary, latency_stats, summary_lines


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    out = tmp_path_factory.mktemp("demo")
    data = prepare_data(DemoOptions(kind="series", out=out))
    model = write_registry_model(
        out / "registry" / "tiny" / "1", window_mean_model(12, 1, last_k=1), window=12,
        features=["value"], threshold=4.0,
        detection={"halflife": 288, "warmup": 288, "suppress": 288,
                   "offset": 5.0})  # about 3x the median score, as train sets it
    records, rows = offline_scores(model.parent, data)
    events = [Received(s.event, 1000) for s in _events(model.parent, records)]
    latencies = [5.0 + i for i in range(len(events))]
    quality = quality_of(data, [(r.event.key, r.event.window_end) for r in events])
    summary = DemoSummary("series", len(records), 1, len(rows), len(events), len(events),
                          quality, 60.0, 60.5, 67.0, latency_stats(latencies), 70.0,
                          "tiny v1 (dense)", True)
    return DemoRun(summary, data, rows, events, latencies, 4.0, records, 0.2)


def _events(model: Path, records: list[object]) -> list[object]:
    from stream_detector.files.batch import load_runtime, score_records

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


def test_the_live_table_is_one_line_per_event_at_80_columns(run: DemoRun) -> None:
    from rich.console import Console

    from stream_detector.demo.live import events_table

    long_key = {"key": "store-1/item-12345678901234567890-and-then-some"}
    received = [Received(run.received[0].event.model_copy(update=long_key), 1.0)] * 10
    console = Console(width=80, record=True, color_system=None)
    console.print(events_table(received))
    lines = [x for x in console.export_text().splitlines() if x.strip()]
    assert len(lines) == 2 + 10  # title, header, one line per event
    assert all(len(x) <= 80 for x in lines)


def test_the_report_marks_true_and_false_alerts_and_names_its_axes(
    run: DemoRun, tmp_path: Path,
) -> None:
    from stream_detector.demo.report import judge, missed_windows

    key = run.records[0].key
    true, false, missed = judge(run, key)
    assert len(true) + len(false) == len(run.received)
    windows = (run.data.labels or {})[key]
    ends = [int(np.datetime64(e.window_end, "ns").astype(np.int64)) for e in false]
    # a false alert lies in no labelled window (give or take half a step), a missed window
    # holds no true alert
    step = 150 * 10**9
    assert not any(lo - step <= t <= hi + step for t in ends for lo, hi in windows)
    assert 0 < len(missed) <= len(windows)
    text = write_report(run, tmp_path / "r.html").read_text()
    for needle in ("true alert (in a labelled window)", "false alert", "expected vs observed",
                   "quiet period", "units sold per day" if run.data.kind == "sales" else
                   "\"title\":{\"text\":\"value\"}", "windows (log scale)",
                   "labelled windows without an anomaly event"):
        assert needle in text, needle
    assert len(missed_windows(run)) == len(missed)


def test_the_live_view_ends_its_line_so_the_next_step_starts_on_its_own() -> None:
    """`make demo > log`: rich ends a live view with a newline on terminals only, and the
    next step's line ("demo 101.0s stopping ...") joined the table's last row."""
    import io

    from rich.console import Console

    from stream_detector.demo.live import live_display

    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=60, color_system=None)
    with live_display("last table row", console):
        pass
    console.print("demo 101.0s stopping the worker")
    assert "last table row\n" in out.getvalue()
    assert out.getvalue().endswith("\ndemo 101.0s stopping the worker\n")


def test_the_demo_says_it_leaves_given_services_up(tmp_path: Path) -> None:
    from stream_detector.demo.run import stopping_line

    def line(**urls: str) -> str:
        return stopping_line(DemoOptions(out=tmp_path, **urls))

    assert line() == "stopping the worker and the local Kafka and redis-server"
    assert line(kafka="kafka://h:1") == "stopping the worker and the local redis-server"
    assert line(kafka="kafka://h:1", redis="redis://h:2/0") == (
        "stopping the worker (the given Kafka and Redis stay up)")
    after = DemoOptions(out=tmp_path, redis="redis://h:2/0")  # what Ctrl-C reports
    assert stopping_line(after, done=True) == "the worker and the local Kafka are stopped"
    assert stopping_line(DemoOptions(out=tmp_path, kafka="kafka://h:1", redis="redis://h:2/0"),
                         done=True) == "the worker is stopped (the given Kafka and Redis stay up)"


def test_one_event_is_not_one_events(run: DemoRun) -> None:
    from dataclasses import replace

    one = replace(run.summary, anomalies=1, offline_anomalies=1,
                  latency=latency_stats([5.0]))
    lines = summary_lines(one)
    assert any(line.startswith("anomalies: 1 event (") for line in lines), lines
    assert any("anomaly event, 1 event)" in line for line in lines), lines
    assert not any("1 events" in line for line in lines)


def test_without_labels_alerts_are_neither_true_nor_false(run: DemoRun, tmp_path: Path) -> None:
    """`demo --data FILE` (no labels) drew every anomaly as a red "false alert"."""
    import dataclasses

    bare = dataclasses.replace(run, data=dataclasses.replace(run.data, labels=None))
    text = write_report(bare, tmp_path / "bare.html").read_text()
    assert "alert (no labels to judge it)" in text
    assert "false alert" not in text and "true alert" not in text
