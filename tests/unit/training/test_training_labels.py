"""Label files for ``evaluate``: NAB's, per key, the demo's own; each key judged by its own
windows (one key's alert never detects another key's window)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from model_fixtures import window_mean_model, write_registry_model
from typer.testing import CliRunner

from offline_training.labels import key_windows, read_labels
from stream_detector.cli.main import app
from stream_detector.exceptions import DataError

runner = CliRunner()
T0 = pd.Timestamp("2024-01-01 00:00:00")
RAW = {"normalise": False, "warmup": 0, "suppress": 1}


def write(path: Path, content: object) -> Path:
    path.write_text(json.dumps(content))
    return path


def test_the_three_shapes_and_epoch_units_are_read(tmp_path: Path) -> None:
    nab = read_labels(write(tmp_path / "nab.json", {
        "realTweets/x.csv": [["2024-01-01 00:10:00.000000", "2024-01-01 00:20:00.000000"]]}))
    assert nab == {"realTweets/x.csv": [(T0 + pd.Timedelta("10min"), T0 + pd.Timedelta("20min"))]}
    ns = int(T0.value)
    demo = read_labels(write(tmp_path / "labels.json", {
        "generator": "synthetic-v3", "file": "d.csv", "kinds": {"a": ["spike"]},
        "labels": {"a": [[ns, ns]], "b": []}}))
    assert demo == {"a": [(T0, T0)], "b": []}
    units = [ns // 10**9, ns // 10**6, ns // 10**3, ns, "2024-01-01T01:00:00+01:00"]
    per_key = read_labels(write(tmp_path / "k.json", {"k": [[u, u] for u in units]}))
    assert per_key["k"] == [(T0, T0)] * len(units)  # seconds, ms, us, ns, an offset


@pytest.mark.parametrize(("content", "message"), [
    ({"x": [["2024-01-02", "2024-01-01"]]}, "ends before it starts"),
    ({"x": [["2024-01-01"]]}, "must be [start, end] pairs"),
    ({"x": [[True, False]]}, "must be [start, end] pairs"),
    ([["2024-01-01", "2024-01-02"]], "expected an object of file name or key"),
])
def test_bad_label_files_are_one_line(tmp_path: Path, content: object, message: str) -> None:
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_labels(write(tmp_path / "bad.json", content))


def test_windows_go_to_keys_by_name_by_nab_file_or_for_a_one_series_file() -> None:
    w = [(T0, T0)]
    labels, data = Path("l.json"), Path("multi.csv")
    assert key_windows({"a": w, "zz": w}, labels, data, ["a", "b"]) == {"a": w}
    assert key_windows({"realTweets/a.csv": w}, labels, data, ["a", "b"]) == {"a": w}
    assert key_windows({"g/one.csv": w}, labels, Path("one.csv"), ["s"]) == {"s": w}
    with pytest.raises(DataError, match="holds 2 series .* give windows per key"):
        key_windows({"g/multi.csv": w}, labels, data, ["a", "b"])
    with pytest.raises(DataError, match="has no windows for multi.csv or its series"):
        key_windows({"other": w}, labels, data, ["a", "b"])
    with pytest.raises(DataError, match="or its series; it holds no entries, the file's"):
        key_windows({}, labels, data, ["a", "b"])  # was "its entries are e.g. , the ..."


def two_series(tmp_path: Path, spiking: str) -> tuple[Path, pd.DatetimeIndex, Path]:
    """A raw last-step model (threshold 50) and a file of series a and b, 60 records each,
    where ``spiking`` jumps to 100 at row 40: (model folder, times, data file)."""
    model = write_registry_model(tmp_path / "registry" / "m" / "1",
                                 window_mean_model(4, 1, last_k=1), name="m", window=4,
                                 threshold=50.0, detection=RAW)
    times = pd.date_range(T0, periods=60, freq="5min")
    rows = [(t, 100.0 if (key == spiking and i == 40) else 10.0, key)
            for i, t in enumerate(times) for key in ("a", "b")]
    data = tmp_path / "two.csv"
    pd.DataFrame(rows, columns=["timestamp", "value", "series"]).to_csv(data, index=False)
    return model, times, data


def test_each_key_is_judged_by_its_own_windows(tmp_path: Path) -> None:
    """Key a spikes at row 40, key b never; both have a window there. Before, a's alert
    was matched by its time alone and detected b's window too (and a sales file's 12 keys
    were all judged against one key's windows)."""
    model, times, data = two_series(tmp_path, spiking="a")
    span = [str(times[39]), str(times[44])]  # a's 4 windows holding its spike alert
    labels = write(tmp_path / "labels.json", {"a": [span], "b": [span]})
    out = tmp_path / "report"
    result = runner.invoke(app, ["evaluate", "--model", str(model.parent), "--data", str(data),
                                 "--labels", str(labels), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    alert = report["alert_level"]
    assert (alert["true_alerts"], alert["false_alerts"]) == (4, 0)
    assert (alert["labelled_windows"], alert["windows_detected"]) == (2, 1)
    assert alert["missed_windows"] == [f"b @ {times[39]} .. {times[44]}"]
    assert report["labelled_keys"] == 2
    page = (out / "index.html").read_text()
    assert "<h2>a</h2>" in page and "<h2>b</h2>" in page  # a chart per key
    # the file's windows for a file of two series: refused, naming both ways out
    nab = write(tmp_path / "nab.json", {"group/two.csv": [span]})
    refused = runner.invoke(app, ["evaluate", "--model", str(model.parent), "--data",
                                  str(data), "--labels", str(nab), "--out", str(out)])
    assert refused.exit_code == 1 and "give windows per key" in refused.output


def test_keys_the_labels_do_not_name_are_said_with_their_alerts(tmp_path: Path) -> None:
    """Labels for a alone: b's alerts were left out of every figure without a word, and a
    file without a labelled window got "NAB standard score: 0.0 (... 0 = no alerts)"."""
    model, times, data = two_series(tmp_path, spiking="b")
    labels = write(tmp_path / "labels.json", {"a": []})
    out = tmp_path / "report"
    result = runner.invoke(app, ["evaluate", "--model", str(model.parent), "--data", str(data),
                                 "--labels", str(labels), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["unlabelled_keys"] == {"keys": 1, "alerts": 4, "names": ["b"]}
    assert "not judged: 1 key(s) the labels do not name (b), with 4 alert(s)" in result.output
    assert "NAB standard score: not defined (no labelled window" in result.output
