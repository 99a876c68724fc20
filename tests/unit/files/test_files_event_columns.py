"""Event files are read by column name: the model keeps the file's names and scores another
file's columns by name.

Columns were taken by position and the names thrown away: a file with the model's columns
in another order scored silently wrong, and every 57-column file was labelled with the
synthetic physics names (an anomaly's top contributor named a column the data lacks).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from offline_training.train import train
from offline_training.train_options import TrainOptions
from offline_training.trainer import TrainConfig
from stream_detector.exceptions import DataError
from stream_detector.files.batch import ScoreRow, score_file
from stream_detector.files.history import aligned_events, load_source

NAMES = ["énergie", "pT,jet", "eta", "phi", "m", "q"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    tmp = tmp_path_factory.mktemp("events")
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(1200, 6)), columns=NAMES)
    frame.loc[700, "eta"] = 40.0  # one event far out in one feature
    frame.to_csv(tmp / "a.csv", index=False)
    report = train(TrainOptions(data=tmp / "a.csv", out=tmp / "registry", name="ev",
                                family="events", plots=False,
                                train=TrainConfig(max_epochs=2, progress=False,
                                                  num_threads=1)))
    return report.path.parent, frame


def test_the_card_keeps_the_files_feature_names(trained: tuple[Path, pd.DataFrame]) -> None:
    model, _ = trained
    rows = score_file(model, model.parent.parent / "a.csv")
    assert rows[700].alert
    assert rows[700].top_contributors.split("@")[0] == "eta"  # the column the data has


def test_columns_in_another_order_score_the_same(
    tmp_path: Path, trained: tuple[Path, pd.DataFrame],
) -> None:
    model, frame = trained
    frame[NAMES[::-1]].to_csv(tmp_path / "reversed.csv", index=False)
    same = score_file(model, model.parent.parent / "a.csv")
    moved = score_file(model, tmp_path / "reversed.csv")
    def seen(rows: list[ScoreRow]) -> list[tuple[float, bool, str]]:
        return [(r.score, r.alert, r.top_contributors) for r in rows]

    assert seen(moved) == seen(same)


def test_other_names_are_refused_naming_the_difference(
    tmp_path: Path, trained: tuple[Path, pd.DataFrame],
) -> None:
    model, frame = trained
    frame.rename(columns={"eta": "ETA"}).to_csv(tmp_path / "renamed.csv", index=False)
    with pytest.raises(DataError, match=r"renamed.csv: its columns are not the model's 6 "
                                        r"features \(missing 'eta'; not the model's 'ETA'\)"):
        score_file(model, tmp_path / "renamed.csv")


def test_unnamed_columns_are_taken_by_position(tmp_path: Path) -> None:
    """HDF5 without feature names (f0, f1, ...) and cards of unnamed files keep working."""
    frame = pd.DataFrame(np.arange(12.0).reshape(4, 3), columns=["a", "b", "c"])
    frame.to_csv(tmp_path / "e.csv", index=False)
    positional = load_source(tmp_path / "e.csv", kind="events", features=["f0", "f1", "f2"])
    assert [list(r.features) for r in positional.records][0] == [0.0, 1.0, 2.0]
    by_name = load_source(tmp_path / "e.csv", kind="events", features=["c", "a", "b"])
    assert by_name.names == ("c", "a", "b")
    assert [list(r.features) for r in by_name.records][0] == [2.0, 0.0, 1.0]
    data = type("D", (), {"features": np.zeros((1, 2))})()
    assert aligned_events(data, ("f0", "f1"), ("x", "y"), "h.h5")[1] == ("f0", "f1")


def test_an_imputed_event_is_flagged_like_series_and_sales_records(tmp_path: Path) -> None:
    """--missing impute filled an event's value in but never flagged the record."""
    (tmp_path / "e.csv").write_text("a,b\n1,2\n,3\n4,5\n")
    records = list(load_source(tmp_path / "e.csv", kind="events", missing="impute").records)
    assert [r.imputed for r in records] == [False, True, False]
    assert records[1].features == [1.0, 3.0]  # filled from the row before
