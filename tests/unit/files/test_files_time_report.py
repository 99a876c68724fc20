"""What the time policy makes of a file, in one line: counts per flag, and a cadence that is
not the model's."""

from __future__ import annotations

import doctest

from schemas.records import SeriesPoint
from stream_detector.core.timing import TimePolicy
from stream_detector.files import time_report as module
from stream_detector.files.time_report import TimeReport, time_report

FIVE_MIN = TimePolicy.from_cadence(300.0)


def points(key: str, minutes: list[int]) -> list[SeriesPoint]:
    return [SeriesPoint(kind="series", series=key, value=1.0,
                        timestamp=f"2024-01-01T{m // 60:02d}:{m % 60:02d}:00") for m in minutes]


def test_an_ordered_file_at_the_models_cadence_says_nothing() -> None:
    report = time_report(points("a", [0, 5, 10, 15]) + points("b", [0, 5, 10]), FIVE_MIN)
    assert report == TimeReport({}, 300.0, 300.0) and report.line() == ""


def test_repeated_and_late_records_are_counted_per_key_against_the_newest_time() -> None:
    # a: 10 repeats the newest (10); 5 after 10 is late, and so is 7 (still before 10)
    # b: its own watermark: 0 after a's 20 is not late
    records = points("a", [0, 5, 10, 10, 5, 7, 15, 20]) + points("b", [0, 5])
    report = time_report(records, FIVE_MIN)
    assert report.flagged == {"repeated": 1, "late": 2}
    line = report.line()
    assert line.startswith("time: records kept in file order and flagged as a worker flags "
                           "them: 1 repeated, 2 late (earlier than one before); sort the file")
    assert "--strict-time" in line and "apart" not in line  # disorder: no cadence claim


def test_a_file_at_another_cadence_than_the_models_says_both() -> None:
    daily = [SeriesPoint(kind="series", series="a", value=1.0, timestamp=f"2024-01-{d:02d}")
             for d in range(1, 6)]
    report = time_report(daily, FIVE_MIN)
    assert report.flagged == {"skewed": 4, "after a gap": 4}
    assert report.line().endswith("the file's records are 1 day apart, the model's 5 min: "
                                  "train a model on data of this cadence")
    assert time_report(daily, TimePolicy()).line() == ""  # no cadence known: nothing to say


def test_doctests() -> None:
    assert doctest.testmod(module).failed == 0


def test_repeated_times_with_a_column_left_unread_name_it_as_the_likely_key() -> None:
    # two hosts interleaved in a timestamp,host,value file read as one series: every time
    # twice; the hint names the column that would split them
    records = points("a", [0, 0, 5, 5, 10, 10])
    line = time_report(records, FIVE_MIN, ignored=("host", "note")).line()
    assert "3 repeated" in line
    assert line.endswith("if column 'host', 'note' names each row's series, call it 'series' "
                         "(each id is then its own series)")
    assert "call it" not in time_report(points("a", [0, 5, 10]), FIVE_MIN, ("host",)).line()


def test_columns_no_record_carries_are_said_once() -> None:
    """timestamp,value,temp: 'temp' was read by nothing, and nothing said so."""
    clean = time_report(points("a", [0, 5, 10]), FIVE_MIN, ("temp",)).lines()
    assert clean == ("columns not read: 'temp' (a series is timestamp,value and an optional "
                     "series column; several features a row are feature vectors: train "
                     "--kind events)")
    repeated = time_report(points("a", [0, 0, 5]), FIVE_MIN, ("host",)).lines()
    assert "columns not read" not in repeated and "if column 'host'" in repeated  # named once
    assert time_report(points("a", [0, 5, 10]), FIVE_MIN).lines() == ""
