"""train -> score -> evaluate on a generated series, through the CLI as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from offline_training.synthetic_series import (
    SeriesConfig,
    make_series,
    write_labels,
    write_series_csv,
)
from schemas.card import ModelCard
from stream_detector.cli.main import app

pytestmark = pytest.mark.slow
runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("flow")
    series = make_series(SeriesConfig(rows=3000, magnitude=12.0), seed=3, key="demo")
    data = write_series_csv(tmp / "demo.csv", series)
    labels = write_labels(tmp / "labels.json", {"demo.csv": series})[0]
    result = runner.invoke(app, ["train", "--data", str(data), "--out", str(tmp / "registry"),
                                 "--train-fraction", "0.3", "--epochs", "3", "--no-progress",
                                 # fixed here: the tests below need alerts on this series,
                                 # whatever the default threshold (DEFAULTS) moves to
                                 "--threshold-value", "4.5"])
    assert result.exit_code == 0, result.output
    (tmp / "train-output.txt").write_text(result.output)
    return tmp, data, labels


def test_train_registers_a_verified_model_with_card_and_plots(
    trained: tuple[Path, Path, Path],
) -> None:
    tmp, _, _ = trained
    model_dir = tmp / "registry" / "demo" / "1"
    card = ModelCard.model_validate_json((model_dir / "card.json").read_text())
    assert card.family == "dense" and card.record_kind == "series"
    # the default model: raw scaling, scores z-scored per key, a sigma threshold (as asked)
    assert card.scaler.transform == "none" and card.detection["offset"] > 0
    assert (card.thresholds.method, card.thresholds.default) == ("sigma", 4.5)
    assert card.training["train_fraction"] == 0.3 and card.training["epochs"] <= 3
    assert (model_dir / "history.png").stat().st_size > 0
    assert not list((tmp / "registry" / "demo").glob(".*partial"))
    # the version folder is mostly the model: PNGs, no page embedding plotly.js per file
    assert not list(model_dir.glob("*.html"))
    assert sum(p.stat().st_size for p in model_dir.iterdir()) < 500_000
    said = (tmp / "train-output.txt").read_text().splitlines()
    assert said[-4].startswith("trained demo v1: dense autoencoder, window 24")
    assert said[-3].startswith("threshold: 4.5 (z-score")
    assert said[-2].startswith(f"saved: {model_dir} (")
    assert said[-1].startswith("next: stream-detector score --model")


def test_score_writes_every_window_with_the_alerting_decision(
    trained: tuple[Path, Path, Path],
) -> None:
    tmp, data, _ = trained
    out = tmp / "scores.csv"
    result = runner.invoke(app, ["score", "--model", str(tmp / "registry" / "demo"),
                                 "--data", str(data), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert len(frame) == 3000 - 24 + 1
    assert set(frame.columns) >= {"timestamp", "key", "score", "threshold", "alert",
                                  "top_contributors"}
    assert frame["alert"].sum() >= 1 and (frame["key"] == "demo").all()


def test_score_writes_parquet_by_its_suffix_and_refuses_other_suffixes(
    trained: tuple[Path, Path, Path],
) -> None:
    """--out x.parquet and x.json got CSV text under those names, without a word."""
    tmp, data, _ = trained
    args = ["score", "--model", str(tmp / "registry" / "demo"), "--data", str(data),
            "--no-progress", "--out"]
    result = runner.invoke(app, [*args, str(tmp / "scores.parquet")])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(tmp / "scores.parquet")
    assert len(frame) == 3000 - 24 + 1 and frame["alert"].dtype == bool
    result = runner.invoke(app, [*args, str(tmp / "scores.json")])
    assert result.exit_code == 2 and "written as CSV (.csv) or Parquet" in result.output
    assert not (tmp / "scores.json").exists()


def test_evaluate_shows_its_scoring_progress_unless_told_not_to(
    trained: tuple[Path, Path, Path],
) -> None:
    """evaluate had no progress bar (and no --no-progress), unlike train, score and replay."""
    tmp, data, _ = trained
    args = ["evaluate", "--model", str(tmp / "registry" / "demo"), "--data", str(data)]
    shown = runner.invoke(app, [*args, "--out", str(tmp / "ev-bar")])
    assert shown.exit_code == 0, shown.output
    assert f"scoring {data.name}" in shown.output and "3000/3000 records" in shown.output
    quiet = runner.invoke(app, [*args, "--out", str(tmp / "ev-quiet"), "--no-progress"])
    assert quiet.exit_code == 0 and f"scoring {data.name}" not in quiet.output


def test_evaluate_reports_nab_and_auc_and_writes_plots(trained: tuple[Path, Path, Path]) -> None:
    tmp, data, labels = trained
    out = tmp / "eval"
    result = runner.invoke(app, ["evaluate", "--model", str(tmp / "registry" / "demo"),
                                 "--data", str(data), "--labels", str(labels),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    alert, window, nab = report["alert_level"], report["window_level"], report["nab"]
    # alert level counts the worker's decisions; window level every window above threshold
    assert alert["alerts"] == report["alerts"] == alert["true_alerts"] + alert["false_alerts"]
    assert alert["labelled_windows"] >= 1 and window["roc_auc"] > 0.5
    assert window["windows_above_threshold"] >= alert["alerts"]
    assert len(alert["missed_windows"]) == alert["labelled_windows"] - alert["windows_detected"]
    assert -100 <= nab["standard_normalised"] <= 100 and nab["perfect"] > 0
    assert all(len(repr(v)) < 12 for v in window.values())  # rounded for people
    page = (out / "index.html").read_text()
    assert page.count("<script>") == 1 + page.count("Plotly.newPlot")  # plotly.js once
    for text in ("Alert level", "Window level", "NAB standard score", "false alert",
                 "quiet period", "detection score (z-score"):
        assert text in page
    assert sorted(p.suffix for p in out.iterdir()) == [".html", ".json", ".png", ".png", ".png"]
    lines = result.output.strip().splitlines()
    assert lines[-1] == f"report: {out / 'index.html'}"
    assert any(x.startswith("alert level: ") for x in lines)
    assert any(x.startswith("NAB standard score: ") for x in lines)


def test_bad_data_is_one_clear_error_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2015-01-01 00:00:00,abc\n")
    result = runner.invoke(app, ["train", "--data", str(bad), "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "bad.csv" in result.output and "abc" in result.output


def test_too_little_data_to_train_is_one_clear_error_line(tmp_path: Path) -> None:
    few = tmp_path / "few.csv"
    few.write_text("a,b\n1,2\n3,4\n")  # two feature vectors: two windows of one
    result = runner.invoke(app, ["train", "--data", str(few), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1, result.output
    # 11: 9 to fit, and 2 validation events to measure the error spread on (with 3, the
    # number this said before, training ended in "ValueError: error_spread needs ...")
    assert "gives 2 window(s) of 1 record(s); training needs at least 11" in result.output
    assert not (tmp_path / "r").exists()
    enough = tmp_path / "enough.csv"
    enough.write_text("a,b\n" + "".join(f"{i},{i % 3}\n" for i in range(11)))
    result = runner.invoke(app, ["train", "--data", str(enough), "--out", str(tmp_path / "r"),
                                 "--epochs", "1", "--no-progress"])
    assert result.exit_code == 0, result.output


def test_missing_values_are_filled_in_on_request_and_said(tmp_path: Path) -> None:
    series = make_series(SeriesConfig(rows=400), seed=1, key="gaps")
    data = write_series_csv(tmp_path / "gaps.csv", series)
    lines = data.read_text().splitlines()
    for row in (5, 50, 51):
        lines[row] = lines[row].split(",")[0] + ","
    data.write_text("\n".join(lines) + "\n")
    args = ["train", "--data", str(data), "--out", str(tmp_path / "r"), "--epochs", "1",
            "--no-progress"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1 and "--missing impute" in refused.output
    result = runner.invoke(app, [*args, "--missing", "impute"])
    assert result.exit_code == 0, result.output
    said = result.output.strip().splitlines()
    assert "on 400 records (3 missing values filled in) of 1 key(s)" in said[-4]
    assert said[-1].endswith(f"--data {data} --missing impute --out scores.csv")
    card = ModelCard.model_validate_json(
        (tmp_path / "r" / "gaps" / "1" / "card.json").read_text())
    assert card.training["imputed"] == 3


def test_the_next_line_can_be_pasted_into_a_shell(tmp_path: Path) -> None:
    import shlex

    series = make_series(SeriesConfig(rows=400), seed=2, key="x")
    data = write_series_csv(tmp_path / "my data é.csv", series)  # a spreadsheet's file name
    result = runner.invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "r s"),
                                 "--epochs", "1", "--no-progress"])
    assert result.exit_code == 0, result.output
    words = shlex.split(result.output.strip().splitlines()[-1].removeprefix("next: "))
    assert words == ["stream-detector", "score", "--model", str(tmp_path / "r s" / "my-data"),
                     "--data", str(data), "--out", "scores.csv"]


def test_evaluate_replaces_its_own_report_and_refuses_a_folder_of_other_files(
    trained: tuple[Path, Path, Path],
) -> None:
    """It replaced a folder's index.html and report.json without a word (the data folder's
    too), and left an earlier labelled run's plots beside a report without labels."""
    tmp, data, labels = trained
    out = tmp / "again"
    base = ["evaluate", "--model", str(tmp / "registry" / "demo"), "--data", str(data),
            "--out", str(out)]
    assert runner.invoke(app, [*base, "--labels", str(labels)]).exit_code == 0
    assert len(list(out.glob("*.png"))) == 3
    unlabelled = runner.invoke(app, base)
    assert unlabelled.exit_code == 0, unlabelled.output
    assert [p.name for p in out.glob("*.png")] == ["score_distribution.png"]  # no stale plot

    mine = tmp / "mine"
    mine.mkdir()
    (mine / "index.html").write_text("<h1>my site</h1>")
    (mine / "notes.txt").write_text("precious")
    refused = runner.invoke(app, [*base[:-1], str(mine)])
    assert refused.exit_code == 1
    assert f"--out {mine} holds other files (" in refused.output
    assert (mine / "index.html").read_text() == "<h1>my site</h1>"


def test_a_diverging_fit_is_one_line_and_a_failed_step_leaves_no_partial_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A learning rate of 1e9: the NaN loss history failed the card's validation after the
    export, in a 60-line traceback, and left registry/NAME/.1.partial behind."""
    data = write_series_csv(tmp_path / "s.csv", make_series(SeriesConfig(rows=400), seed=2,
                                                            key="s"))
    config = tmp_path / "lr.yaml"
    config.write_text("train:\n  lr: 1.0e+9\n")
    out = tmp_path / "registry"
    result = runner.invoke(app, ["train", "--data", str(data), "--out", str(out), "--config",
                                 str(config), "--no-progress"])
    assert result.exit_code == 1, result.output
    (line,) = [x for x in result.output.splitlines() if x.strip()][-1:]
    assert line.startswith("error: training diverged at epoch 1: the loss is ")
    assert "lower the learning rate (train.lr, now 1e+09)" in line
    assert "Traceback" not in result.output
    assert not list(out.rglob("*.partial"))

    import stream_detector.core.registry as registry

    def refuse(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(registry, "publish_version", refuse)
    failed = runner.invoke(app, ["train", "--data", str(data), "--out", str(out), "--epochs",
                                 "1", "--no-progress"])
    assert failed.exit_code == 1 and "disk full" in failed.output
    assert list((out / "s").iterdir()) == []  # the staging folder went with the failure


def test_train_names_the_keys_too_short_for_a_window(tmp_path: Path) -> None:
    """A series of 10 records (window 24) was counted among the keys trained on, with no
    word that it gave no window (score said so; train did not)."""
    rows = ["timestamp,value,series"]
    rows += [f"2024-01-01T{i // 60:02d}:{i % 60:02d}:00,{10 + i % 7},A" for i in range(300)]
    rows += [f"2024-01-01T{i // 60:02d}:{i % 60:02d}:00,{10 + i % 3},B" for i in range(10)]
    data = tmp_path / "two.csv"
    data.write_text("\n".join(rows) + "\n")
    result = runner.invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "r"),
                                 "--epochs", "1", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert ("of 2 key(s)" in result.output and "1 of them had fewer records than the window "
            "and no window to train on: B") in result.output, result.output
    card = ModelCard.model_validate_json(
        (tmp_path / "r" / "two" / "1" / "card.json").read_text())
    assert card.training["keys_without_window"] == ["B"]


def test_train_says_why_there_is_no_calibration_plot(tmp_path: Path) -> None:
    """A warm-up longer than the training part left no score to plot, and train wrote no
    calibration_scores.png without a word (found by a new-user helper)."""
    series = make_series(SeriesConfig(rows=1500), seed=1, key="s")
    data = write_series_csv(tmp_path / "s.csv", series)
    config = tmp_path / "c.yaml"
    config.write_text("detection: {warmup: 2000}\n")
    result = runner.invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "r"),
                                 "--train-fraction", "0.5", "--epochs", "1", "--no-progress",
                                 "--config", str(config)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "no calibration_scores plot: every training window was in its key's warm-up " \
           "(2000 windows)" in said, result.output
    version = next((tmp_path / "r" / "s").iterdir())
    assert (version / "history.png").exists()
    assert not (version / "calibration_scores.png").exists()
