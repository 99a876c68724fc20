"""Pure parts of the demo: detection quality, latency percentiles, cache key, summary lines."""

from __future__ import annotations

import doctest
import math

import pytest

import stream_detector.demo.summary as demo_summary
from stream_detector.demo.summary import (
    DemoSummary,
    Latency,
    Quality,
    cache_key,
    detection_quality,
    latency_stats,
    roc_auc,
    signal_mask,
    summary_lines,
)


def test_doctests() -> None:
    failures, tried = doctest.testmod(demo_summary)
    assert tried > 0 and failures == 0


def test_event_inside_a_window_is_a_true_positive_and_detects_it() -> None:
    q = detection_quality({"k": [10]}, {"k": [(5, 15)]})
    assert (q.true_positives, q.detected, q.precision, q.recall) == (1, 1, 1.0, 1.0)


def test_window_bounds_are_inclusive() -> None:
    q = detection_quality({"k": [5, 15, 16]}, {"k": [(5, 15)]})
    assert q.true_positives == 2 and q.events == 3


def test_several_events_in_one_window_detect_it_once() -> None:
    q = detection_quality({"k": [6, 7, 8]}, {"k": [(5, 15), (20, 30)]})
    assert q.precision == 1.0
    assert q.detected == 1 and q.recall == 0.5


def test_windows_belong_to_their_key() -> None:
    q = detection_quality({"a": [10]}, {"b": [(5, 15)]})
    assert q.true_positives == 0 and q.detected == 0 and q.windows == 1


def test_no_events_or_no_windows_give_nan_not_zero_division() -> None:
    assert math.isnan(detection_quality({}, {"k": [(1, 2)]}).precision)
    assert math.isnan(detection_quality({"k": [1]}, {}).recall)


def test_latency_percentiles_are_nearest_rank() -> None:
    lat = latency_stats([float(v) for v in range(1, 101)])
    assert (lat.count, lat.p50, lat.p99, lat.max) == (100, 50.0, 99.0, 100.0)


def test_latency_of_nothing_is_nan() -> None:
    lat = latency_stats([])
    assert lat.count == 0 and math.isnan(lat.p50)


def test_cache_key_ignores_option_order_but_not_values_or_data() -> None:
    sha = "0" * 64
    assert cache_key(sha, {"a": 1, "b": 2}) == cache_key(sha, {"b": 2, "a": 1})
    assert cache_key(sha, {"a": 1}) != cache_key("1" * 64, {"a": 1})
    assert cache_key(sha, {"detection": {"warmup": 60}}) != cache_key(
        sha, {"detection": {"warmup": 61}})


def _summary(quality: Quality | None, latency: Latency, offline: int = 2) -> DemoSummary:
    return DemoSummary("sales", 8760, 12, 8484, 2, offline, quality, 30.0, 31.5, 292.0,
                       latency, 70.0, "demo-sales v1 (dense)", False)


def test_summary_names_every_figure_once() -> None:
    lines = summary_lines(_summary(Quality(2, 1, 4, 1), latency_stats([5.0, 7.0])))
    names = [line.split(":", 1)[0] for line in lines]
    assert names == ["records", "windows", "anomalies", "precision", "recall", "throughput",
                     "latency", "model", "wall time"]
    text = "\n".join(lines)
    assert "8,760 sales records of 12 key(s)" in text
    assert "precision: 0.50" in text and "recall: 0.25" in text
    assert "278 records/s" in text  # 8760 records over 31.5 s processed
    assert "p50 5.0 ms, p99 7.0 ms" in text and "trained now" in text


@pytest.mark.parametrize("offline, word", [(2, "same"), (3, "DIFFERENT")])
def test_summary_says_whether_online_matches_offline(offline: int, word: str) -> None:
    lines = summary_lines(_summary(None, latency_stats([1.0]), offline))
    assert lines[2].endswith(f"{word})")


def test_summary_without_labels_or_events_says_n_a() -> None:
    lines = summary_lines(_summary(None, latency_stats([])))
    assert lines[3].startswith("precision: n/a") and lines[4].startswith("recall: n/a")
    assert lines[6] == "latency: n/a (no anomaly events)"


def test_events_summary_reports_roc_auc_and_precision_recall_at_the_threshold() -> None:
    """Events are judged as the benchmark judges them: ROC AUC first, then the threshold."""
    q = Quality(events=50, true_positives=40, windows=100, detected=40)
    s = DemoSummary("events", 10_000, 1, 10_000, 50, 50, q, 15.0, 15.2, 667.0,
                    latency_stats([1.0]), 40.0, "demo-events v1 (events)", True,
                    roc_auc=0.9712)
    lines = summary_lines(s)
    assert ("ROC AUC: 0.971 (score of the 100 signal events against the background; "
            "docs/detection_quality.md)") in lines
    assert "precision: 0.80 at the threshold (40 of 50 anomaly events are signal)" in lines
    assert "recall: 0.40 at the threshold (40 of 100 signal events detected)" in lines
    series = summary_lines(DemoSummary("series", 1, 1, 1, 50, 50, q, 1.0, 1.0, 1.0,
                                       latency_stats([1.0]), 1.0, "m", True))
    assert not any(line.startswith("ROC AUC") for line in series)


def test_roc_auc_of_signal_against_background() -> None:
    signal = signal_mask([10, 20, 30, 40], {"events": [(20, 20), (40, 40)]})
    assert signal == [False, True, False, True]
    assert roc_auc([0.1, 0.9, 0.2, 0.8], signal) == 1.0
    assert roc_auc([0.9, 0.1, 0.8, 0.2], signal) == 0.0
    assert roc_auc([0.5, 0.9, 0.9, 0.1], signal) == 0.375  # ties count half
    assert roc_auc([1.0, 2.0], [False, False]) is None
