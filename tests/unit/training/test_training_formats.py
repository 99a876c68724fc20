"""File formats users really have: BOM, semicolons and decimal commas, pandas HDF5, and one
missing-columns message whichever command reads the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from offline_training.load_tables import load_panel, load_series
from offline_training.loaders import infer_kind, load, load_events
from stream_detector.cli.main import app
from stream_detector.exceptions import DataError
from stream_detector.files.history import load_source

SERIES = "timestamp,value\n2015-02-26 21:42:53,104\n2015-02-26 21:47:53,100.5\n"


def write(tmp: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp / name
    path.write_text(text, encoding=encoding)
    return path


def test_a_byte_order_mark_reads_exactly_as_without(tmp_path: Path) -> None:
    plain = write(tmp_path, "plain.csv", SERIES)
    bom = write(tmp_path, "bom.csv", SERIES, encoding="utf-8-sig")
    assert bom.read_bytes()[:3] == b"\xef\xbb\xbf"
    assert infer_kind(bom) == infer_kind(plain) == "series"  # train's guess
    a, b = load_series(plain), load_series(bom)  # score's read
    assert np.array_equal(a.values, b.values) and np.array_equal(a.timestamps, b.timestamps)
    records = list(load_source(bom).records)
    assert [r.values for r in records] == [[104.0], [100.5]]


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_other_delimiters_and_decimal_commas(tmp_path: Path, sep: str) -> None:
    comma = sep != "|"  # a European export: decimal commas with ; or tab
    v = ("1,5", "-0,25") if comma else ("1.5", "-0.25")
    path = write(tmp_path, "s.csv", f"timestamp{sep}value\n2020-01-01 00:00:00{sep}{v[0]}\n"
                                    f"2020-01-01 00:05:00{sep}{v[1]}\n")
    assert infer_kind(path) == "series"
    assert load_series(path).values[:, 0].tolist() == [1.5, -0.25]
    panel = write(tmp_path, "p.csv", f"date{sep}store{sep}item{sep}sales\n"
                                     f"2017-01-01{sep}1{sep}7{sep}{v[0]}\n")
    assert load_panel(panel).series["1/7"].values[:, 0].tolist() == [1.5]


def test_a_ragged_semicolon_file_names_its_delimiter(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", "timestamp;value\n2020-01-01 00:00:00;1;2\n")
    with pytest.raises(DataError, match=r"3 fields, the header has 2 \(columns separated by ';'"):
        load_series(path)


def test_hdf5_fixed_with_mixed_dtypes_keeps_every_column_named_in_order(tmp_path: Path) -> None:
    frame = pd.DataFrame({"pt": [1.5, 2.5, 3.5], "n_jets": [1, 2, 3],
                          "eta": [0.1, 0.2, 0.3], "charge": np.array([-1, 1, 1], np.int32)})
    for fmt in ("fixed", "table"):
        path = tmp_path / f"{fmt}.h5"
        frame.to_hdf(path, key="events", format=fmt)
        data = load_events(path)
        assert data.names == ["pt", "n_jets", "eta", "charge"], fmt
        assert np.array_equal(data.features, frame.to_numpy(np.float32)), fmt
        assert load(path).names == data.names  # train's path (kind inferred)
        assert load_events(path, dataset="/events").names == data.names


def test_an_hdf5_frame_of_records_or_times_is_refused_not_trained_as_features(
    tmp_path: Path,
) -> None:
    times = pd.date_range("2024-01-01", periods=50, freq="5min")
    series = pd.DataFrame({"timestamp": times, "value": np.arange(50.0)})
    series.to_hdf(tmp_path / "series.h5", key="data")
    with pytest.raises(DataError, match="has the columns of a series table"):
        load(tmp_path / "series.h5")  # train's path: it trained on the times as a feature
    stamped = pd.DataFrame({"when": times, "pt": np.arange(50.0)})
    stamped.to_hdf(tmp_path / "stamped.h5", key="data")
    with pytest.raises(DataError, match=r"a column of times \('when'\)"):
        load_events(tmp_path / "stamped.h5")
    stamped.to_parquet(tmp_path / "stamped.parquet")  # the same in every format that keeps
    with pytest.raises(DataError, match=r"a column of times \('when'\)"):  # the dtype
        load(tmp_path / "stamped.parquet", "events")
    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path / "series.h5"),
                                      "--out", str(tmp_path / "reg")])
    assert result.exit_code == 1 and "save a series or a sales panel as CSV" in result.output
    assert not (tmp_path / "reg").exists()


def test_a_series_read_as_events_is_refused_naming_its_kind(tmp_path: Path) -> None:
    """train --kind events on a timestamp,value file said its first timestamp 'is not a
    number'."""
    path = write(tmp_path, "s.csv", "timestamp,value\n2020-01-01,1\n2020-01-02,2\n")
    with pytest.raises(DataError, match=r"are a series.s, not feature vectors .* \(leave out "
                                        "--kind events"):
        load(path, "events")


@pytest.mark.parametrize("index_name", [None, "timestamp"])
def test_a_parquet_series_with_its_times_as_the_index_is_read(
    tmp_path: Path, index_name: str | None,
) -> None:
    """pandas restores a DatetimeIndex, so the file seemed to lack its timestamp column:
    "missing column(s) ['timestamp']; found ['value']"."""
    times = pd.date_range("2024-01-01", periods=40, freq="5min", name=index_name)
    path = tmp_path / "s.parquet"
    pd.DataFrame({"value": np.arange(40.0)}, index=times).to_parquet(path)
    assert infer_kind(path) == "series"
    data = load_series(path)
    assert data.values.ravel().tolist() == list(np.arange(40.0))
    assert data.timestamps[0] == np.datetime64("2024-01-01T00:00:00")
    assert load(path).values.shape == (40, 1)  # train's path (kind inferred)
    other = tmp_path / "e.parquet"  # an index that is not times: not data, left out
    pd.DataFrame({"pt": [1.0, 2.0]}, index=pd.Index([7, 9], name="event")).to_parquet(other)
    assert load_events(other).names == ["pt"]


def test_wrong_columns_get_one_message_from_every_command(tmp_path: Path) -> None:
    path = write(tmp_path, "w.csv", "date,value\n2020-01-01,1\n2020-01-02,2\n")
    message = ("missing column(s) ['timestamp']; found ['date', 'value'], "
               "expected ['timestamp', 'value']")
    with pytest.raises(DataError, match=r"missing column\(s\) \['timestamp'\]") as guessed:
        load_source(path)  # train and replay: kind guessed from the header
    with pytest.raises(DataError) as given:
        load_source(path, kind="series")  # score: kind from the model
    assert message in str(guessed.value) and message in str(given.value)
    result = CliRunner().invoke(app, ["train", "--data", str(path), "--out",
                                      str(tmp_path / "r"), "--no-progress"])
    assert result.exit_code != 0 and message in result.output
    assert "is not a number" not in result.output


def test_json_files_and_messages_with_a_byte_order_mark(tmp_path: Path) -> None:
    from schemas.records import parse_message

    text = ('[{"kind": "series", "series": "a", "timestamp": "2020-01-01T00:00:00", '
            '"value": 1.5}, {"kind": "series", "series": "a", '
            '"timestamp": "2020-01-01T00:05:00", "value": 2.5}]')
    path = write(tmp_path, "r.json", text, encoding="utf-8-sig")
    assert infer_kind(path) == "records_json"
    assert [r.values for r in load_source(path).records] == [[1.5], [2.5]]
    assert [r.values for r in parse_message(b"\xef\xbb\xbf" + text.encode())] == [[1.5], [2.5]]
