"""The benchmarks' pure helpers: percentiles, ratios, tables, Prometheus parsing."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from benchmarks.report import (
    histogram_from_prometheus,
    interleaved,
    markdown_table,
    median_rate,
    percentiles,
    prometheus_value,
    ratio,
    write_results,
)


def test_percentiles_are_nearest_rank_values_that_were_observed() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentiles(values, (50, 90, 99, 100)) == {
        "p50": 50.0, "p90": 90.0, "p99": 99.0, "p100": 100.0}
    assert percentiles([7.0], (1, 50)) == {"p1": 7.0, "p50": 7.0}
    assert percentiles([3.0, 1.0, 2.0], (34,)) == {"p34": 2.0}  # rank ceil(1.02) = 2


def test_percentiles_of_nothing_are_nan_and_bad_q_raises() -> None:
    assert all(math.isnan(v) for v in percentiles([]).values())
    with pytest.raises(ValueError, match="percentile"):
        percentiles([1.0], (0,))


def test_ratio_guards_a_missing_baseline() -> None:
    assert ratio(45.0, 50.0) == pytest.approx(0.9)
    assert math.isnan(ratio(1.0, 0.0))
    assert math.isnan(ratio(1.0, math.nan))


def test_median_rate_counts_items_per_call() -> None:
    calls = []
    rate = median_rate(lambda: calls.append(1), items=10, repeats=3, min_seconds=0.001)
    assert rate > 0
    assert len(calls) >= 4  # one warm-up call and at least one per repetition


def test_markdown_table_formats_numbers_and_keeps_column_order() -> None:
    table = markdown_table(
        [{"b": 1234567.8, "a": "dense", "c": 0.91234}, {"a": "lstm", "b": math.nan}],
        ["a", "b", "c"])
    assert table.splitlines() == [
        "| a | b | c |", "|---|---|---|", "| dense | 1,234,568 | 0.912 |", "| lstm | n/a |  |"]


EXPOSITION = """\
# HELP stream_detector_records_in_total records consumed
stream_detector_records_in_total{kind="series"} 1500.0
stream_detector_records_in_total{kind="sales"} 500.0
stream_detector_records_in_created{kind="series"} 1.7e9
stream_detector_batch_size_bucket{le="1.0"} 3.0
stream_detector_batch_size_bucket{le="2.0"} 3.0
stream_detector_batch_size_bucket{le="4.0"} 10.0
stream_detector_batch_size_bucket{le="+Inf"} 12.0
stream_detector_batch_size_count 12.0
"""


def test_prometheus_value_sums_matching_samples_only() -> None:
    assert prometheus_value(EXPOSITION, "stream_detector_records_in_total") == 2000.0
    assert prometheus_value(EXPOSITION, "stream_detector_records_in_total",
                            {"kind": "sales"}) == 500.0
    assert prometheus_value(EXPOSITION, "stream_detector_records_in") == 0.0  # exact name


def test_histogram_buckets_are_decumulated() -> None:
    assert histogram_from_prometheus(EXPOSITION, "stream_detector_batch_size") == {
        "<=1": 3.0, "<=2": 0.0, "<=4": 7.0, "<=+Inf": 2.0}


def test_write_results_writes_json_and_markdown(tmp_path: Path) -> None:
    md = write_results("demo", {"rows": [1, 2]}, "| x |\n|---|", tmp_path)
    data = json.loads((tmp_path / "demo.json").read_text())
    assert data["benchmark"] == "demo" and data["rows"] == [1, 2]
    assert len(data["environment"]["loadavg_1_5_15"]) == 3
    text = md.read_text()
    assert text.startswith("# demo") and "load average" in text and text.endswith("|---|\n")


def test_interleaved_alternates_and_compares_fastest_calls() -> None:
    """A function that sleeps twice as long reads as about half the rate; calls alternate."""
    calls: list[str] = []

    def fast() -> None:
        calls.append("a")
        time.sleep(0.002)

    def slow() -> None:
        calls.append("b")
        time.sleep(0.004)

    rate_a, rate_b, r = interleaved(fast, slow, 10, seconds=0.0, min_pairs=6)
    assert 0.3 < r < 0.75 and rate_a > rate_b
    timed = calls[2:]  # after one warm-up call of each
    assert len(timed) == 12 and all(set(timed[i : i + 2]) == {"a", "b"} for i in range(0, 12, 2))
    assert timed[:2] != timed[2:4]  # the order swaps every pair
