"""A bad time far down a file is named by its own row, not blamed on row 1.

A column of Unix epoch numbers with one empty, mistyped or other-unit cell used to fall
through to the ISO 8601 reading, which then refused row 1 (a valid epoch number) and sent
the user to the wrong line of a long export.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offline_training.loaders import load
from stream_detector.exceptions import DataError

EPOCH = 1424986973  # 2015-02-26 21:42:53 UTC


def rows(times: list[str]) -> str:
    return "timestamp,value\n" + "".join(f"{t},{i}\n" for i, t in enumerate(times))


def epochs(n: int, scale: int = 1) -> list[str]:
    return [str((EPOCH + 300 * i) * scale) for i in range(n)]


@pytest.mark.parametrize(("bad", "said"), [
    ("", "the time is empty; every row needs one"),
    ("14249873", "'14249873' is neither an ISO 8601 timestamp nor Unix epoch seconds, ms, us "
                 r"or ns, one unit a column, from 1973-03-03 to 2200 \(the column's other rows "
                 r"are Unix epoch seconds\)"),
    (str(EPOCH * 1000), r"'\d+' is neither an ISO 8601 timestamp .* other rows are Unix epoch "
                        "seconds"),
    ("2015-02-26 21:47:53", "'2015-02-26 21:47:53' is not a number, while the column's other "
                            "rows are Unix epoch seconds; write every time of a column the "
                            "same way"),
])
def test_a_bad_cell_in_an_epoch_column_is_named_by_its_row(
    tmp_path: Path, bad: str, said: str,
) -> None:
    times = epochs(40)
    times[29] = bad
    path = tmp_path / "export.csv"
    path.write_text(rows(times))
    with pytest.raises(DataError, match=rf"row 30 \(line 31\), column 'timestamp': {said}"):
        load(path)


def test_milliseconds_with_one_bad_cell_say_milliseconds(tmp_path: Path) -> None:
    times = epochs(9, 1000)
    times[4] = "0"
    path = tmp_path / "ms.csv"
    path.write_text(rows(times))
    with pytest.raises(DataError, match=r"row 5 \(line 6\).*'0'.*other rows are Unix epoch "
                                        "milliseconds"):
        load(path)


def test_an_empty_time_in_an_iso_column_is_named_empty(tmp_path: Path) -> None:
    path = tmp_path / "iso.csv"
    path.write_text(rows(["2015-01-01 00:00", "2015-01-01 00:05", "", "2015-01-01 00:15"]))
    with pytest.raises(DataError, match=r"row 3 \(line 4\), column 'timestamp': the time is "
                                        "empty"):
        load(path)


def test_a_null_time_in_json_records_is_named_empty(tmp_path: Path) -> None:
    records = [{"timestamp": EPOCH + 300 * i, "value": 1.0} for i in range(5)]
    records[3]["timestamp"] = None  # type: ignore[assignment]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(records))
    with pytest.raises(DataError, match=r"record 4.*the time is empty"):
        load(path)


def test_a_tie_between_iso_text_and_epochs_reads_as_iso_and_names_the_number(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tie.csv"
    path.write_text(rows(["2015-01-01 00:00", str(EPOCH)]))
    with pytest.raises(DataError, match=rf"row 2 \(line 3\).*'{EPOCH}' is not an ISO 8601"):
        load(path)


def test_a_clean_epoch_column_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text(rows(epochs(40)))
    data = load(path)
    assert str(data.timestamps[29]).startswith("2015-02-27T00:07:53")  # type: ignore[union-attr]


@pytest.mark.parametrize(("layout", "said"), [
    ("%Y%m%d%H%M", "201404010000 looks like a date written YYYYMMDDHHMM (2014-04-01 00:00), "
                   "not Unix epoch milliseconds (1976-05-20 01:33)"),
    ("%Y%m%d%H", "2014040100 looks like a date written YYYYMMDDHH (2014-04-01 00:00), not "
                 "Unix epoch seconds (2033-10-27 15:35)"),
])
def test_compact_dates_are_not_read_as_epoch_numbers(
    tmp_path: Path, layout: str, said: str
) -> None:
    """A strftime export (201404010000) was read as epoch ms of 1976 and scored."""
    import pandas as pd

    stamps = pd.date_range("2014-04-01", periods=30, freq="h").strftime(layout)
    path = tmp_path / "compact.csv"
    path.write_text(rows(list(stamps)))
    with pytest.raises(DataError, match="row 1 .*") as info:
        load(path)
    assert said in str(info.value) and "write the times as ISO 8601" in str(info.value)
    # epoch milliseconds of the same width that are no such date still read
    path.write_text(rows([str(978307200000 + 60_000 * i) for i in range(30)]))
    assert str(load(path).timestamps[0]).startswith("2001-01-01T00:00")  # type: ignore[union-attr]
