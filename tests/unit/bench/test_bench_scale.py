"""The scale benchmark's pure parts: what a run sends, rates, memory fields, changelog
traffic, ratios and the table."""

from __future__ import annotations

import doctest
import math
import os
import time
from collections import Counter
from pathlib import Path

import pytest

from benchmarks import scale_figures
from benchmarks.scale import build_messages
from benchmarks.scale_figures import (
    Plan,
    changelog_summary,
    phase_rate,
    plan,
    proc_cpu_seconds,
    proc_status_bytes,
    scale_markdown,
    scale_ratios,
)
from schemas.records import parse_message


def test_doctests() -> None:
    result = doctest.testmod(scale_figures)
    assert result.failed == 0 and result.attempted >= 6


def test_runs_with_up_to_timed_over_per_message_keys_send_the_same_timed_messages() -> None:
    small, large = plan(1_000, 50_000, window=8, per_message=10), plan(5_000, 50_000, 8, 10)
    assert small.timed_records == large.timed_records == 50_000
    assert (small.timed_keys, small.per_key) == (1_000, 50)
    assert (large.timed_keys, large.per_key) == (5_000, 10)
    many = plan(100_000, 50_000, window=8, per_message=10)  # 5,000 messages: 5,000 keys touched
    assert (many.timed_keys, many.per_key, many.timed_records) == (5_000, 10, 50_000)
    assert many.warm_records == 800_000


def test_plan_refuses_what_cannot_be_one_message() -> None:
    with pytest.raises(ValueError, match="at least one key and one message"):
        plan(10, 9, per_message=10)
    with pytest.raises(ValueError, match="at least one key"):
        plan(0, 100)


def test_messages_fill_every_window_then_continue_each_key_in_time() -> None:
    p = Plan(keys=6, window=4, timed_keys=3, per_key=6, per_message=3)
    msgs = build_messages(p)
    warm, timed = msgs[: p.keys], msgs[p.keys:]
    assert [len(parse_message(v)) for _, v in warm] == [4] * 6
    assert [k for k, _ in warm] == [f"k{i}".encode() for i in range(6)]
    assert len(timed) == 6 and all(len(parse_message(v)) == 3 for _, v in timed)
    assert [k for k, _ in timed[:3]] == [b"k0", b"k1", b"k2"]  # keys in turn
    per_key = Counter(k for k, _ in timed)
    assert per_key == {b"k0": 2, b"k1": 2, b"k2": 2}
    for key in (b"k0", b"k5"):
        stamps = [r.epoch_ns for k, v in msgs if k == key for r in parse_message(v)]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
        assert all(r.key == key.decode() for k, v in msgs if k == key for r in parse_message(v))


def test_phase_rate_spans_the_first_samples_at_or_past_each_count() -> None:
    samples = [(10.0, 0.0), (10.5, 40.0), (11.0, 100.0), (12.0, 300.0), (13.0, 500.0)]
    got = phase_rate(samples, 100, 450)
    assert got == {"seconds": 2.0, "records": 400.0, "records_per_s": 200.0}
    with pytest.raises(ValueError, match="do not span"):
        phase_rate(samples, 100, 501)
    with pytest.raises(ValueError, match="do not span"):
        phase_rate(samples, 500, 500)  # one sample: no time between


def test_proc_status_bytes_reads_this_process_memory() -> None:
    text = Path(f"/proc/{os.getpid()}/status").read_text()
    rss, peak = proc_status_bytes(text, "VmRSS"), proc_status_bytes(text, "VmHWM")
    assert 10 * 2**20 < rss <= peak
    with pytest.raises(ValueError, match="VmNothing not in"):
        proc_status_bytes(text, "VmNothing")
    with pytest.raises(ValueError, match="unexpected unit"):
        proc_status_bytes("VmHWM:\t1 MB\n", "VmHWM")


def test_proc_cpu_seconds_grows_with_this_process_work() -> None:
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu() -> float:
        return proc_cpu_seconds(Path(f"/proc/{os.getpid()}/stat").read_text(), ticks)

    before, started = cpu(), time.process_time()
    while time.process_time() - started < 0.3:
        sum(i * i for i in range(10_000))
    assert cpu() - before >= 0.2
    with pytest.raises(ValueError, match="too few fields"):
        proc_cpu_seconds("1 (x) S 1 2", ticks)


def test_changelog_summary_counts_the_window_and_keeps_each_keys_last_state() -> None:
    msgs = [(0, 0, b"m\x1fk0", 100), (0, 1, b"m\x1fk1", 100), (0, 2, b"m\x1fk0", 120),
            (1, 0, b"m\x1fk2", 90), (1, 1, b"m\x1fk2", 95), (1, 2, b"m\x1fk2", 99)]
    got = changelog_summary(msgs, start={0: 2, 1: 1}, end={0: 3, 1: 2})
    assert got["window_messages"] == 2  # (0, 2) and (1, 1)
    assert got["window_bytes"] == (4 + 120) + (4 + 95)
    assert got["keys"] == 3
    assert (got["state_bytes_min"], got["state_bytes_max"]) == (99, 120)
    assert got["state_bytes_mean"] == pytest.approx((120 + 100 + 99) / 3)
    empty = changelog_summary([], {}, {})
    assert empty["keys"] == 0 and math.isnan(empty["state_bytes_mean"])


def test_ratios_take_the_fewest_keys_one_worker_run_as_baseline() -> None:
    runs = [{"keys": 100_000, "workers": 1, "records_per_s": 600.0},
            {"keys": 10_000, "workers": 1, "records_per_s": 800.0},
            {"keys": 10_000, "workers": 2, "records_per_s": 1_000.0},
            {"keys": 5_000, "workers": 2, "records_per_s": 1.0}]  # no 1-worker twin: no ratio
    assert scale_ratios(runs) == {"keys_100000_vs_10000": 0.75, "workers_2_vs_1": 1.25}
    for r in runs:
        r["records_per_cpu_s"] = r["records_per_s"] / r["workers"]
    assert scale_ratios(runs, "records_per_cpu_s") == {"keys_100000_vs_10000": 0.75,
                                                       "workers_2_vs_1": 0.625}
    assert scale_ratios([{"keys": 10, "workers": 2, "records_per_s": 5.0}]) == {}


def _run(keys: int, workers: int, rate: float) -> dict[str, object]:
    return {"keys": keys, "workers": workers, "records_per_s": rate,
            "records_per_cpu_s": rate * 1.25 / workers,
            "warm_records_per_s": 2 * rate, "rss_peak_bytes": [200 * 2**20] * workers,
            "rss_growth_per_key_bytes": 1500.0, "state_bytes_mean": 970.0,
            "changelog_bytes_per_s": 5e5, "changelog_messages_per_s": 500.0,
            "full_windows": keys}


def test_markdown_has_a_row_per_run_ratios_and_failures() -> None:
    runs = [_run(10_000, 1, 800.0), _run(10_000, 2, 1200.0)]
    md = scale_markdown({"window": 24, "per_message": 10, "partitions": 4, "runs": runs,
                         "ratios": scale_ratios(runs),
                         "ratios_per_cpu_s": scale_ratios(runs, "records_per_cpu_s"),
                         "errors": {"100000 keys, 1 worker(s)": "TimeoutError: slow"}})
    assert "| 10,000 | 2 | 1,200 | 1.5 | 750 | 0.75 | 2,400 | 200 + 200 |" in md
    assert "| 10,000 | 1 | 800 | 1 | 1,000 | 1 |" in md
    assert "Ratios of records/s: workers_2_vs_1 1.5" in md
    assert "Ratios of records per CPU s: workers_2_vs_1 0.75" in md
    assert "| 100000 keys, 1 worker(s) | TimeoutError: slow |" in md
    assert "10,000/10,000" in md
