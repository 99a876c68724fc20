"""``train --config``: every key checked with its type before any work, one line per fault;
flags given on the command line win over the file; ``--train-until`` as one line too."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from offline_training.train import split_records
from offline_training.train_config import checked_options, read_config
from schemas.records import SeriesPoint
from stream_detector.cli.main import app
from stream_detector.exceptions import DataError

runner = CliRunner()


def config(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("name", "text", "message"), [
    ("c.yaml", "epochs: [\n", r"c.yaml: not valid YAML \(.*line 2.*\); fix the syntax"),
    ("c.json", '{"window": 12,}', r"c.json: not valid JSON \(.*\); fix the syntax"),
    ("c.yaml", "- 1\n- 2\n", r"must hold a mapping of options \(name: value\), not a list"),
    ("c.yaml", "windoww: 12\n", r"unknown option\(s\) \['windoww'\]; known: detection, "),
    ("c.yaml", "window: abc\n", r"c.yaml: window: Input should be a valid integer.*'abc'"),
    ("c.yaml", "train:\n  lr: fast\n", r"c.yaml: train.lr: Input should be a valid number"),
    ("c.yaml", "train:\n  epochs: 3\n", r"train: unknown setting\(s\) \['epochs'\]; known: "),
    ("c.yaml", "data: other.csv\n", r"unknown option\(s\) \['data'\]"),  # a flag's job
])
def test_a_bad_config_is_one_line_naming_file_and_key(
    tmp_path: Path, name: str, text: str, message: str,
) -> None:
    path = config(tmp_path, text, name)
    with pytest.raises(DataError, match=message):
        checked_options(read_config(path), path)


def test_a_good_config_is_typed() -> None:
    options, train = checked_options(
        {"window": "12", "detection": {"suppress": 14}, "train": {"lr": 0.01}}, Path("c.yaml"))
    assert options == {"window": 12, "detection": {"suppress": 14}} and train == {"lr": 0.01}


def test_flags_given_win_over_the_file_and_the_file_over_defaults(tmp_path: Path) -> None:
    data = tmp_path / "s.csv"
    data.write_text("timestamp,value\n" + "".join(
        f"2024-01-01T00:{m:02d}:00,{m % 5}\n" for m in range(40)))
    path = config(tmp_path, "window: 500\n")
    args = ["train", "--data", str(data), "--out", str(tmp_path / "r"), "--config", str(path),
            "--no-progress", "--epochs", "1"]
    # the window decides the error, before any training: whose window it was shows
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "no key has 500 training rows" in result.output
    result = runner.invoke(app, [*args, "--window", "300"])
    assert result.exit_code == 1 and "no key has 300 training rows" in result.output


def point(minute: int) -> SeriesPoint:
    return SeriesPoint(kind="series", series="a", value=1.0,
                       timestamp=f"2024-01-01T00:{minute:02d}:00")


def test_train_until_takes_iso_times_with_offsets_and_says_what_is_wrong() -> None:
    records = [point(m) for m in range(10)]
    assert len(split_records(records, None, "2024-01-01T00:04:00")) == 5
    assert len(split_records(records, None, "2024-01-01T01:04:00+01:00")) == 5  # = 00:04Z
    with pytest.raises(DataError, match="--train-until 'yesterday' is not an ISO 8601 time"):
        split_records(records, None, "yesterday")
    with pytest.raises(DataError, match="no record is that old; the data starts at "
                                        "2024-01-01T00:00:00"):
        split_records(records, None, "2023-12-31")


@pytest.mark.parametrize("version", ["../v", "a/b", ".hidden", "v" * 200])
def test_a_bad_version_is_refused_before_training(tmp_path: Path, version: str) -> None:
    data = tmp_path / "s.csv"
    data.write_text("timestamp,value\n2024-01-01T00:00:00,1\n")  # too short to train on:
    result = runner.invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "r"),
                                 "--version", version, "--no-progress"])  # the version first
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"--version {version!r}: use letters, digits" in result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("where", ["flag", "file"])
def test_a_window_over_the_workers_bound_is_refused_first(tmp_path: Path, where: str) -> None:
    # before: trained up to the windowing, then "ValueError: window must be in 1..4096"
    data = tmp_path / "s.csv"
    data.write_text("timestamp,value\n" + "".join(
        f"2024-01-01T00:00:{s:02d},{s}\n" for s in range(60)))
    args = ["train", "--data", str(data), "--out", str(tmp_path / "r"), "--no-progress"]
    # checked in train(), not by the flag: --help must not import the schemas (pydantic)
    args += (["--window", "5000"] if where == "flag"
             else ["--config", str(config(tmp_path, "window: 5000\n"))])
    expected = "--window 5000: must be 1 to 4,096 records"
    result = runner.invoke(app, args)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert expected in " ".join(result.output.split()), result.output


@pytest.mark.parametrize(("text", "said"), [
    # scoring such a model crashed (a worker dead-lettered every record that would alert)
    ('detection: {suppress: "two weeks"}', r"detection.suppress: Input should be a valid "
                                           r"integer \(got 'two weeks'\)"),
    ("detection: {normalise: maybe}", "detection.normalise: Input should be a valid boolean"),
    ("detection: {supress: 14}", r"detection: unknown setting\(s\) 'supress' \(did you mean "
                                 r"'suppress'\?\); known: .*warmup"),
    ("detection: {suppress: -1}", r"detection.suppress: must be a finite number >= 0"),
    ("detection: {halflife: .nan}", r"detection.halflife: must be a finite number >= 0"),
    # true was taken as 1: a 1-window cap, silently
    ("detection: {max_windows: true}", r"detection.max_windows: must be a number, not true"),
    ("detection: {collapse: false}", r"detection.collapse: must be a number, not false"),
    ("train: {max_epochs: true}", r"train.max_epochs: must be a number, not true"),
    ("window: true", r"window: must be a number, not true"),  # int | None
    ("train: {num_threads: false}", r"train.num_threads: must be a number, not false"),
    # YAML 1.1 reads 1e3 as text: the message said the number was not one
    ("detection: {max_windows: 1e3}", r"detection.max_windows: Input should be a valid "
                                      r"integer \(got '1e3', text: YAML reads 1e3 as a string"),
    # settings that size every key's state: a million kept shapes was a GiB per key
    ("detection: {recur_memory: 1000000}", r"detection.recur_memory: must be at most 64 "
                                           r"\(got 1000000\): it sizes every key's state"),
    ("detection: {recur: 1000}", r"detection.recur: must be at most 256"),
    ("detection: {season: 100000}", r"detection.season: must be at most 2016"),
])
def test_the_detection_section_is_checked_setting_by_setting(
    tmp_path: Path, text: str, said: str,
) -> None:
    path = config(tmp_path, text)
    with pytest.raises(DataError, match=said):
        checked_options(read_config(path), path)


def test_a_valid_detection_section_passes_with_its_types() -> None:
    options, _ = checked_options({"detection": {"suppress": 14, "normalise": False,
                                                "halflife_s": 3600, "offset_factor": 3}},
                                 Path("c.yaml"))
    assert options["detection"] == {"suppress": 14, "normalise": False, "halflife_s": 3600.0,
                                    "offset_factor": 3.0}


@pytest.mark.parametrize(("flags", "said"), [
    (["--threshold-method", "percentile", "--threshold-value", "150"],
     "--threshold-value 150 (percentile): percentile must be in (0, 100)"),
    (["--threshold-value", "0"], "--threshold-value 0 (sigma): sigma must be in (0, 100]"),
    (["--threshold-method", "fpr", "--threshold-value", "nan"], "--threshold-value nan (fpr)"),
])
def test_a_threshold_value_its_method_cannot_use_is_refused_before_training(
    tmp_path: Path, flags: list[str], said: str,
) -> None:
    """It crashed with a traceback, after the whole fit."""
    data = tmp_path / "s.csv"
    data.write_text("timestamp,value\n" + "".join(
        f"2015-01-01 {i // 60:02d}:{i % 60:02d}:00,{i % 7}\n" for i in range(600)))
    result = runner.invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "r"),
                                 "--no-progress", *flags])
    assert result.exit_code == 1, result.output
    assert said in result.output and "Traceback" not in result.output
    assert "epoch" not in result.output.lower()  # refused before any training
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").rglob("model.onnx"))
