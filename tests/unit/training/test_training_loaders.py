"""Loaders: every format, and every bad input named by file, row and column."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from offline_training.load_json import load_records_json, load_seed_json, string_bucket
from offline_training.load_tables import load_panel, load_series
from offline_training.loaded_data import EventData, PanelData, SeriesData
from offline_training.loaders import infer_kind, load, load_events
from stream_detector.exceptions import DataError

HEADER = "timestamp,value\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def series_csv(tmp_path: Path, *rows: str) -> Path:
    return write(tmp_path, "s.csv", HEADER + "".join(r + "\n" for r in rows))


# --- series ---------------------------------------------------------------------------


def test_loads_real_nab_file(nab_dir: Path) -> None:
    data = load(nab_dir / "data" / "realTweets" / "Twitter_volume_AAPL.csv")
    assert isinstance(data, SeriesData)
    assert data.key == "Twitter_volume_AAPL"
    assert data.timestamps.dtype == np.dtype("datetime64[ns]")
    assert data.values.shape == (15902, 1) and data.values.dtype == np.float64
    assert data.timestamps[0] == np.datetime64("2015-02-26T21:42:53")
    assert data.values[0, 0] == 104.0
    assert np.all(np.diff(data.timestamps) > np.timedelta64(0))
    assert data.imputed == 0


def test_parquet_series_gives_the_same_arrays(tmp_path: Path) -> None:
    csv = series_csv(tmp_path, "2015-01-01 00:00:00,1", "2015-01-01 00:05:00,2.5")
    frame = pd.read_csv(csv)
    frame.to_parquet(tmp_path / "s.parquet")
    a, b = load_series(csv), load(tmp_path / "s.parquet")
    assert isinstance(b, SeriesData)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.timestamps, b.timestamps)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            ["2015-01-01 00:00,1", "2015-01-01 00:05,abc"],
            "row 2 (line 3), column 'value': 'abc' is not a number",
        ),
        (
            ["2015-01-01 00:00,1", "soon,2"],
            "row 2 (line 3), column 'timestamp': 'soon' is not an ISO",
        ),
        (
            ["2015-01-01 00:00,1", "2015-01-01 00:05,"],
            "row 2 (line 3), column 'value': value is missing",
        ),
        (
            ["2015-01-01 00:00,nan", "2015-01-01 00:05,1"],
            "row 1 (line 2), column 'value': value is missing",
        ),
        (
            ["2015-01-01 00:00,1", "2015-01-01 00:05,-inf"],
            "row 2 (line 3), column 'value': value is missing",
        ),
        (
            ["2015-01-01 00:00,1", "2015-01-01 00:05,2,3"],
            "row 2 (line 3): 3 fields, the header has 2",
        ),
        (["2015-01-01 00:00,1", "2015-01-01 00:05"], "row 2 (line 3): 1 fields, the header has 2"),
        (["2015-01-01 00:00,1", "", "2015-01-01 00:05,2"], "line 3 is blank"),
    ],
)
def test_bad_series_rows_are_located(tmp_path: Path, rows: list[str], message: str) -> None:
    path = series_csv(tmp_path, *rows)
    with pytest.raises(DataError) as info:
        load_series(path)
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("bad", "message"),
    [("2015-01-01 00:15,abc,x", "row 4 (line 8), column 'value': 'abc' is not a number"),
     ("2015-01-01 00:15,1", "row 4 (line 8): 2 fields, the header has 3")],
)
def test_rows_after_quoted_line_breaks_are_located_by_their_own_line(
    tmp_path: Path, bad: str, message: str
) -> None:
    """A note with line breaks in quotes: rows are no longer one line each."""
    path = write(tmp_path, "s.csv", "timestamp,value,note\n2015-01-01 00:00,1,\"a\nb\"\n"
                 "2015-01-01 00:05,2,x\n2015-01-01 00:10,2,\"c\n\nd\"\n" + bad + "\n"
                 "2015-01-01 00:20,2,x\n")
    assert path.read_text().splitlines()[7] == bad  # line 8
    with pytest.raises(DataError) as info:
        load_series(path)
    assert message in str(info.value)


def test_repeated_header_names_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "s.csv", "timestamp,value,value\n2015-01-01,1,2\n")
    with pytest.raises(DataError, match=r"line 1: column\(s\) \['value'\] appear twice"):
        load_series(path)


def test_parquet_nullable_na_is_a_missing_value_not_text(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2015-01-01", periods=3, freq="5min"),
            "value": pd.array([1, None, 3], dtype="Int64"),
        }
    )
    frame.to_parquet(tmp_path / "s.parquet")
    with pytest.raises(DataError, match="s.parquet: row 2, column 'value': value is missing"):
        load_series(tmp_path / "s.parquet")
    assert load_series(tmp_path / "s.parquet", missing="impute").values[:, 0].tolist() == [1, 1, 3]


def test_missing_column_lists_what_was_found(tmp_path: Path) -> None:
    path = write(tmp_path, "s.csv", "timestamp,val\n2015-01-01,1\n")
    with pytest.raises(
        DataError, match=r"missing column\(s\) \['value'\]; found \['timestamp', 'val'\]"
    ):
        load_series(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "file is empty"), (HEADER, "no data rows"), ("\n\n", "no header")],
)
def test_empty_inputs_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_series(write(tmp_path, "s.csv", text))


def test_size_bound_and_missing_file(tmp_path: Path) -> None:
    path = series_csv(tmp_path, "2015-01-01 00:00,1")
    with pytest.raises(DataError, match="exceeds the limit of 10"):
        load_series(path, max_bytes=10)
    with pytest.raises(DataError, match="no such file"):
        load_series(tmp_path / "absent.csv")
    with pytest.raises(DataError, match="is a folder; give one data file"):
        load_series(tmp_path)  # a folder that exists is not "no such file"


def test_impute_fills_forward_then_backward_and_counts(tmp_path: Path) -> None:
    path = series_csv(
        tmp_path,
        "2015-01-01 00:00,",
        "2015-01-01 00:05,2",
        "2015-01-01 00:10,inf",
        "2015-01-01 00:15,NaN",
        "2015-01-01 00:20,5",
    )
    data = load_series(path, missing="impute")
    assert data.values[:, 0].tolist() == [2.0, 2.0, 2.0, 2.0, 5.0]
    assert data.imputed == 3
    assert data.imputed_mask is not None
    assert data.imputed_mask[:, 0].tolist() == [True, False, True, True, False]


def test_impute_cannot_invent_a_column_with_no_values(tmp_path: Path) -> None:
    path = series_csv(tmp_path, "2015-01-01 00:00,", "2015-01-01 00:05,nan")
    with pytest.raises(DataError, match="no finite value"):
        load_series(path, missing="impute")


def test_sort_true_orders_unsorted_rows(tmp_path: Path) -> None:
    path = series_csv(tmp_path, "2015-01-01 00:10,3", "2015-01-01 00:00,1", "2015-01-01 00:05,2")
    data = load_series(path, sort=True)
    assert data.values[:, 0].tolist() == [1.0, 2.0, 3.0]
    assert np.all(np.diff(data.timestamps) > np.timedelta64(0))


# --- sales panel ----------------------------------------------------------------------


def test_panel_splits_by_store_item_sorted_by_date(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sales.csv",
        "date,store,item,sales\n"
        "2017-01-01,1,7,13\n2017-01-02,1,7,11\n2017-01-01,2,7,5\n2017-01-02,2,7,\n",
    )
    data = load(path, missing="impute")
    assert isinstance(data, PanelData)
    assert list(data.series) == ["1/7", "2/7"]
    assert data.series["1/7"].values[:, 0].tolist() == [13.0, 11.0]
    assert data.series["2/7"].values[:, 0].tolist() == [5.0, 5.0]
    assert data.imputed == 1 and data.series["2/7"].names == ["sales"]


def test_panel_key_normalises_float_ids_and_rejects_duplicate_dates(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"date": ["2017-01-01", "2017-01-02"], "store": [1.0, 1.0], "item": [7, 7], "sales": [1, 2]}
    )
    frame.to_parquet(tmp_path / "p.parquet")
    assert list(load_panel(tmp_path / "p.parquet").series) == ["1/7"]
    path = write(
        tmp_path,
        "d.csv",
        "date,store,item,sales\n2017-01-01,1,7,1\n2017-01-01,2,7,1\n2017-01-01,1,7,2\n",
    )
    assert load_panel(path).series["1/7"].values[:, 0].tolist() == [1.0, 2.0]  # file order
    with pytest.raises(
        DataError, match=r"d.csv: duplicate date 2017-01-01 00:00:00 at rows \[1, 3\]"
    ):
        load_panel(path, strict_time=True)


def test_panel_blank_store_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "date,store,item,sales\n2017-01-01,1,7,1\n2017-01-02,,7,1\n")
    with pytest.raises(
        DataError, match="row 2 \\(line 3\\), column 'store': the store id is empty"
    ):
        load_panel(path)


# --- events ---------------------------------------------------------------------------


def test_event_csv_with_labels_and_located_errors(tmp_path: Path) -> None:
    good = load(write(tmp_path, "e.csv", "a,b,label\n1,2,0\n3,4,1\n"))
    assert isinstance(good, EventData)
    assert good.features.dtype == np.float32 and good.names == ["a", "b"]
    assert good.labels is not None and good.labels.tolist() == [0, 1]
    with pytest.raises(DataError, match="row 2 \\(line 3\\), column 'b': 'x' is not a number"):
        load_events(write(tmp_path, "e.csv", "a,b,label\n1,2,0\n3,x,1\n"))
    with pytest.raises(
        DataError, match="row 1 \\(line 2\\), column 'label': label must be an integer"
    ):
        load_events(write(tmp_path, "e.csv", "a,b,label\n1,2,0.5\n"))
    assert load_events(write(tmp_path, "e.csv", "a,b\n1,2\n")).labels is None


def test_hdf5_default_dataset_names_and_labels(tmp_path: Path) -> None:
    path = tmp_path / "e.h5"
    with h5py.File(path, "w") as handle:
        handle["a_first"] = np.arange(6.0).reshape(3, 2)
        handle["data"] = np.arange(12.0).reshape(4, 3)
        handle["data"].attrs["feature_names"] = ["x", "y", "z"]
        handle["labels"] = np.array([0, 1, 0, 0])
    first = load_events(path)
    assert first.features.shape == (3, 2) and first.names == ["f0", "f1"]
    chosen = load_events(path, dataset="data")
    assert chosen.names == ["x", "y", "z"]
    assert chosen.labels is not None and chosen.labels.tolist() == [0, 1, 0, 0]
    assert first.labels is None  # 4 labels do not fit 3 rows
    with pytest.raises(DataError, match="no 2-D numeric dataset 'nope'"):
        load_events(path, dataset="nope")


def test_hdf5_nan_is_located_or_imputed(tmp_path: Path) -> None:
    path = tmp_path / "e.h5"
    with h5py.File(path, "w") as handle:
        handle["data"] = np.array([[1.0, 2.0], [3.0, np.nan]])
    with pytest.raises(DataError, match=r"e.h5\[data\]: row 2, column 'f1': value is missing"):
        load_events(path)
    data = load_events(path, missing="impute")
    assert data.features[1, 1] == 2.0 and data.imputed == 1


def test_non_hdf5_bytes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a readable HDF5"):
        load_events(write(tmp_path, "e.h5", "not hdf5"))


# --- JSON -----------------------------------------------------------------------------


SEED = {
    "numeric_data": [1.5, 2.5, 3.5],
    "string_data": ["ab", "abc", "zz"],
    "mixed_data": [{"scores": [1, 2]}, {"scores": [3, 4]}, {"scores": [5, 6]}],
}


def test_seed_json_aligned_sections_become_columns(tmp_path: Path) -> None:
    data = load(write(tmp_path, "seed.json", json.dumps(SEED)))
    assert isinstance(data, EventData)
    assert data.names == ["numeric_0", "string_len", "string_bucket", "mixed_0", "mixed_1"]
    assert data.features[:, 0].tolist() == [1.5, 2.5, 3.5]
    assert data.features[:, 1].tolist() == [2.0, 3.0, 2.0]
    assert data.features[0, 2] == string_bucket("ab")
    assert data.features[0, 2] != data.features[2, 2]  # same length, different string
    assert data.features[:, 3:].tolist() == [[1, 2], [3, 4], [5, 6]]


def test_seed_json_unaligned_sections_stack_like_the_seed(tmp_path: Path) -> None:
    doc = {"numeric_data": [1, 2], "string_data": ["abc"], "mixed_data": [{"scores": [7, 8, 9]}]}
    data = load_seed_json(write(tmp_path, "seed.json", json.dumps(doc)))
    assert data.names == ["value"]
    assert data.features[:, 0].tolist() == [1, 2, 3, 7, 8, 9]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"numeric_data": [1, "x"]},
            r"numeric_data\[1\] \(record 2\), column 0: 'x' is not a number",
        ),
        ({"string_data": ["a", 5]}, r"string_data\[1\] \(record 2\): 5 is not a string"),
        (
            {"mixed_data": [{"scores": [1]}, {"score": [1]}]},
            r"mixed_data\[1\] \(record 2\): missing",
        ),
        (
            {"numeric_data": [[1, 2], [3]]},
            r"numeric_data\[1\] \(record 2\) has 1 values, expected 2",
        ),
        ({"other": 1}, "expected an object with numeric_data"),
    ],
)
def test_seed_json_errors_are_located(tmp_path: Path, doc: dict[str, object], message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_seed_json(write(tmp_path, "seed.json", json.dumps(doc)))


def test_seed_json_nan_follows_the_missing_policy(tmp_path: Path) -> None:
    doc = {"numeric_data": [1.0, float("nan"), 3.0], "string_data": ["a", "b", "c"]}
    path = write(tmp_path, "seed.json", json.dumps(doc))  # json writes the NaN token
    with pytest.raises(DataError, match="record 2, column 'numeric_0': value is missing"):
        load_seed_json(path)
    data = load_seed_json(path, missing="impute")
    assert data.features[:, 0].tolist() == [1.0, 1.0, 3.0] and data.imputed == 1


def test_invalid_json_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not valid JSON"):
        load_seed_json(write(tmp_path, "bad.json", "{"))
    (tmp_path / "latin1.json").write_bytes(b'[{"series": "caf\xe9"}]')
    with pytest.raises(DataError, match="not UTF-8 text"):
        load(tmp_path / "latin1.json")


POINTS = [{"kind": "series", "series": "A", "timestamp": f"2015-01-01T00:0{i}:00", "value": i}
          for i in range(4)]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("lines.jsonl", "\n".join(json.dumps(p) for p in POINTS) + "\n"),
        ("lines.ndjson", "\n\n".join(json.dumps(p) for p in POINTS)),
        ("lines.json", "\n".join(json.dumps(p) for p in POINTS)),  # JSON lines named .json
        # one Kafka message a line, each a list of one key's records (replay --batch 2)
        ("messages.jsonl", json.dumps(POINTS[:2]) + "\n" + json.dumps(POINTS[2:])),
    ],
)
def test_json_lines_are_records_as_the_worker_receives_them(
    tmp_path: Path, name: str, text: str,
) -> None:
    path = write(tmp_path, name, text)
    assert infer_kind(path) == "records_json"
    for kind in (None, "series"):  # score passes the model's record kind
        data = load(path, kind)  # type: ignore[arg-type]
        assert isinstance(data, SeriesData) and data.key == "A"
        assert data.values[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_a_json_record_file_is_never_read_as_a_csv_table(tmp_path: Path) -> None:
    # the model's kind given (as `score` does) must not send JSON to the CSV reader
    listed = load(write(tmp_path, "list.json", json.dumps(POINTS)), "series")
    assert isinstance(listed, SeriesData) and len(listed.values) == 4
    one = write(tmp_path, "one.json", json.dumps(POINTS[0]))  # one record, as one message
    assert infer_kind(one) == "records_json"
    assert isinstance(load(one, "series"), SeriesData)
    sales = [{"kind": "sales", "date": "2017-01-01", "store": 1, "item": 7, "sales": 13.0}]
    assert list(load(write(tmp_path, "s.json", json.dumps(sales)), "sales").series) == ["1/7"]  # type: ignore[union-attr]


def test_a_bad_json_line_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.jsonl", json.dumps(POINTS[0]) + "\n{oops\n")
    with pytest.raises(DataError, match=r"bad.jsonl: line 2: not valid JSON"):
        load(path)


def test_records_json_series_panel_and_events(tmp_path: Path) -> None:
    points = [
        {"kind": "series", "series": s, "timestamp": f"2015-01-01T00:0{i}:00", "value": i}
        for s in ("A", "B")
        for i in range(3)
    ]
    panel = load(write(tmp_path, "p.json", json.dumps(points)))
    assert isinstance(panel, PanelData) and list(panel.series) == ["A", "B"]
    single = load_records_json(write(tmp_path, "s.json", json.dumps(points[:3])))
    assert isinstance(single, SeriesData) and single.key == "A"
    sales = [{"kind": "sales", "date": "2017-01-01", "store": 1, "item": 7, "sales": 13.0}]
    assert list(load(write(tmp_path, "sales.json", json.dumps(sales))).series) == ["1/7"]  # type: ignore[union-attr]
    events = [
        {"kind": "events", "source": "a", "event_id": str(i), "features": [i, 1.0]}
        for i in range(3)
    ]
    data = load(write(tmp_path, "e.json", json.dumps(events)))
    assert isinstance(data, EventData) and data.features.shape == (3, 2)
    events[1]["features"] = [1.0]
    with pytest.raises(DataError, match="record 2, column 'features'"):
        load(write(tmp_path, "e.json", json.dumps(events)))
    bad = [
        {"timestamp": "2015-01-01T00:00:00", "value": 1},
        {"timestamp": "2015-01-01T00:05:00", "value": "x"},
    ]
    with pytest.raises(DataError, match="record 2, column 'value': 'x' is not a number"):
        load_records_json(write(tmp_path, "b.json", json.dumps(bad)))


def test_records_json_of_several_series_reports_file_record_numbers(tmp_path: Path) -> None:
    points = [
        {"series": s, "timestamp": f"2015-01-01T00:0{i}:00", "value": i}
        for i in range(3)
        for s in ("A", "B")
    ]
    points[5]["value"] = "?"  # series B, third point: record 6 of the file
    with pytest.raises(DataError, match="record 6, column 'value': '\\?' is not a number"):
        load_records_json(write(tmp_path, "p.json", json.dumps(points)))


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            ["2015-01-01 00:00,1", "2015-01-01 00:05,2", "2015-01-01 00:05,3"],
            "duplicate timestamp 2015-01-01 00:05:00 at rows [2, 3]",
        ),
        (
            ["2015-01-01 00:10,1", "2015-01-01 00:05,2"],
            "row 2 (line 3), column 'timestamp': 2015-01-01 00:05:00 is earlier",
        ),
    ],
)
def test_repeated_and_out_of_order_times_are_kept_in_file_order_unless_strict(
    tmp_path: Path, rows: list[str], message: str
) -> None:
    path = series_csv(tmp_path, *rows)
    data = load_series(path)  # the worker takes these records: offline does too
    assert data.values[:, 0].tolist() == [float(r.rsplit(",", 1)[1]) for r in rows]
    with pytest.raises(DataError) as info:
        load_series(path, strict_time=True)
    assert message in str(info.value)


def test_duplicates_at_several_times_are_all_counted(tmp_path: Path) -> None:
    path = series_csv(
        tmp_path,
        "2015-01-01 00:00,1",
        "2015-01-01 00:00,1",
        "2015-01-01 00:05,2",
        "2015-01-01 00:05,2",
    )
    with pytest.raises(DataError, match=r"at rows \[1, 2\] \(and 1 more repeated times\)"):
        load_series(path, strict_time=True)


def test_a_value_column_without_times_is_a_series_missing_them_not_events(
    tmp_path: Path,
) -> None:
    # it was trained as a one-feature events model (window 1, times 1970-01-01 + row s)
    path = write(tmp_path, "v.csv", "value\n" + "".join(f"{i % 5}\n" for i in range(40)))
    with pytest.raises(DataError, match=r"missing column\(s\) \['timestamp'\]; found "
                                        r"\['value'\].*add a timestamp column .*--kind events"):
        load(path)
    assert load(path, "events").names == ["value"]  # type: ignore[union-attr]  # when asked
    with pytest.raises(DataError, match=r"read as a sales panel: one series needs the "
                                        r"columns timestamp,value"):
        load(write(tmp_path, "d.csv", "date,sales\n2015-01-01,3\n"))


@pytest.mark.parametrize("kind", [None, "series"])
@pytest.mark.parametrize("first", ["2014-04-01 00:00:00,19.76", "1.5,2.5,3", "-1,.5",
                                   "2015-02-26 21:42:53,nan", "NaN"])  # a missing first value
def test_a_file_without_its_header_line_is_told_so(
    tmp_path: Path, kind: str | None, first: str,
) -> None:
    path = write(tmp_path, "h.csv", f"{first}\n{first}\n")
    said = r"its first line .*looks like data, not column names; add a header line"
    with pytest.raises(DataError, match=said):
        load(path, kind)  # type: ignore[arg-type]  # train guesses the kind; score gives it


def test_infer_kind_from_extension_columns_and_json_shape(tmp_path: Path) -> None:
    assert infer_kind(series_csv(tmp_path, "2015-01-01,1")) == "series"
    assert infer_kind(write(tmp_path, "p.csv", "date,store,item,sales\n")) == "sales"
    assert infer_kind(write(tmp_path, "e.csv", "a,b\n")) == "events"
    with pytest.raises(DataError, match=r"missing column\(s\) \['timestamp', 'value'\]"):
        infer_kind(write(tmp_path, "t.csv", "time,count\n"))  # a series, not a sales panel
    with pytest.raises(DataError, match=r"missing column\(s\) \['store', 'item'\]"):
        infer_kind(write(tmp_path, "d.csv", "date,sales\n"))
    assert infer_kind(write(tmp_path, "x.json", "  [1]")) == "records_json"
    assert infer_kind(write(tmp_path, "y.json", "{}")) == "seed_json"
    assert infer_kind(tmp_path / "z.h5") == "events"
    with pytest.raises(ValueError, match="kind must be"):
        load(series_csv(tmp_path, "2015-01-01,1"), kind="nope")  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["1e308", "-3.5e38", "1e39"])
def test_a_value_beyond_float32_is_named(tmp_path: Path, text: str) -> None:
    # every model computes in float32, where these become infinite (and 1e308 squared
    # overflows even the float64 scaler fit)
    path = series_csv(tmp_path, "2015-01-01 00:00,1", f"2015-01-01 00:05,{text}")
    with pytest.raises(DataError, match=rf"row 2 \(line 3\), column 'value': '{text}' is "
                                        "beyond the float32 range"):
        load(path)
    assert load(series_csv(tmp_path, "2015-01-01 00:00,1", "2015-01-01 00:05,3e38"))



@pytest.mark.parametrize(("text", "problem"), [
    ("9999-01-01 00:00:00", "is out of range"),  # cast to ns it wrapped to 1815, silently
    ("2262-04-12", "is out of range"),
    ("1850-01-01T00:00:00Z", "is out of range"),
    ("17040672", "is not an ISO 8601 timestamp; write times as 2015-02-26 21:42:53"),
])
def test_timestamps_outside_the_records_range_are_named_with_their_text(
    tmp_path: Path, text: str, problem: str,
) -> None:
    path = series_csv(tmp_path, "2015-01-01 00:00,1", f"{text},2")
    with pytest.raises(DataError, match=rf"row 2 \(line 3\), column 'timestamp': '{text}' "
                                        f"{problem}"):
        load(path)


@pytest.mark.parametrize("name", ["keys.csv", "keys.parquet"])
def test_a_series_column_splits_a_table_into_its_series(tmp_path: Path, name: str) -> None:
    # interleaved rows of two hosts: read as one series they would zigzag between levels
    stamps = [f"2024-01-01 00:0{i // 2}:00" for i in range(8)]
    frame = pd.DataFrame({"timestamp": stamps, "value": [1.0, 100.0] * 4,
                          "series": ["web-1", "db-1"] * 4, "host_note": "x"})
    path = tmp_path / name
    frame.to_csv(path, index=False) if name.endswith(".csv") else frame.to_parquet(path)
    data = load(path)
    assert isinstance(data, PanelData) and list(data.series) == ["web-1", "db-1"]
    assert data.series["web-1"].values[:, 0].tolist() == [1.0] * 4
    assert data.series["db-1"].values[:, 0].tolist() == [100.0] * 4
    one = write(tmp_path, "one.csv",
                "timestamp,value,series\n2024-01-01,1,AAPL\n2024-01-02,2,AAPL\n")
    assert isinstance(load(one), SeriesData) and load(one).key == "AAPL"  # type: ignore[union-attr]
    blank = write(tmp_path, "blank.csv",
                  "timestamp,value,series\n2024-01-01,1,A\n2024-01-02,2,\n")
    with pytest.raises(DataError, match=r"row 2 \(line 3\), column 'series': the series id"):
        load(blank)


@pytest.mark.parametrize(("head", "what"), [
    (b"\x1f\x8b\x08\x00", "gzip-compressed; decompress it first"),
    (b"PK\x03\x04\x14\x00", "a ZIP archive \\(an Excel .xlsx workbook\\?\\)"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file; name it .h5"),
    (b"timestamp,value\n2015-01-01,\x00\x01", "not CSV text \\(binary bytes"),
    *[("timestamp,value\r\n2015-01-01,1\r\n".encode(codec),  # Excel's "Unicode text"
       "not UTF-8 text but UTF-16 \\(as Excel's .*; save it as UTF-8 \\(Excel: \"CSV UTF-8\"\\)")
      for codec in ("utf-16", "utf-16-le", "utf-16-be")],
    *[("timestamp,value\r\n2015-01-01,1\r\n".encode(codec),  # was called UTF-16
       "not UTF-8 text but UTF-32; save it as UTF-8") for codec in ("utf-32", "utf-32-le",
                                                                    "utf-32-be")],
])
def test_a_binary_file_given_as_csv_is_named_for_what_it_is(
    tmp_path: Path, head: bytes, what: str,
) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(head + b"\x00" * 64)
    for call in (lambda: load(path), lambda: load(path, "series"), lambda: infer_kind(path)):
        with pytest.raises(DataError, match=f"data.csv: .*{what}"):
            call()


def test_a_damaged_parquet_file_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "s.parquet"
    pd.DataFrame({"timestamp": ["2015-01-01"], "value": [1.0]}).to_parquet(path)
    path.write_bytes(path.read_bytes()[:-20])  # cut short, as an interrupted copy leaves it
    for call in (lambda: load(path), lambda: load(path, "series"), lambda: infer_kind(path)):
        with pytest.raises(DataError, match="s.parquet: not a readable Parquet file"):
            call()


def test_hdf5_given_for_series_says_what_it_holds(tmp_path: Path) -> None:
    path = tmp_path / "e.h5"
    with h5py.File(path, "w") as handle:
        handle["x"] = np.zeros((4, 2))
    with pytest.raises(DataError, match="HDF5 files hold feature vectors \\(events\\), not "
                                        "series records"):
        load(path, "series")
    assert isinstance(load(path), EventData)



def test_json_records_kind_and_version_are_checked_as_a_worker_checks_them(
    tmp_path: Path,
) -> None:
    def refused(records: list[dict[str, object]], message: str) -> None:
        with pytest.raises(DataError, match=message):
            load(write(tmp_path, "r.json", json.dumps(records)))

    # each silently loaded before (the kind and version fields were dropped unread)
    refused([dict(POINTS[0], kind="metrics")], r"record 1: kind 'metrics' is not one of "
                                               "series, sales, events")
    refused([POINTS[0], dict(POINTS[1], schema_version=2)],
            r"record 2: schema_version 2 is not 1")
    sales = {"kind": "sales", "date": "2015-01-01", "store": 1, "item": 7, "sales": 1.0}
    refused([*POINTS, sales], r"record 5 is sales, earlier ones series; one file holds")
    # numbers where text belongs are shown as written, not as numpy reprs
    refused([dict(POINTS[0], timestamp=14200704)], r"record 1, column 'timestamp': "
                                                   r"14200704 is out of range")


def test_records_marked_imputed_keep_the_mark(tmp_path: Path) -> None:
    marked = [dict(p, imputed=i == 2) for i, p in enumerate(POINTS)]
    data = load(write(tmp_path, "r.json", json.dumps(marked)))
    assert isinstance(data, SeriesData) and data.imputed_mask is not None
    assert data.imputed_mask[:, 0].tolist() == [False, False, True, False]
    csv = series_csv(tmp_path, "2015-01-01 00:00,1", "2015-01-01 00:05,2")
    csv.write_text("timestamp,value,imputed\n2015-01-01,1,false\n2015-01-02,2,true\n"
                   "2015-01-03,,\n")
    filled = load(csv, missing="impute")
    assert filled.imputed_mask[:, 0].tolist() == [False, True, True]  # type: ignore[union-attr]
    csv.write_text("timestamp,value,imputed\n2015-01-01,1,maybe\n")
    with pytest.raises(DataError, match=r"row 1 \(line 2\), column 'imputed': 'maybe' is not "
                                        "true or false"):
        load(csv)


@pytest.mark.parametrize("name", ["caps.csv", "caps.parquet", "caps.json"])
def test_capitalised_column_names_are_read(tmp_path: Path, name: str) -> None:
    # spreadsheet exports: "Timestamp,Value" was "missing column(s) ['timestamp', 'value']"
    frame = pd.DataFrame({"Timestamp": ["2015-01-01", "2015-01-02"], " VALUE ": [1.0, 2.0]})
    path = tmp_path / name
    if name.endswith(".csv"):
        frame.to_csv(path, index=False)
    elif name.endswith(".parquet"):
        frame.to_parquet(path)
    else:
        path.write_text(frame.to_json(orient="records"))
    assert infer_kind(path) == ("records_json" if name.endswith(".json") else "series")
    data = load(path)
    assert isinstance(data, SeriesData) and data.values[:, 0].tolist() == [1.0, 2.0]


def test_a_trailing_utc_is_read_as_utc(tmp_path: Path) -> None:
    # database and BigQuery exports write "2015-01-01 00:05:00 UTC": refused before
    path = series_csv(tmp_path, "2015-01-01 00:00:00 UTC,1", "2015-01-01 00:05:00 gmt,2",
                      "2015-01-01 01:10:00+01:00,3")
    data = load(path)
    assert isinstance(data, SeriesData)
    assert [str(t) for t in data.timestamps] == [
        "2015-01-01T00:00:00.000000000", "2015-01-01T00:05:00.000000000",
        "2015-01-01T00:10:00.000000000"]


@pytest.mark.parametrize(("first", "second"), [
    ("1420070400", "1420070700"),  # seconds
    ("1420070400000", "1420070700000"),  # milliseconds (Kafka, JavaScript)
    ("1420070400000000", "1420070700000000"),  # microseconds
    ("1420070400.0", "1420070700.5"),  # fractional seconds
])
def test_epoch_numbers_are_read_in_the_unit_their_size_says(
    tmp_path: Path, first: str, second: str,
) -> None:
    data = load(series_csv(tmp_path, f"{first},1", f"{second},2"))
    assert isinstance(data, SeriesData)
    assert str(data.timestamps[0]) == "2015-01-01T00:00:00.000000000"
    assert str(data.timestamps[1]).startswith("2015-01-01T00:05:00")
    records = [dict(POINTS[0], timestamp=int(float(first)))]  # JSON numbers too
    assert str(load(write(tmp_path, "e.json", json.dumps(records))).timestamps[0]) == (  # type: ignore[union-attr]
        "2015-01-01T00:00:00.000000000")


@pytest.mark.parametrize(("first", "read"), [
    ("915148800", "1999-01-01T00:00:00"), ("915148800000", "1999-01-01T00:00:00"),
    ("100000000", "1973-03-03T09:46:40"), ("7258117800", "2199-12-31T23:50:00"),
])
def test_epoch_numbers_from_1973_to_2200_are_read(tmp_path: Path, first: str, read: str) -> None:
    data = load(series_csv(tmp_path, f"{first},1"))
    assert str(data.timestamps[0]).startswith(read)  # type: ignore[union-attr]


@pytest.mark.parametrize("numbers", [
    ("9500000000", "9500000300"),  # seconds of 2271: read as 1686 before (ns wrapped)
    ("9500000000000", "9500000300000"),  # the same in ms
    ("0", "1"),  # a row counter
    ("1420070400", "1420070700000"),  # seconds, then milliseconds
])
def test_numbers_that_are_no_epoch_time_are_refused_saying_what_is_read(
    tmp_path: Path, numbers: tuple[str, str],
) -> None:
    path = series_csv(tmp_path, f"{numbers[0]},1", f"{numbers[1]},2")
    with pytest.raises(DataError, match=r"column 'timestamp': '\d+' is neither an ISO 8601 "
                                        r"timestamp nor Unix epoch seconds, ms, us or ns, one "
                                        r"unit a column, from 1973-03-03 to 2200"):
        load(path)



@pytest.mark.parametrize(("preamble", "sep"), [
    ("sep=;\n", ";"),  # Excel's European CSV export names its separator first
    ("# exported by grafana 2024-01-02\n# host: web-1\n", ","),
])
def test_lines_before_the_header_are_skipped(tmp_path: Path, preamble: str, sep: str) -> None:
    rows = f"timestamp{sep}value\n2015-01-01 00:00{sep}1\n2015-01-01 00:05{sep}x\n"
    path = write(tmp_path, "p.csv", preamble + rows)
    assert infer_kind(path) == "series"
    line = preamble.count("\n") + 3
    with pytest.raises(DataError, match=rf"row 2 \(line {line}\), column 'value': 'x' is not"):
        load(path)  # locations still point at the file's lines
    path.write_text(preamble + rows.replace("x", "2"))
    assert load(path).values[:, 0].tolist() == [1.0, 2.0]  # type: ignore[union-attr]


def test_a_header_that_is_not_utf8_says_so_not_a_mangled_column(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_bytes(b"timestamp,valu\xe9\n2015-01-01,1\n")  # Latin-1 export
    for call in (lambda: infer_kind(path), lambda: load(path), lambda: load(path, "series")):
        with pytest.raises(DataError, match=r"l.csv: not UTF-8 text .*; save it as UTF-8"):
            call()


def test_time_options_do_not_break_feature_vectors(tmp_path: Path) -> None:
    # `train --strict-time` on an events file ended in "TypeError: load_events() got an
    # unexpected keyword argument 'strict_time'"
    h5 = tmp_path / "e.h5"
    with h5py.File(h5, "w") as handle:
        handle["x"] = np.zeros((4, 2))
    seed = write(tmp_path, "seed.json", json.dumps({"numeric_data": [1, 2, 3]}))
    for path in (h5, write(tmp_path, "e.csv", "a,b\n1,2\n3,4\n"), seed):
        assert isinstance(load(path, strict_time=True, sort=True), EventData)


def test_columns_left_unread_are_listed(tmp_path: Path) -> None:
    path = write(tmp_path, "h.csv", "timestamp,host,value,imputed\n2015-01-01,a,1,false\n")
    assert load(path).ignored == ("host",)  # type: ignore[union-attr]
    keyed = write(tmp_path, "k.csv", "timestamp,series,value,note\n2015-01-01,a,1,x\n"
                                     "2015-01-01,b,2,y\n")
    assert load(keyed).ignored == ("note",)  # type: ignore[union-attr]


@pytest.mark.parametrize(("text", "comma"), [
    ('"19,76"', True), ('"1,234.5"', True), ('"-1.234,5"', True), ("19x", False),
])
def test_a_comma_in_a_number_of_a_comma_separated_file_is_explained(
    tmp_path: Path, text: str, comma: bool,
) -> None:
    path = series_csv(tmp_path, "2015-01-01 00:00,1", f"2015-01-01 00:05,{text}")
    with pytest.raises(DataError, match=r"row 2 \(line 3\), column 'value': '.*' is not a "
                                        r"number") as refused:
        load(path)
    assert ("a decimal comma is read in files separated by ; or tab" in str(refused.value)) \
        is comma


IDS = ["000", "001", "01", "1", "1e3", "1_000", "NA", "None"]


def test_series_ids_are_kept_as_written_in_csv_json_and_parquet(tmp_path: Path) -> None:
    """Store and zip codes: "000" and "0", "01" and "1" are other series (the records keep
    them so, and a model trained on "0" never served a producer's "000")."""
    rows = [f"2015-01-01T00:0{i}:00,{i},{s}" for i in range(3) for s in IDS]
    csv_panel = load(write(tmp_path, "ids.csv", "timestamp,value,series\n" + "\n".join(rows)))
    points = [{"kind": "series", "series": s, "timestamp": f"2015-01-01T00:0{i}:00",
               "value": i} for i in range(3) for s in IDS]
    json_panel = load(write(tmp_path, "ids.jsonl", "\n".join(json.dumps(p) for p in points)))
    for panel in (csv_panel, json_panel):
        assert isinstance(panel, PanelData) and sorted(panel.series) == sorted(IDS)
    # a numeric column names its ids as numbers: 1.0 is "1", as a sales row's store 1
    frame = pd.DataFrame({"timestamp": [f"2015-01-01T00:0{i}:00" for i in range(3)] * 2,
                          "value": range(6), "series": [1.0] * 3 + [2.0] * 3})
    frame.to_parquet(tmp_path / "ids.parquet")
    numeric = load(tmp_path / "ids.parquet")
    assert isinstance(numeric, PanelData) and sorted(numeric.series) == ["1", "2"]
    one = load(write(tmp_path, "one.csv", "timestamp,value,series\n"
                     "2015-01-01T00:00:00,1, 007 \n2015-01-01T00:01:00,2,007\n"))
    assert isinstance(one, SeriesData) and one.key == "007"  # blanks around it dropped
