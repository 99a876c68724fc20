"""The latency benchmark's verdicts: kept up or not, from what the worker consumed while the
producer ran, and the rates it kept up with / fell behind at."""

from __future__ import annotations

import doctest

from benchmarks import latency
from benchmarks.latency import keeping_up, limits


def test_doctests() -> None:
    result = doctest.testmod(latency)
    assert result.attempted >= 3 and result.failed == 0


def test_a_worker_that_catches_up_after_the_producer_did_not_keep_up() -> None:
    # every event came in the end, but only half was consumed while produced
    got = keeping_up(10_000, 2.0, 5_000.0, all_events=True)
    assert got == {"kept_up": False, "sustained_records_per_s": 2_500.0,
                   "backlog_records": 5_000.0}


def test_missing_events_is_not_keeping_up_even_at_full_rate() -> None:
    assert not keeping_up(10_000, 2.0, 10_000.0, all_events=False)["kept_up"]
    assert keeping_up(10_000, 2.0, 9_500.0, all_events=True)["kept_up"]
    assert not keeping_up(10_000, 2.0, 9_499.0, all_events=True)["kept_up"]


def test_limits_per_message_size_skip_phases_not_run() -> None:
    phases = [
        {"per_message": 10, "rate_target": 5_000.0, "kept_up": True,
         "sustained_records_per_s": 4_990.0},
        {"per_message": 1, "rate_target": 5_000.0, "kept_up": False,
         "sustained_records_per_s": 3_000.0},
        {"per_message": 10, "rate_target": 20_000.0, "kept_up": True,
         "sustained_records_per_s": 19_500.0},
        {"per_message": 10, "rate_target": 50_000.0, "kept_up": False,
         "sustained_records_per_s": 30_000.0},
        {"per_message": 1, "rate_target": 20_000.0, "not_run": "behind"},
    ]
    assert limits(phases) == {
        10: {"kept_up_at": 20_000.0, "falls_behind_at": 50_000.0, "max_sustained": 30_000.0},
        1: {"kept_up_at": None, "falls_behind_at": 5_000.0, "max_sustained": 3_000.0},
    }
