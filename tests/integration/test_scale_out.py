"""Scale-out: two workers sharing a 4-partition topic (with a rebalance in the middle)
together emit the anomaly set one offline pass computes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from model_fixtures import window_mean_model, write_registry_model
from test_worker import DETECTION, offline_events, series_records
from worker_harness import consume, produce, run_worker, topic_names

from stream_detector.services.process import ServiceHandle

pytestmark = pytest.mark.slow


def test_two_workers_emit_the_offline_anomaly_set(
    kafka_broker: ServiceHandle, redis_server: ServiceHandle, redis_client: Any, tmp_path: Path
) -> None:
    model = write_registry_model(
        tmp_path / "registry" / "tiny" / "1", window_mean_model(8, 1, last_k=1),
        window=8, features=["value"], threshold=4.0, detection=DETECTION,
    )
    keys = [f"host-{i}" for i in range(8)]
    series = {k: series_records(k, 160, {50 + 9 * i: 40.0, 120: -40.0}, seed=i)
              for i, k in enumerate(keys)}
    expected = {(e.key, e.window_end) for k in keys for e in offline_events(model, series[k])}
    assert len({k for k, _ in expected}) >= len(keys) - 2  # most keys have anomalies

    def messages(lo: int, hi: int) -> list[tuple[bytes | None, bytes]]:
        return [(k.encode(), json.dumps(r).encode()) for i in range(lo, hi)
                for k in keys for r in [series[k][i]]]

    topics = topic_names("scale")
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    registry = [model.parent.parent]
    with run_worker(kafka_broker, redis_server, registry, tmp_path / "a", topics=topics,
                    partitions=4):
        produce(kafka_broker, topics["input"], messages(0, 80))
        consume(kafka_broker, topics["output"], 10**6, 8)  # let the first worker work
        with run_worker(kafka_broker, redis_server, registry, tmp_path / "b", topics=topics,
                        partitions=4):
            produce(kafka_broker, topics["input"], messages(80, 160))
            events = consume(kafka_broker, topics["output"], len(expected), 90, settle=5)

    got = {(e["key"], e["window_end"]) for e in events}
    assert got == expected  # duplicates of at-least-once collapse by (key, window end)


def test_an_input_grown_without_its_changelog_is_refused_before_any_offset_moves(
    kafka_broker: ServiceHandle, redis_server: ServiceHandle, tmp_path: Path
) -> None:
    """Half of deploy/README.md's "Adding partitions" (the input grown, the changelog not):
    every start crashed at the first state write to a partition the changelog lacks (a
    Faust AssertionError, ~170 lines), after committing offsets of records whose state was
    never written; the next starts skipped them."""
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewPartitions
    from worker_harness import bootstrap, spawn_worker, stop_worker

    model = write_registry_model(
        tmp_path / "registry" / "tiny" / "1", window_mean_model(8, 1, last_k=1),
        window=8, features=["value"], threshold=4.0, detection=DETECTION)
    topics = topic_names("grow")
    record = json.dumps(series_records("host-0", 1, {}, seed=0)[0]).encode()
    with run_worker(kafka_broker, redis_server, [model.parent.parent], tmp_path,
                    topics=topics, partitions=2) as worker:
        produce(kafka_broker, topics["input"], [(b"host-0", record)])
        deadline = time.monotonic() + 60
        while worker.metric("stream_detector_records_in_total") < 1:
            assert time.monotonic() < deadline, "the record was never consumed"
            time.sleep(0.1)
    admin = AdminClient({"bootstrap.servers": bootstrap(kafka_broker)})
    admin.create_partitions([NewPartitions(topics["input"], 4)])[topics["input"]].result(30)
    produce(kafka_broker, topics["input"], [(f"k{i}".encode(), record) for i in range(40)])

    again = spawn_worker(kafka_broker, redis_server, [model.parent.parent], tmp_path, topics,
                         partitions=2)
    try:
        again.proc.wait(timeout=60)
    finally:
        stop_worker(again, kill=True)
    log = again.log.read_text()
    assert again.proc.returncode == 1, log[-3000:]
    changelog = f"{topics['app_id']}-key-state-changelog"
    assert (f"the key-state changelog {changelog} has 2 partitions but the input topic "
            f"{topics['input']} has 4") in log
    assert "Traceback" not in log.split("Kafka")[-1]  # one line, not Faust's crash dump
    group = Consumer({"bootstrap.servers": bootstrap(kafka_broker),
                      "group.id": topics["app_id"]})
    try:
        new = [TopicPartition(topics["input"], p) for p in (2, 3)]
        assert [tp.offset for tp in group.committed(new, timeout=10)] == [-1001, -1001]
    finally:
        group.close()
