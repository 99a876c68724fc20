"""``score`` and ``evaluate`` on files a user brings: whatever the file, either every window
is scored or the command stops with one line that says what to do (never silently nothing)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from model_fixtures import window_mean_model, write_registry_model
from typer.testing import CliRunner

from stream_detector.cli.main import app

runner = CliRunner()
WINDOW = 4


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    """A registry entry serving the one trained key ``known``."""
    return write_registry_model(tmp_path / "registry" / "known" / "1",
                                window_mean_model(WINDOW, 1), name="known", window=WINDOW,
                                serves={"keys": ["known"]})


def series_csv(path: Path, rows: int = 40) -> Path:
    stamps = pd.date_range("2024-01-01", periods=rows, freq="5min")
    values = [float(i % 7) for i in range(rows)]
    pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%d %H:%M:%S"),
                  "value": values}).to_csv(path, index=False)
    return path


def one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    assert "Traceback" not in output
    return lines[0]


def _refused(command: str, model: Path, data: Path, out: Path) -> str:
    """``command`` (score or evaluate) on ``data``: exit 1 and its one error line."""
    result = runner.invoke(app, [command, "--model", str(model.parent), "--data", str(data),
                                 "--out", str(out), "--no-progress"])
    assert result.exit_code == 1
    return one_error_line(result.output)


@pytest.mark.parametrize("command", ["score", "evaluate"])
def test_a_file_of_a_key_the_model_does_not_serve_is_refused_not_scored_empty(
    model: Path, tmp_path: Path, command: str,
) -> None:
    # the key is the file stem, "other": the worker would dead-letter every record unrouted
    out = tmp_path / ("scores.csv" if command == "score" else "report")
    line = _refused(command, model, series_csv(tmp_path / "other.csv"), out)
    assert "serves keys known, not other" in line and "--key" in line
    assert not out.exists()


def test_the_same_file_named_with_key_scores_every_window(model: Path, tmp_path: Path) -> None:
    data = series_csv(tmp_path / "other.csv")
    out = tmp_path / "scores.csv"
    result = runner.invoke(app, ["score", "--model", str(model.parent), "--data", str(data),
                                 "--key", "known", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out)) == 40 - WINDOW + 1


@pytest.mark.parametrize("command", ["score", "evaluate"])
def test_a_file_shorter_than_one_window_says_so(
    model: Path, tmp_path: Path, command: str,
) -> None:
    out = tmp_path / ("scores.csv" if command == "score" else "report")
    line = _refused(command, model, series_csv(tmp_path / "known.csv", rows=WINDOW - 1), out)
    assert f"{WINDOW - 1} record(s)" in line and f"needs {WINDOW}" in line


def test_records_as_json_lines_score_like_the_csv(model: Path, tmp_path: Path) -> None:
    # the worker's input: one JSON record (or list of one key's records) per message
    import json

    frame = pd.read_csv(series_csv(tmp_path / "known.csv"))
    lines = [json.dumps({"kind": "series", "series": "known",
                         "timestamp": t.replace(" ", "T"), "value": v})
             for t, v in zip(frame["timestamp"], frame["value"], strict=True)]
    (tmp_path / "known.jsonl").write_text("\n".join(lines) + "\n")
    scored = {}
    for name in ("known.csv", "known.jsonl"):
        out = tmp_path / f"{name}.scores.csv"
        result = runner.invoke(app, ["score", "--model", str(model.parent), "--data",
                                     str(tmp_path / name), "--out", str(out), "--no-progress"])
        assert result.exit_code == 0, result.output
        scored[name] = pd.read_csv(out)
    assert len(scored["known.jsonl"]) == 40 - WINDOW + 1
    pd.testing.assert_frame_equal(scored["known.jsonl"], scored["known.csv"])


@pytest.mark.parametrize(("value", "refused"), [(1e30, True), (-1e19, True), (1e15, False)])
def test_a_value_the_model_cannot_compute_with_is_named_not_a_traceback(
    model: Path, tmp_path: Path, value: float, refused: bool,
) -> None:
    data = series_csv(tmp_path / "known.csv")
    frame = pd.read_csv(data)
    frame.loc[7, "value"] = value  # record 8; float32 squares overflow past about 1.8e19
    frame.to_csv(data, index=False)
    out = tmp_path / "scores.csv"
    result = runner.invoke(app, ["score", "--model", str(model.parent), "--data", str(data),
                                 "--out", str(out), "--no-progress"])
    if not refused:
        assert result.exit_code == 0, result.output
        assert len(pd.read_csv(out)) == 40 - WINDOW + 1
        return
    assert result.exit_code == 1
    line = one_error_line(result.output)
    assert f"record 8 (known at 2024-01-01T00:35:00): value {value:.4g} is too large" in line


def test_a_long_key_is_cut_in_messages(tmp_path: Path) -> None:
    import json

    key = "k" * 5000  # over the schema's 256 characters
    records = [{"kind": "series", "series": key, "timestamp": f"2024-01-01T00:0{i}:00",
                "value": i} for i in range(5)]
    (tmp_path / "long.json").write_text(json.dumps(records))
    result = runner.invoke(app, ["train", "--data", str(tmp_path / "long.json"),
                                 "--out", str(tmp_path / "registry"), "--no-progress"])
    assert result.exit_code == 1
    line = one_error_line(result.output)
    assert "record 1 (kkkk" in line and "at most 256 characters" in line and len(line) < 300


@pytest.mark.parametrize("command", ["score", "evaluate"])
def test_missing_values_are_refused_naming_the_option_or_filled_in_and_flagged(
    model: Path, tmp_path: Path, command: str,
) -> None:
    data = series_csv(tmp_path / "known.csv")
    text = data.read_text().splitlines()
    text[11] = text[11].split(",")[0] + ",NaN"  # row 11 (line 12)
    text[20] = text[20].split(",")[0] + ","  # row 20 (line 21): empty
    data.write_text("\n".join(text) + "\n")
    out = tmp_path / ("scores.csv" if command == "score" else "report")
    args = [command, "--model", str(model.parent), "--data", str(data), "--out", str(out)]
    args += ["--no-progress"] if command == "score" else []
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1
    line = one_error_line(refused.output)
    assert "row 11 (line 12), column 'value'" in line and "--missing impute" in line
    if command == "score":  # evaluate reads the file through the same load_source
        filled = runner.invoke(app, [*args, "--missing", "impute"])
        assert filled.exit_code == 0, filled.output
        assert "windows (2 missing values filled in)" in filled.output
        frame = pd.read_csv(out, keep_default_na=False)
        assert len(frame) == 40 - WINDOW + 1
        # windows holding an imputed record carry the flag, as the worker's events do
        flagged = frame.loc[frame["flags"].str.contains("imputed"), "timestamp"].tolist()
        assert len(flagged) == 2 * WINDOW and flagged[0] == "2024-01-01T00:50:00"


def test_score_says_what_the_time_policy_flagged(model: Path, tmp_path: Path) -> None:
    data = series_csv(tmp_path / "known.csv")
    frame = pd.read_csv(data)
    frame.iloc[[10, 11]] = frame.iloc[[11, 10]].to_numpy()  # two rows swapped: one is late
    frame.loc[30, "timestamp"] = frame.loc[29, "timestamp"]  # one time repeated
    frame.to_csv(data, index=False)
    out = tmp_path / "scores.csv"
    result = runner.invoke(app, ["score", "--model", str(model.parent), "--data", str(data),
                                 "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    said = result.output.strip().splitlines()
    assert said[0].startswith("scored 37 windows of 1 key(s)")
    assert said[1].startswith("time: records kept in file order and flagged as a worker "
                              "flags them: 1 repeated, 1 late (earlier than one before)")


@pytest.mark.parametrize(("name", "size", "limit"), [("big.csv", 3 * 1024**3, "2.0 GiB"),
                                                     ("big.jsonl", 300 * 1024**2, "256 MiB")])
def test_a_file_over_the_size_bound_is_refused_before_reading(
    model: Path, tmp_path: Path, name: str, size: int, limit: str,
) -> None:
    path = tmp_path / name
    with path.open("wb") as handle:  # sparse: the size is claimed, no disk is used
        handle.truncate(size)
    for command in (["score", "--model", str(model.parent), "--no-progress"],
                    ["train", "--out", str(tmp_path / "r"), "--no-progress"]):
        result = runner.invoke(app, [*command, "--data", str(path)])
        assert result.exit_code == 1
        line = one_error_line(result.output)
        assert f"exceeds the limit of {limit} one file may hold" in line and "split it" in line


def test_a_file_or_kind_the_model_does_not_read_is_named(model: Path, tmp_path: Path) -> None:
    sales = tmp_path / "known.csv"
    sales.write_text("date,store,item,sales\n" + "".join(
        f"2017-01-{d:02d},1,7,{d}\n" for d in range(1, 20)))
    base = ["score", "--model", str(model.parent), "--out", str(tmp_path / "s.csv"),
            "--no-progress"]
    result = runner.invoke(app, [*base, "--data", str(sales)])
    assert result.exit_code == 1
    assert "known.csv: holds sales rows (date, store, item, sales); model known reads series " \
           "records (timestamp, value)" in one_error_line(result.output)
    result = runner.invoke(app, [*base, "--data", str(series_csv(tmp_path / "known2.csv")),
                                 "--kind", "events"])
    assert result.exit_code == 1
    assert "--kind events: model known reads series records" in one_error_line(result.output)
    # a table without time columns is no evidence of events: the missing columns are named
    odd = tmp_path / "odd.csv"
    odd.write_text("host,cpu\nweb-1,0.5\n")
    result = runner.invoke(app, [*base, "--data", str(odd)])
    assert "missing column(s) ['timestamp', 'value']; found ['host', 'cpu']" in \
        one_error_line(result.output)


def test_evaluate_of_a_file_all_in_warm_up_says_so(tmp_path: Path) -> None:
    # before: an empty histogram on a log scale (a matplotlib UserWarning) and a report of
    # nothing; the tiny model warms up over its first 50 windows
    entry = write_registry_model(tmp_path / "registry" / "known" / "1",
                                 window_mean_model(WINDOW, 1), name="known", window=WINDOW,
                                 serves={"keys": ["known"]}, detection={"warmup": 50})
    data = series_csv(tmp_path / "known.csv")
    out = tmp_path / "report"
    result = runner.invoke(app, ["evaluate", "--model", str(entry.parent), "--data", str(data),
                                 "--out", str(out), "--no-progress"])
    assert result.exit_code == 1
    assert "all 37 windows are in the detector's warm-up (the first 50 windows of each key" \
        in one_error_line(result.output)
    assert not out.exists()


def test_more_records_than_memory_holds_are_refused_before_building_them(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stream_detector.files import batch

    # the kernel would kill the process instead, without a word: 300,000 records took
    # 600 MB; here 40 records against 50 KB free
    monkeypatch.setattr(batch, "available_memory", lambda: 50_000)
    data = series_csv(tmp_path / "known.csv")
    for command in (["score", "--no-progress", "--out", str(tmp_path / "s.csv")],
                    ["evaluate", "--out", str(tmp_path / "report")]):
        result = runner.invoke(app, [command[0], "--model", str(model.parent), "--data",
                                     str(data), *command[1:]])
        assert result.exit_code == 1
        assert "known.csv: 40 records need about 0.1 MB of memory here and 0.1 MB is free; " \
               "split the file" in one_error_line(result.output)
    batch.require_memory(25, "f.csv", available=50_000)  # fits: no error
    with pytest.raises(batch.DataError, match="f.csv: 26 records need about"):
        batch.require_memory(26, "f.csv", available=50_000)
    assert batch.available_memory is not None


def test_feature_vectors_of_another_width_than_the_models_are_named(tmp_path: Path) -> None:
    from model_fixtures import energy_model

    # before: "ValueError: expected (n, 3) values, got (1, 2)" from the window state
    entry = write_registry_model(tmp_path / "registry" / "ev" / "1", energy_model(3),
                                 name="ev", window=1, features=["f0", "f1", "f2"],
                                 record_kind="events")
    data = tmp_path / "two.csv"
    data.write_text("a,b\n1,2\n3,4\n")
    result = runner.invoke(app, ["score", "--model", str(entry.parent), "--data", str(data),
                                 "--out", str(tmp_path / "s.csv"), "--no-progress"])
    assert result.exit_code == 1
    assert "two.csv: record 1 has 2 value(s); model ev takes 3 (f0, f1, f2)" in \
        one_error_line(result.output)


def test_scores_never_overwrite_the_data_file(model: Path, tmp_path: Path) -> None:
    data = series_csv(tmp_path / "known.csv")
    before = data.read_bytes()
    result = runner.invoke(app, ["score", "--model", str(model.parent), "--data", str(data),
                                 "--out", str(tmp_path / "." / "known.csv"), "--no-progress"])
    assert result.exit_code == 2
    said = " ".join(result.output.replace("│", " ").split())  # CliRunner: click's box
    assert "is the --data file: the scores would overwrite it" in said
    assert data.read_bytes() == before  # before: replaced by the scores, without a word


def test_a_huge_cell_or_a_wrapped_record_list_is_still_one_short_line(
    model: Path, tmp_path: Path,
) -> None:
    """A 386 KB error line: a JSON file wrapping its records in {"records": [...]} was read as
    one record whose 'records' cell the message quoted whole; so would any huge cell."""
    import json

    records = [{"kind": "series", "series": "known", "value": i,
                "timestamp": f"2024-01-01T00:{i % 60:02d}:00"} for i in range(3000)]
    (tmp_path / "wrapped.json").write_text(json.dumps({"records": records}))
    line = _refused("score", model, tmp_path / "wrapped.json", tmp_path / "s.csv")
    assert "one JSON object holding a list of 3,000 records under 'records'" in line
    frame = pd.read_csv(series_csv(tmp_path / "known.csv"), dtype=str)
    frame.loc[5, "value"] = "9" * 5000 + "x"  # not a number, and 5 KB of it
    frame.to_csv(tmp_path / "known.csv", index=False)
    line = _refused("score", model, tmp_path / "known.csv", tmp_path / "s.csv")
    assert len(line) <= 1010 and "characters left out" in line and "row 6" in line
