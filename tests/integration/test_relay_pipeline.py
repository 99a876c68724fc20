"""The project's Faust agent on the real broker, driven by confluent-kafka, counting in Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from stream_detector.app import RELAY_COUNT_PREFIX
from stream_detector.services import ServiceHandle, free_port


def _bootstrap(handle: ServiceHandle) -> str:
    return handle.url.split("://", 1)[1]


def _create_topics(bootstrap: str, names: list[str], partitions: int = 2) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    for future in futures.values():
        future.result(timeout=30)


def _consume(bootstrap: str, topic: str, expected: int, timeout: float) -> list[Any]:
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"test-{uuid.uuid4()}",
        "auto.offset.reset": "earliest",
    })
    consumer.subscribe([topic])
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            got.append((msg.key(), json.loads(msg.value())))
    finally:
        consumer.close()
    return got


@pytest.fixture()
def relay_worker(
    kafka_broker: ServiceHandle, redis_server: ServiceHandle, redis_client: Any, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """The relay worker in its own process, as it runs in production."""
    suffix = uuid.uuid4().hex[:8]
    topics = {"input": f"in-{suffix}", "output": f"out-{suffix}", "dead": f"dlq-{suffix}"}
    _create_topics(_bootstrap(kafka_broker), list(topics.values()))
    env = {
        **os.environ,
        "STREAM_DETECTOR_KAFKA_URL": kafka_broker.url,
        "STREAM_DETECTOR_REDIS_URL": redis_server.url,
        "STREAM_DETECTOR_INPUT_TOPIC": topics["input"],
        "STREAM_DETECTOR_OUTPUT_TOPIC": topics["output"],
        "STREAM_DETECTOR_DEAD_LETTER_TOPIC": topics["dead"],
        "STREAM_DETECTOR_TOPIC_PARTITIONS": "2",
        "STREAM_DETECTOR_WEB_PORT": str(free_port()),
        "STREAM_DETECTOR_STATE_DIR": str(tmp_path / "state"),
    }
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "stream_detector.app", "worker", "-l", "info"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
    )
    try:
        yield topics
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_relay_moves_records_through_real_kafka_and_counts_in_redis(
    kafka_broker: ServiceHandle, redis_client: Any, relay_worker: dict[str, str]
) -> None:
    bootstrap = _bootstrap(kafka_broker)
    producer = Producer({"bootstrap.servers": bootstrap})
    points = [{"series": "AAPL", "timestamp": f"2015-02-26T21:{m:02d}:00", "value": m}
              for m in range(5)]
    for point in points:
        producer.produce(relay_worker["input"], key=b"AAPL", value=json.dumps(point).encode())
    batch = [{"store": 1, "item": 7, "date": f"2017-01-0{d}", "sales": d} for d in (1, 2)]
    producer.produce(relay_worker["input"], key=b"1/7", value=json.dumps(batch).encode())
    producer.produce(relay_worker["input"], key=b"bad", value=b"{not json")
    assert producer.flush(30) == 0

    out = _consume(bootstrap, relay_worker["output"], expected=7, timeout=90)
    assert len(out) == 7
    by_key: dict[bytes, list[Any]] = {}
    for key, value in out:
        by_key.setdefault(key, []).append(value)
    assert [r["value"] for r in by_key[b"AAPL"]] == [0, 1, 2, 3, 4]  # per-key order kept
    assert [r["sales"] for r in by_key[b"1/7"]] == [1, 2]
    assert all(r["_source"]["topic"] == relay_worker["input"] for r in by_key[b"AAPL"])

    dead = _consume(bootstrap, relay_worker["dead"], expected=1, timeout=30)
    assert len(dead) == 1
    assert dead[0][1]["reason"] == "malformed_json"

    deadline = time.monotonic() + 10
    while redis_client.get(RELAY_COUNT_PREFIX + "1/7") != b"2" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert redis_client.get(RELAY_COUNT_PREFIX + "AAPL") == b"5"
    assert redis_client.get(RELAY_COUNT_PREFIX + "1/7") == b"2"


def test_redis_round_trip(redis_client: Any) -> None:
    redis_client.hset("sd:test", mapping={"a": "1.5", "b": "2"})
    assert redis_client.hgetall("sd:test") == {b"a": b"1.5", b"b": b"2"}
