"""Detection settings are durations: trained on daily sales, a x10 day alerts.

One store/item with about 320 days of Poisson(20) sales and a x10 day at day 150: with
warm-up, suppression and half-life counted in windows (288 each, a day of 5-minute data)
the key could not alert for ten months, and ``warm_up`` hid a detection score of 25
against 4.5. Derived from the card's cadence they are 30, 1 and 30 days.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from offline_training.durations import detection_windows
from schemas.card import ModelCard
from stream_detector.cli.main import app

pytestmark = pytest.mark.slow


def test_a_quiet_period_lasts_at_least_the_windows_a_record_stays_in() -> None:
    day = {"suppress_s": 86_400.0, "warmup_s": 86_400.0}
    assert detection_windows(day, 86_400.0, span=24)["suppress"] == 24
    assert detection_windows(day, 86_400.0, span=24)["warmup"] == 30  # suppress only
    assert detection_windows(day, 300.0, span=24)["suppress"] == 288
    assert detection_windows({**day, "suppress": 3}, 86_400.0, span=24)["suppress"] == 3


@pytest.mark.parametrize(("cadence", "expected"), [
    (10.0, {"halflife": 8640, "warmup": 288, "suppress": 288}),
    (60.0, {"halflife": 1440, "warmup": 288, "suppress": 288}),
    (300.0, {"halflife": 288, "warmup": 288, "suppress": 288}),
    (3600.0, {"halflife": 30, "warmup": 30, "suppress": 24}),
    (86_400.0, {"halflife": 30, "warmup": 30, "suppress": 1}),
])
def test_day_long_defaults_fit_every_cadence(cadence: float, expected: dict[str, int]) -> None:
    section = detection_windows({"halflife_s": 86_400.0, "warmup_s": 86_400.0,
                                 "suppress_s": 86_400.0}, cadence)
    assert {k: section[k] for k in expected} == expected


def test_the_warm_up_and_quiet_period_are_capped_in_windows_unless_told_otherwise() -> None:
    """At 1-minute steps a day was 1,440 windows: a key could not alert on its first day and
    one page silenced it for a day; the cap (288) leaves the half-life a day."""
    day = {"halflife_s": 86_400.0, "warmup_s": 86_400.0, "suppress_s": 86_400.0}
    uncapped = detection_windows({**day, "max_windows": 0}, 60.0)
    assert (uncapped["warmup"], uncapped["suppress"]) == (1440, 1440)
    wider = detection_windows({**day, "max_windows": 720}, 60.0)
    assert (wider["warmup"], wider["suppress"], wider["halflife"]) == (720, 720, 1440)
    assert detection_windows({**day, "warmup": 1000}, 60.0)["warmup"] == 1000  # explicit
    assert detection_windows({**day, "max_windows": 10}, 86_400.0)["warmup"] == 30  # floor


def test_a_x10_day_in_daily_sales_alerts(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    days = pd.date_range("2017-01-01", periods=320, freq="D")
    sales = rng.poisson(20, len(days)).astype(float)
    sales[150] *= 10
    data = tmp_path / "sales.csv"
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "store": 1, "item": 7,
                  "sales": sales}).to_csv(data, index=False)
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "r"),
                                  "--train-fraction", "0.4", "--epochs", "5", "--no-progress"])
    assert trained.exit_code == 0, trained.output
    card = ModelCard.model_validate_json((tmp_path / "r" / "sales" / "1" / "card.json")
                                         .read_text())
    assert card.time is not None and card.time.cadence_s == 86_400.0
    # the quiet period covers the 24 windows the x10 day stays in (1 window paged for
    # 16 days in a row after one bad day)
    assert (card.detection["warmup"], card.detection["suppress"]) == (30, 24)
    out = tmp_path / "scores.csv"
    scored = runner.invoke(app, ["score", "--model", str(tmp_path / "r" / "sales"),
                                 "--data", str(data), "--out", str(out), "--no-progress"])
    assert scored.exit_code == 0, scored.output
    frame = pd.read_csv(out)
    spike = frame[frame["timestamp"] == days[150].strftime("%Y-%m-%d")].iloc[0]
    assert not spike["warm_up"] and spike["alert"] and spike["score"] > spike["threshold"]
    after = frame[(frame["timestamp"] > days[150].strftime("%Y-%m-%d"))
                  & (frame["timestamp"] <= days[173].strftime("%Y-%m-%d"))]
    assert not after["alert"].any()  # one bad day, one page


def test_score_says_which_keys_were_too_short_for_a_window(tmp_path: Path) -> None:
    """"scored 377 windows of 2 key(s)": the second key had 10 days, no window, no word."""
    rng = np.random.default_rng(3)
    days = pd.date_range("2017-01-01", periods=100, freq="D")
    frame = pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "store": 1, "item": 7,
                          "sales": rng.poisson(20, len(days)).astype(float)})
    frame.to_csv(tmp_path / "train.csv", index=False)
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "--data", str(tmp_path / "train.csv"), "--out",
                                  str(tmp_path / "r"), "--epochs", "1", "--no-progress"])
    assert trained.exit_code == 0, trained.output
    short = frame.head(10).assign(item=8)
    pd.concat([frame, short]).to_csv(tmp_path / "both.csv", index=False)
    scored = runner.invoke(app, ["score", "--model", str(tmp_path / "r" / "train"), "--data",
                                 str(tmp_path / "both.csv"), "--out", str(tmp_path / "s.csv"),
                                 "--no-progress"])
    assert scored.exit_code == 0, scored.output
    assert " of 1 key(s) with train v1 " in scored.output
    assert "; 1 key(s) had fewer records than the window (24) and no window: 1/8" in \
        scored.output
