"""Headline ratios from the parts' results, and the latency benchmark's spike count."""

from __future__ import annotations

import json
import math

from benchmarks.e2e_support import series_messages, spikes
from benchmarks.summary import ratios, summary_markdown


def _tp(rate: float) -> dict[str, float]:
    return {"records_per_s": rate}


def test_ratios_take_each_baseline_of_the_same_run() -> None:
    results = {
        "worker_e2e": {
            "throughput": {
                "single": {"bare_agent": _tp(10_000.0), "worker": _tp(9_500.0),
                           "quix_state": _tp(4_000.0), "quix_dict": _tp(5_000.0)},
                "batched_100": {"bare_agent": _tp(400_000.0), "worker": _tp(360_000.0),
                                "plain": _tp(450_000.0)},
            },
            "latency": [{"rate_target": 20_000.0, "per_message": 10,
                         "latency_ms": {"p99": 80.0}},
                        {"rate_target": 5_000.0, "per_message": 1,
                         "latency_ms": {"p99": 12.0}}],
            "latency_floor": {"rate_target": 5_000.0, "per_message": 1,
                              "latency_ms": {"p99": 7.0}},
        },
        "scoring_ceiling": {"rows": [{"batch": 64, "ratio": 0.95}, {"batch": 64, "ratio": 0.91},
                                     {"batch": 1024, "ratio": 0.99}]},
    }
    got = ratios(results)
    assert got["batched_vs_bare_agent"] == 0.9 and got["single_vs_bare_agent"] == 0.95
    assert got["single_vs_quixstreams"] == 9_500.0 / 5_000.0  # the faster quixstreams peer
    assert got["batched_vs_plain_loop"] == 0.8
    assert got["latency_p99_ms_at_5k"] == 12.0
    assert got["latency_floor_p99_ms_at_5k"] == 7.0  # the transport's own, never the worker's
    assert got["scoring_vs_ort_at_64"] == 0.91  # the worst family counts
    md = summary_markdown(got, "test")
    assert "met (>= 0.8)" in md and "met (< 50)" in md


def test_missing_parts_give_nan_not_an_error() -> None:
    got = ratios({})
    assert all(math.isnan(v) for v in got.values())
    assert "not measured" in summary_markdown(got, "empty")


def test_spikes_counts_the_spiked_records_of_series_messages() -> None:
    msgs = list(series_messages(2_000, keys=10, per_message=5, first_step=23, spike_every=100))
    values = [r["value"] for _, v in msgs for r in json.loads(v)]
    assert sum(v > 200.0 for v in values) == spikes(2_000, 10, 23, 100) == 20
