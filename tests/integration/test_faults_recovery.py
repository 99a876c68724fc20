"""Recovery after SIGKILL (issue 12, item 1), against the real broker and redis-server.

A worker restarted after SIGKILL scores again within 10 s of its start, and a surviving
worker takes over a killed one's partitions within 15 s (static membership, session timeout
8 s, heartbeat 1 s). Across the kills no anomaly is lost and none is invented; duplicates
are allowed (at-least-once: they share ``event_id``).

Both used to fail now and then: the worker was ``Ready`` but emitted nothing for a minute
or more, and some anomalies were lost. The cause was Faust's end of recovery dropping
records that aiokafka had already handed over (see :mod:`stream_detector.worker.faust_patch`,
``install_rebalance_fixes``). When anomalies are missing, the tests say whether their
records were never processed (the group's committed offset is short of the end) or
processed and lost (committed past them).

A third test holds a survivor's agent while records of a partition that never had an offset
committed wait on its queue, and makes the other worker leave: the rebalance clears the
queue, and the records must still be processed (nothing lost).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)
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

    def wait(self, condition: Callable[[dict[str, Any]], bool], timeout: float) -> float | None:
        """Monotonic time the first event meeting ``condition`` arrived; None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            found = [t for t, e in self.events if condition(e)]
            if found:
                return min(found)
            if time.monotonic() >= deadline:
                return None
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


def settle(output: Output, hi: int, timeout: float = 60.0) -> bool:
    """Read events until every anomaly of records ``0..hi-1`` arrived; False on timeout."""
    want = expected(hi)
    deadline = time.monotonic() + timeout
    while not want <= set(output.anomalies()):
        if time.monotonic() >= deadline:
            return False
        output.poll(0.5)
    return True


def offsets(kafka: ServiceHandle, topics: dict[str, str]) -> dict[int, tuple[int, int]]:
    """Per input partition: (the worker group's committed offset, the end offset)."""
    consumer = Consumer({"bootstrap.servers": bootstrap(kafka), "group.id": topics["app_id"],
                         "enable.auto.commit": False})
    try:
        tps = [TopicPartition(topics["input"], p) for p in range(PARTITIONS)]
        committed = {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=10)}
        return {p: (committed[p], consumer.get_watermark_offsets(
            TopicPartition(topics["input"], p), timeout=10)[1]) for p in range(PARTITIONS)}
    finally:
        consumer.close()


def verdict(output: Output, hi: int, kafka: ServiceHandle, topics: dict[str, str]) -> str:
    """Which missing anomalies were never processed, and which were processed and lost.

    Called after the workers stopped (SIGTERM: Faust commits what was acked). A partition
    whose committed offset is short of its end still holds unprocessed records; anomalies of
    a partition committed to its end were lost.
    """
    missing = sorted(expected(hi) - set(output.anomalies()))
    if not missing:
        return "none missing"
    partition_of = {e["key"]: e["source"]["partition"] for _, e in output.events}
    state = offsets(kafka, topics)
    unprocessed = [m for m in missing
                   if m[0] not in partition_of or state[partition_of[m[0]]][0] < state[
                       partition_of[m[0]]][1]]
    lost = [m for m in missing if m not in unprocessed]
    return (f"missing {len(missing)}: unprocessed (committed < end) {unprocessed}, "
            f"lost (committed to the end) {lost}; committed/end per partition {state}")


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
        assert settle(output, hi), verdict(output, hi, kafka_broker, topics)
        for _ in range(kills):
            stop_worker(worker, kill=True)
            lo, hi = hi, hi + 20
            produce(kafka_broker, topics["input"], records(lo, hi))  # waits for the worker
            started, spawned = time.monotonic(), time.time()
            offset = worker.log.stat().st_size  # a restart appends to the same log
            worker = start(kafka_broker, redis_server, model, tmp_path, topics, "worker-a",
                           port=int(worker.web.rsplit(":", 1)[1]))
            first = output.wait(lambda e, lo=lo: index(e) >= lo, 60)
            assert first is not None, (
                f"restart {len(times) + 1}: no event from the new records in 60 s; "
                f"{verdict(output, hi, kafka_broker, topics)}")
            times.append(round(first - started, 1))
            milestones.append(log_times(worker, spawned, offset))
            if not settle(output, hi):
                break
    finally:
        stop_worker(worker)
        output.poll(1.0)
        output.close()
    got = output.anomalies()
    why = verdict(output, hi, kafka_broker, topics)
    dead = consume(kafka_broker, topics["dead"], 10**6, 3)
    missing_keys = {k for k, _ in expected(hi) - set(got)}
    print("dead letters:", [d["reason"] for d in dead], "events of keys with losses:",
          sorted((e["key"], e["window_end"][-6:], e["source"]["partition"],
                  e["source"]["offset"]) for _, e in output.events if e["key"] in missing_keys))
    report = (f"kills={kills} records={hi * len(KEYS)} expected={len(expected(hi))} "
              f"emitted={sum(got.values())} duplicates={sum(got.values()) - len(got)} "
              f"restart-to-scoring s={times} milestones s={milestones} "
              f"load={os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
              f"missing: {why}; extra={sorted(set(got) - expected(hi))}")
    print(report)
    assert set(got) == expected(hi), report  # nothing lost, nothing invented
    assert len(times) == kills, report
    # static membership: the group hands the old partitions back at once (it waited for
    # the dead member's session to expire, 48-56 s with Faust's defaults)
    assert all(m["synced"] - m["join"] < 2.0 for m in milestones), report
    # from the worker's start (Faust's "Starting", after Python's imports) to scoring again
    assert all(t - m["faust_start"] < 10.0 for t, m in zip(times, milestones, strict=True)), report
    # and from spawning the process: the imports take 1.7 s of CPU, 1-2 s of wall time on
    # quiet cores but 5-7 s on an oversubscribed machine; this bound catches a return of
    # minute-long waits without failing on a loaded CI host
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
        assert settle(output, 40), verdict(output, 40, kafka_broker, topics)
        stop_worker(a, kill=True)
        killed = time.monotonic()
        produce(kafka_broker, topics["input"], records(40, 60))
        first = output.wait(lambda e: index(e) >= 40 and e["source"]["partition"]
                            in a_partitions, 60)
        assert first is not None, (f"no event from the killed worker's partitions in 60 s; "
                                   f"{verdict(output, 60, kafka_broker, topics)}")
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
              f"takeover s={takeover} (dead worker had partitions {sorted(a_partitions)}) "
              f"load={os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
              f"missing: {verdict(output, 60, kafka_broker, topics)}; "
              f"extra={sorted(set(got) - expected(60))}")
    print(report)
    assert set(got) == expected(60), report
    assert b_partitions == list(range(PARTITIONS)), report
    assert takeover < 15.0, report


def produce_to(kafka: ServiceHandle, topic: str, partition: int, keys: list[str],
               lo: int, hi: int) -> None:
    """Records ``lo..hi-1`` of ``keys`` (as :func:`records`) into one partition."""
    producer = Producer({"bootstrap.servers": bootstrap(kafka), "linger.ms": 5})
    for i in range(lo, hi):
        for k in keys:
            producer.produce(topic, partition=partition, key=k.encode(), value=json.dumps({
                "kind": "series", "series": k, "value": 100.0 if i % 10 == 9 else 10.0,
                "timestamp": f"2026-01-01T00:00:00.{i:06d}"}).encode())
    assert producer.flush(30) == 0


def max_message_bytes(kafka: ServiceHandle, topic: str, n: int, create: bool = False) -> None:
    """Create ``topic`` taking messages of at most ``n`` bytes, or set it on the topic.

    With 1 every send is refused (MESSAGE_TOO_LARGE) and the worker's delivery retries,
    holding its agent, until the limit is raised again."""
    admin = AdminClient({"bootstrap.servers": bootstrap(kafka)})
    if create:
        futures = admin.create_topics([NewTopic(topic, PARTITIONS, 1,
                                                config={"max.message.bytes": str(n)})])
    else:
        futures = admin.incremental_alter_configs([ConfigResource(
            ConfigResource.Type.TOPIC, topic, incremental_configs=[ConfigEntry(
                "max.message.bytes", str(n), incremental_operation=AlterConfigOpType.SET)])])
    for future in futures.values():
        future.result(timeout=30)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_survivor_replays_its_never_committed_partition_after_a_rebalance(
    kafka_broker: ServiceHandle, redis_server: ServiceHandle, model: Path, tmp_path: Path
) -> None:
    """A rebalance before a partition's first commit drops its queued records; they are
    processed after it all the same: no anomaly lost (at least once).

    Worker A's agent is held in a delivery (the anomaly topic refuses every message). Behind
    it, the next record of A's partition ``p0`` waits to enter the agent's take buffer, and
    the records of A's partition ``p1``, never committed, wait on the agent's queue. Worker B
    leaves (SIGTERM, dynamic membership): A's revoke clears the queue, the delivery is let
    through, and A takes all partitions. ``p0`` resumes from its committed offset; ``p1`` has
    none, and the seek to committed offsets does not move it. Its records come back because
    aiokafka starts each rebalance with fresh positions (``auto_offset_reset`` earliest for
    a partition without a commit), and ``faust_patch`` (hole 3) would seek it back to its
    first fetched record if its position were past it. This passed with and without that
    part of the patch: the test guards the promise, not one mechanism.
    """
    topics = topic_names("uncommitted")
    max_message_bytes(kafka_broker, topics["output"], 1, create=True)  # deliveries retry
    output = Output(kafka_broker, topics["output"])
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    a, b = (spawn_worker(kafka_broker, redis_server, [model], tmp_path / name, topics,
                         PARTITIONS) for name in "ab")
    hot, queued = ["hot-0"], ["cold-1", "cold-2", "cold-3"]
    want = {(k, i) for k in hot for i in (9, 19, 29)} | {(k, i) for k in queued for i in (9, 19)}
    try:
        a.wait_ready()
        b.wait_ready()
        wait_for(lambda: len(assigned(a)) == len(assigned(b)) == PARTITIONS // 2, 60,
                 "the partitions split between the two workers")
        p0, p1 = assigned(a)[:2]
        produce_to(kafka_broker, topics["input"], p0, hot, 0, 20)  # anomalies: held
        wait_for(lambda: a.metric("stream_detector_anomalies_out_total") >= 1, 30,
                 "A's agent to reach the held delivery")
        produce_to(kafka_broker, topics["input"], p0, hot, 20, 30)  # the next batch's
        time.sleep(1.0)
        produce_to(kafka_broker, topics["input"], p1, queued, 0, 20)  # on the queue
        time.sleep(2.0)  # A fetches them onto the agent's queue
        revokes = a.log.read_text().count("Revoking previously assigned partitions")
        stop_worker(b)  # leaves the group: A's rebalance begins
        wait_for(lambda: a.log.read_text().count("Revoking previously assigned partitions")
                 > revokes, 30, "A's revoke")
        before_revoke = a.log.read_text()  # p1 must not have been processed before it
        time.sleep(1.0)  # the revoke has cleared the agent's queue
        max_message_bytes(kafka_broker, topics["output"], 2**20)  # the delivery goes through
        deadline = time.monotonic() + 40
        while not want <= set(output.anomalies()) and time.monotonic() < deadline:
            output.poll(0.5)
        # an event is out before its state is flushed and its offset acked, then committed
        # on Faust's commit interval: stopped sooner, A would leave p1's tail to be
        # replayed (at least once, not lost); "processed in full" is its commit
        deadline = time.monotonic() + 20
        while (offsets(kafka_broker, topics)[p1][0] < 20 * len(queued)
               and time.monotonic() < deadline):
            time.sleep(0.5)
    finally:
        stop_worker(a)
        stop_worker(b)
        output.poll(1.0)
        output.close()
    got = output.anomalies()
    state = offsets(kafka_broker, topics)
    report = (f"records={30 * len(hot) + 20 * len(queued)} expected={len(want)} "
              f"emitted={sum(got.values())} duplicates={sum(got.values()) - len(got)} "
              f"missing={sorted(want - set(got))} extra={sorted(set(got) - want)} "
              f"p0={p0} p1={p1} committed/end per partition {state} "
              f"load={os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(report)
    assert "anomaly cold-" not in before_revoke, "p1 was processed before the revoke: " + report
    assert set(got) == want, report
    assert state[p1] == (20 * len(queued), 20 * len(queued)), report  # p1 processed in full


def exited(worker: Worker, timeout: float) -> tuple[int | None, str]:
    """The worker's exit code once it ends by itself within ``timeout`` s (None if it
    runs on), and its log."""
    try:
        code: int | None = worker.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        code = None
    return code, worker.log.read_text(errors="replace")


def test_a_second_worker_with_the_same_instance_id_exits_instead_of_idling(
    kafka_broker: ServiceHandle, redis_server: ServiceHandle, model: Path, tmp_path: Path
) -> None:
    """Two workers given one STREAM_DETECTOR_GROUP_INSTANCE_ID: the newer one's group
    coordination fails (Faust's assignor finds the other's URL in the stored assignment).
    It stayed up for good, consuming nothing, while /health answered 200."""
    topics = topic_names("dup")
    first = start(kafka_broker, redis_server, model, tmp_path, topics, "dup")
    first.wait_ready()
    (tmp_path / "other").mkdir()
    second = spawn_worker(kafka_broker, redis_server, [model], tmp_path / "other", topics,
                          PARTITIONS, {"STREAM_DETECTOR_GROUP_INSTANCE_ID": "dup"})
    try:
        code, log = exited(second, 90)
        assert code == 1, log[-3000:]
        (line,) = [x for x in log.splitlines() if "group coordination of this worker failed" in x]
        assert "same STREAM_DETECTOR_GROUP_INSTANCE_ID ('dup')" in line and "[ERROR]" in line
    finally:
        stop_worker(second)
        stop_worker(first)


def test_a_worker_whose_input_topic_grows_under_it_exits_naming_both_counts(
    kafka_broker: ServiceHandle, redis_server: ServiceHandle, model: Path, tmp_path: Path
) -> None:
    """The input topic re-created (by the worker's own metadata requests, with the
    broker's default partitions) or grown while the worker ran: it wrote key states to
    changelog partitions of another layout. It now stops at the rebalance that follows."""
    from confluent_kafka.admin import AdminClient, NewPartitions

    topics = topic_names("grown")
    worker = start(kafka_broker, redis_server, model, tmp_path, topics, "grown",
                   extra={"STREAM_DETECTOR_METADATA_MAX_AGE": "2"})
    try:
        worker.wait_ready()
        admin = AdminClient({"bootstrap.servers": bootstrap(kafka_broker)})
        for future in admin.create_partitions(
                [NewPartitions(topics["input"], PARTITIONS + 2)]).values():
            future.result(timeout=30)
        code, log = exited(worker, 60)
        assert code == 1, log[-3000:]
        assert (f"the input topic {topics['input']} now has {PARTITIONS + 2} partitions; this "
                f"worker started with {PARTITIONS}") in log
    finally:
        stop_worker(worker)
