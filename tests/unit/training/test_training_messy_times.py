"""Files with repeated or out-of-order timestamps: offline takes them as the worker does.

A public server-metrics series has 12 rows stamped 2014-03-09 03:00:00 (a clock step at a
daylight-saving change). ``train``, ``score`` and ``evaluate`` used to refuse such a file
("keep one row per time") while the worker scored the same records; now all three accept
it (rows in file order, windows flagged like the worker's), and ``--strict-time`` refuses.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from schemas.card import ModelCard
from stream_detector.cli.main import app

pytestmark = pytest.mark.slow
runner = CliRunner()


def dst_file(tmp: Path) -> Path:
    rng = np.random.default_rng(0)
    stamps = list(pd.date_range("2014-03-07 06:00", periods=700, freq="5min"))
    at = stamps.index(pd.Timestamp("2014-03-09 03:00"))
    stamps[at + 1 : at + 12] = [pd.Timestamp("2014-03-09 03:00")] * 11  # 12 rows in all
    stamps[400], stamps[401] = stamps[401], stamps[400]  # and one out of order
    frame = pd.DataFrame({"timestamp": [t.strftime("%Y-%m-%d %H:%M:%S") for t in stamps],
                          "value": rng.normal(50.0, 5.0, 700).round(2)})
    path = tmp / "server_metrics.csv"
    frame.to_csv(path, index=False)
    return path


def test_train_score_evaluate_accept_repeated_times_and_strict_refuses(tmp_path: Path) -> None:
    data = dst_file(tmp_path)
    strict = runner.invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "r"),
                                 "--epochs", "1", "--no-progress", "--strict-time"])
    assert strict.exit_code != 0 and "duplicate timestamp 2014-03-09 03:00:00" in strict.output
    trained = runner.invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "r"),
                                  "--train-fraction", "0.5", "--epochs", "1", "--no-progress"])
    assert trained.exit_code == 0, trained.output
    card = ModelCard.model_validate_json(
        (tmp_path / "r" / "server_metrics" / "1" / "card.json").read_text())
    assert card.time is not None and card.time.cadence_s == 300.0  # learned, not 0 or refused
    out = tmp_path / "scores.csv"
    scored = runner.invoke(app, ["score", "--model", str(tmp_path / "r" / "server_metrics"),
                                 "--data", str(data), "--out", str(out), "--no-progress"])
    assert scored.exit_code == 0, scored.output
    frame = pd.read_csv(out)
    assert len(frame) == 700 - 24 + 1
    assert frame["late"].sum() == 24  # the windows holding the one out-of-order row
    flags = frame["flags"].fillna("")
    assert flags.str.contains("repeated").sum() == 11 + 23  # windows holding a repeat
    evaluated = runner.invoke(app, ["evaluate", "--model", str(tmp_path / "r" / "server_metrics"),
                                    "--data", str(data), "--out", str(tmp_path / "rep")])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["windows"] == 677
