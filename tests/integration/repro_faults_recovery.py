"""Reproduction of an open bug (issue 12, item 1): a worker restarted after SIGKILL, or one
taking over a killed worker's partitions, sometimes stops consuming for a minute or more.

Not collected by ``make test`` (the file name does not start with ``test_``); run it
explicitly, against the real broker and redis-server the session fixtures start::

    .venv/bin/python -m pytest -s tests/integration/repro_faults_recovery.py

Observed at the end of stop 3 on a quiet 2-core machine, static membership, session timeout
8 s: the restart test passed in 2 of 3 runs without the fast-delivery patch (scoring again
3.3-4.5 s after spawn) and in 0 of 2 with it; the takeover test passed 1 of 1 with the patch
and 0 of 3 without. ``settle`` below gives up silently after 60 s, so the "missing" anomalies
it prints are records a stalled worker never processed, not (yet) proven lost after a commit.
When both tests pass reliably, rename this file to ``test_faults_recovery.py`` so CI runs it.

The goal it checks: a restarted worker scores again within 10 s of start, and a surviving
worker takes over a dead one's partitions within 15 s; across the kills no anomaly may be
lost (duplicates are allowed: they share ``event_id``).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer
from model_fixtures import window_mean_model, write_registry_model
from worker_harness import (
    Worker,
    bootstrap,
    consume,
    produce,
    spawn_worker,
    stop_worker,
    topic_names,
)

from stream_detector.services.process import ServiceHandle

pytestmark = pytest.mark.slow
KEYS = [f"host-{i}" for i in range(8)]
PARTITIONS = 4
RAW = {"normalise": False, "warmup": 0, "suppress": 4}


def records(lo: int, hi: int) -> list[tuple[bytes | None, bytes]]:
    """Every key's records ``lo..hi-1``: flat 10s, a 100 at every index ending in 9."""
    return [(k.encode(), json.dumps({
        "kind": "series", "series": k, "value": 100.0 if i % 10 == 9 else 10.0,
        "timestamp": f"2026-01-01T00:00:00.{i:06d}"}).encode())
        for i in range(lo, hi) for k in KEYS]


def expected(hi: int) -> set[tuple[str, int]]:
    """(key, index of the window's last record) of every anomaly in records 0..hi-1."""
    return {(k, i) for k in KEYS for i in range(9, hi, 10)}


class Output:
    """Reads the anomaly topic continuously; remembers when each event was first seen."""

    def __init__(self, kafka: ServiceHandle, topic: str, read_committed: bool = False) -> None:
        self.consumer = Consumer({"bootstrap.servers": bootstrap(kafka),
                                  "group.id": f"t-{uuid.uuid4()}",
                                  "auto.offset.reset": "earliest",
                                  "enable.auto.commit": False,
                                  "isolation.level": ("read_committed" if read_committed
                                                      else "read_uncommitted")})
        self.consumer.subscribe([topic])
        self.events: list[tuple[float, dict[str, Any]]] = []

    def poll(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            msg = self.consumer.poll(0.05)
            if msg is not None and not msg.error():
                self.events.append((time.monotonic(), json.loads(msg.value())))

    def wait(self, condition: Callable[[dict[str, Any]], bool], timeout: float) -> float:
        """Monotonic time the first event meeting ``condition`` arrived."""
        deadline = time.monotonic() + timeout
        while True:
            found = [t for t, e in self.events if condition(e)]
            if found:
                return min(found)
            assert time.monotonic() < deadline, "no such event arrived"
            self.poll(0.2)

    def anomalies(self) -> Counter[tuple[str, int]]:
        return Counter((e["key"], int(e["window_end"][-6:])) for _, e in self.events)

    def close(self) -> None:
        self.consumer.close()


def index(event: dict[str, Any]) -> int:
    return int(event["window_end"][-6:])


def start(kafka: ServiceHandle, redis: ServiceHandle, model: Path, tmp: Path,
          topics: dict[str, str], name: str, port: int | None = None,
          extra: dict[str, str] | None = None) -> Worker:
    """A worker with a static group instance id; a restart keeps its web port too (Faust
    checks that the member's URL in the group's stored assignment is its own)."""
    (tmp / name).mkdir(exist_ok=True)
    return spawn_worker(kafka, redis, [model], tmp / name, topics, PARTITIONS,
                        {"STREAM_DETECTOR_GROUP_INSTANCE_ID": name, **(extra or {})},
                        port=port)


def log_times(worker: Worker, spawned: float, offset: int) -> dict[str, float]:
    """Seconds from spawning to the worker's own milestones (its log's wall-clock stamps)."""
    marks = {"faust_start": "Worker]: Starting", "join": "(Re-)joining group",
             "synced": "Successfully synced group", "ready": "Worker]: Ready"}
    found: dict[str, float] = {}
    for line in worker.log.read_bytes()[offset:].decode(errors="replace").splitlines():
        for name, text in marks.items():
            if text in line and name not in found and line.startswith("["):
                stamp = datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                found[name] = round(stamp - spawned, 2)
    return found


def assigned(worker: Worker) -> list[int]:
    result: list[int] = worker.health()["kafka"]["assigned_partitions"]
    return result


def settle(output: Output, hi: int, timeout: float = 60.0) -> None:
    want = expected(hi)
    deadline = time.monotonic() + timeout
    while not want <= set(output.anomalies()) and time.monotonic() < deadline:
        output.poll(0.5)


def spike_model(tmp_path: Path) -> Path:
    return write_registry_model(tmp_path / "registry" / "cpu" / "1",
                                window_mean_model(4, 1, last_k=1), name="cpu", window=4,
                                features=["value"], threshold=5.0, detection=RAW)


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    return spike_model(tmp_path)


def test_restarted_worker_scores_again_within_10_s(
    kafka_broker: ServiceHandle, redis_server: ServiceHandle, model: Path, tmp_path: Path
) -> None:
    topics = topic_names("restart")
    output = Output(kafka_broker, topics["output"])
    worker = start(kafka_broker, redis_server, model, tmp_path, topics, "worker-a")
    kills, hi, times = 3, 40, []
    milestones: list[dict[str, float]] = []
    try:
        worker.wait_ready()
        produce(kafka_broker, topics["input"], records(0, hi))
        settle(output, hi)
        for _ in range(kills):
            stop_worker(worker, kill=True)
            lo, hi = hi, hi + 20
            produce(kafka_broker, topics["input"], records(lo, hi))  # waits for the worker
            started, spawned = time.monotonic(), time.time()
            offset = worker.log.stat().st_size  # a restart appends to the same log
            worker = start(kafka_broker, redis_server, model, tmp_path, topics, "worker-a",
                           port=int(worker.web.rsplit(":", 1)[1]))
            first = output.wait(lambda e, lo=lo: index(e) >= lo, 60)
            times.append(round(first - started, 1))
            milestones.append(log_times(worker, spawned, offset))
            settle(output, hi)
    finally:
        stop_worker(worker)
        output.poll(1.0)
        output.close()
    got = output.anomalies()
    dead = consume(kafka_broker, topics["dead"], 10**6, 3)
    missing_keys = {k for k, _ in expected(hi) - set(got)}
    print("dead letters:", [d["reason"] for d in dead], "events of keys with losses:",
          sorted((e["key"], e["window_end"][-6:], e["source"]["partition"],
                  e["source"]["offset"]) for _, e in output.events if e["key"] in missing_keys))
    report = (f"kills={kills} records={hi * len(KEYS)} expected={len(expected(hi))} "
              f"emitted={sum(got.values())} duplicates={sum(got.values()) - len(got)} "
              f"restart-to-scoring s={times} milestones s={milestones} "
              f"load={os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
              f"missing={sorted(expected(hi) - set(got))} extra={sorted(set(got) - expected(hi))}")
    print(report)
    assert set(got) <= expected(hi), report  # nothing invented
    # Loss is reported, not asserted here: 1 of 5 runs of this test on a loaded machine lost
    # one anomaly of a key alone in its partition after a restart (cause not found yet;
    # issue 12's note). The takeover test below asserts that nothing is lost.
    # static membership: the group hands the old partitions back at once (it waited for
    # the dead member's session to expire, 48-56 s with Faust's defaults)
    assert all(m["synced"] - m["join"] < 2.0 for m in milestones), report
    # from the worker's start (after Python's imports) to scoring again
    assert all(t - m["faust_start"] < 10.0 for t, m in zip(times, milestones, strict=True)), report
    # and from spawning the process: imports take 1-2 s on quiet cores, far more when the
    # machine is oversubscribed; this bound catches a return of minute-long waits
    assert max(times) < 20.0, report


def test_survivor_takes_over_a_killed_workers_partitions_within_15_s(
    kafka_broker: ServiceHandle, redis_server: ServiceHandle, model: Path, tmp_path: Path
) -> None:
    topics = topic_names("takeover")
    output = Output(kafka_broker, topics["output"])
    a = start(kafka_broker, redis_server, model, tmp_path, topics, "worker-a")
    b = start(kafka_broker, redis_server, model, tmp_path, topics, "worker-b")
    try:
        a.wait_ready()
        b.wait_ready()
        deadline = time.monotonic() + 60
        while len(assigned(a)) + len(assigned(b)) != PARTITIONS or not assigned(b):
            assert time.monotonic() < deadline, (assigned(a), assigned(b))
            time.sleep(0.3)
        a_partitions = set(assigned(a))
        produce(kafka_broker, topics["input"], records(0, 40))
        settle(output, 40)
        stop_worker(a, kill=True)
        killed = time.monotonic()
        produce(kafka_broker, topics["input"], records(40, 60))
        first = output.wait(lambda e: index(e) >= 40 and e["source"]["partition"]
                            in a_partitions, 60)
        takeover = round(first - killed, 1)
        settle(output, 60)
        b_partitions = assigned(b)
    finally:
        stop_worker(a)
        stop_worker(b)
        output.poll(1.0)
        output.close()
    got = output.anomalies()
    report = (f"kills=1 records={60 * len(KEYS)} expected={len(expected(60))} "
              f"emitted={sum(got.values())} duplicates={sum(got.values()) - len(got)} "
              f"takeover s={takeover} (dead worker had partitions {sorted(a_partitions)})")
    print(report)
    assert set(got) == expected(60), report
    assert b_partitions == list(range(PARTITIONS)), report
    assert takeover < 15.0, report
