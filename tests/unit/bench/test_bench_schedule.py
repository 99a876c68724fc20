"""The throughput part's run order: the bare agent and the worker alternate round after
round (their medians are compared), the peers run in the first rounds only."""

from __future__ import annotations

from collections import Counter

from benchmarks.worker_e2e import CONTENDERS, schedule


def test_quick_rounds_alternate_bare_agent_and_worker_and_run_the_peers_once() -> None:
    runs = schedule({"single": 1, "batched_100": 3}, peers=True, peer_rounds=1)
    batched = [c for shape, c in runs if shape == "batched_100"]
    assert batched[:5] == list(CONTENDERS)
    assert batched[5:] == ["bare_agent", "worker", "bare_agent", "worker"]
    assert Counter(c for shape, c in runs if shape == "single") == Counter(CONTENDERS)
    # a round's runs come before the next round's: single (1 round) is all in round one
    assert [s for s, _ in runs][:10] == ["single"] * 5 + ["batched_100"] * 5


def test_without_peers_only_the_bare_agent_and_the_worker_run() -> None:
    runs = schedule({"single": 3, "batched_100": 3}, peers=False, peer_rounds=3)
    assert Counter(runs) == Counter({("single", "bare_agent"): 3, ("single", "worker"): 3,
                                     ("batched_100", "bare_agent"): 3,
                                     ("batched_100", "worker"): 3})


def test_full_runs_every_contender_every_round() -> None:
    runs = schedule({"single": 3, "batched_100": 3}, peers=True, peer_rounds=3)
    assert Counter(runs) == Counter({(s, c): 3 for s in ("single", "batched_100")
                                     for c in CONTENDERS})
