"""Health that tells the truth, and thresholds that survive Redis (issue 12, items 6 and 7).

A redis-server and a Kafka broker of the test's own are frozen (SIGSTOP), killed and
restarted under a running worker:

- a frozen Redis shows as ``degraded`` within 2 s (timeouts are not contact);
- a Redis restarted with its append-only file keeps the thresholds (``/health`` says
  ``redis``); one restarted empty is reported as the card fallback (``card``);
- ``/health`` covers Kafka (connected, assigned partitions, consumer lag, seconds since the
  last fetch), turns ``degraded`` during a broker outage, and the connection errors of the
  outage are rate-limited in the log.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from model_fixtures import window_mean_model, write_registry_model
from worker_harness import Worker, consume, produce, run_worker, topic_names

from schemas.card import ModelCard
from stream_detector.core.registry import read_card
from stream_detector.core.thresholds import ThresholdStore
from stream_detector.services.kafka import KafkaBroker
from stream_detector.services.process import ServiceHandle, stop_handle
from stream_detector.services.redis import RedisServer
from stream_detector.settings import Settings

pytestmark = pytest.mark.slow
RAW = {"normalise": False, "warmup": 0, "suppress": 4}


def spikes(start: int, count: int) -> list[tuple[bytes | None, bytes]]:
    return [(b"cpu", json.dumps({
        "kind": "series", "series": "cpu", "value": 100.0 if i % 10 == 9 else 10.0,
        "timestamp": f"2026-01-01T00:00:00.{i:06d}"}).encode())
        for i in range(start, start + count)]


def wait(worker: Worker, condition: Callable[[dict[str, Any]], bool], timeout: float,
         step: float = 0.05) -> float:
    """Seconds until ``/health`` meets ``condition``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if condition(worker.health()):
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(step)
    raise AssertionError(f"/health never met the condition: {worker.health()}")


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    return write_registry_model(tmp_path / "registry" / "cpu" / "1",
                                window_mean_model(4, 1, last_k=1), name="cpu", window=4,
                                features=["value"], threshold=5.0, detection=RAW)


@pytest.fixture()
def own_redis(tmp_path: Path) -> Iterator[list[ServiceHandle]]:
    """A persistent redis-server of this test's own (the list's handle may be replaced)."""
    handles = [RedisServer(persistent=True).start(data_dir=tmp_path / "redis")]
    yield handles
    for h in handles:
        stop_handle(h)


def thresholds_of(health: dict[str, Any]) -> str:
    source: str = health["models"][0]["thresholds"]
    return source


def test_redis_freeze_and_restarts_are_reported_truthfully(
    kafka_broker: ServiceHandle, own_redis: list[ServiceHandle], model: Path, tmp_path: Path
) -> None:
    handle = own_redis[0]
    card: ModelCard = read_card(model)
    client = redis.Redis.from_url(handle.url)
    ThresholdStore(client).publish_from_card(card)
    client.close()
    with run_worker(kafka_broker, handle, [model], tmp_path) as w:
        wait(w, lambda h: h["status"] == "ok" and thresholds_of(h) == "redis", 30)

        os.kill(handle.pid, signal.SIGSTOP)  # frozen: sockets open, nothing answers
        try:
            frozen = wait(w, lambda h: h["status"] == "degraded"
                          and h["redis"] == "unreachable", 10)
        finally:
            os.kill(handle.pid, signal.SIGCONT)
        thawed = wait(w, lambda h: h["status"] == "ok", 30)

        # every reconnection reloads the hash: ok after degraded means Redis was read again
        time.sleep(1.5)  # the append-only file is fsynced every second
        os.kill(handle.pid, signal.SIGKILL)
        stop_handle(handle)
        wait(w, lambda h: h["status"] == "degraded", 10)
        handle = RedisServer(persistent=True).start(data_dir=tmp_path / "redis",
                                                    port=handle.port)
        own_redis.append(handle)
        persisted = wait(w, lambda h: h["status"] == "ok", 30)
        assert thresholds_of(w.health()) == "redis"  # kept across the restart

        # a Redis that lost everything (no persistence): the card's values, and /health says so
        stop_handle(handle)
        wait(w, lambda h: h["status"] == "degraded", 10)
        handle = RedisServer(persistent=False).start(data_dir=tmp_path / "redis-empty",
                                                     port=handle.port)
        own_redis.append(handle)
        fallback = wait(w, lambda h: h["status"] == "ok", 30)
        assert thresholds_of(w.health()) == "card"
    log = w.log.read_text()
    print(f"redis frozen -> degraded in {frozen:.2f} s; thawed -> ok in {thawed:.2f} s; "
          f"persistent restart -> ok with Redis thresholds in {persisted:.2f} s; "
          f"empty restart -> card fallback reported in {fallback:.2f} s")
    assert frozen < 2.0
    assert "are gone from Redis" in log


def test_kafka_outage_shows_in_health_and_its_errors_are_rate_limited(
    redis_server: ServiceHandle, model: Path, tmp_path: Path
) -> None:
    broker_dir = tmp_path / "kafka"
    kafka = KafkaBroker(Settings().cache_dir).start(data_dir=broker_dir)
    topics = topic_names("kafka-health")
    try:
        with run_worker(kafka, redis_server, [model], tmp_path, topics=topics) as w:
            before = wait(w, lambda h: h["kafka"]["assigned_partitions"] == [0, 1]
                          and h["kafka"]["seconds_since_fetch"] is not None, 30)
            produce(kafka, topics["input"], spikes(0, 40))
            assert len(consume(kafka, topics["output"], 4, 60)) == 4
            healthy = wait(w, lambda h: h["kafka"]["consumer_lag"] == 0
                           and h["status"] == "ok", 30)
            lines_before = len(w.log.read_text().splitlines())

            os.kill(kafka.pid, signal.SIGKILL)
            stop_handle(kafka)
            killed = time.monotonic()
            degraded = wait(w, lambda h: h["status"] == "degraded"
                            and h["kafka"]["status"] == "degraded"
                            and h["kafka"]["consumer_lag"] is None, 30)  # unknown, not 0
            time.sleep(max(0.0, 20 - (time.monotonic() - killed)))
            outage_lines = w.log.read_text().splitlines()[lines_before:]
            metrics = w.get("/metrics")[1].decode()

            kafka = KafkaBroker(Settings().cache_dir).start(data_dir=broker_dir,
                                                            port=kafka.port)
            back = wait(w, lambda h: h["status"] == "ok" and h["kafka"]["connected"], 90)
            produce(kafka, topics["input"], spikes(40, 20))
            after = consume(kafka, topics["output"], 6, 90)
    finally:
        stop_handle(kafka)
    print(f"kafka killed -> degraded in {degraded:.2f} s; {len(outage_lines)} log lines in "
          f"20 s of outage; restarted broker -> ok in {back:.1f} s "
          f"(assigned after start {before:.1f} s, lag 0 after {healthy:.1f} s)")
    assert degraded < 15.0
    assert len(outage_lines) < 60, "\n".join(outage_lines[-40:])  # was ~100 lines a second
    assert "stream_detector_kafka_connected 0.0" in metrics
    assert len(after) >= 6  # scoring resumed once the broker was back
