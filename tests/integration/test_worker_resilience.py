"""The worker rides out a Redis outage (degraded, still scoring, recovers by itself) and picks up
a model version dropped into its registry without a restart."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from model_fixtures import window_mean_model, write_registry_model
from worker_harness import Worker, consume, produce, run_worker, topic_names

from stream_detector.services.process import ServiceHandle, stop_handle
from stream_detector.services.redis import RedisServer

pytestmark = pytest.mark.slow
RAW = {"normalise": False, "warmup": 0, "suppress": 4}  # one alert per spike


def spikes(start: int, count: int, every: int = 10) -> list[tuple[bytes, bytes]]:
    """Flat 10s with a 100 every ``every`` records: one raw-score alert per spike."""
    out = []
    for i in range(start, start + count):
        value = 100.0 if i % every == every - 1 else 10.0
        out.append((b"cpu", json.dumps({"kind": "series", "series": "cpu", "value": value,
                                        "timestamp": f"2026-01-01T00:00:00.{i:06d}"}).encode()))
    return out


def wait_health(worker: Worker, status: str, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        code, body = worker.get("/health")
        if code == 200 and json.loads(body)["status"] == status:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"health never became {status!r}: {worker.get('/health')}")


def test_redis_outage_degrades_but_scores_and_new_versions_hot_swap(
    kafka_broker: ServiceHandle, tmp_path: Path
) -> None:
    registry = tmp_path / "registry" / "cpu"
    write_registry_model(registry / "1", window_mean_model(4, 1, last_k=1), name="cpu",
                         window=4, features=["value"], threshold=5.0, detection=RAW)
    redis_handle = RedisServer().start()
    topics = topic_names("resilience")
    try:
        with run_worker(kafka_broker, redis_handle, [registry], tmp_path, topics=topics) as w:
            produce(kafka_broker, topics["input"], spikes(0, 40))
            first = consume(kafka_broker, topics["output"], 4, 60, settle=1)
            assert len(first) == 4 and {e["model"]["version"] for e in first} == {"1"}

            stop_handle(redis_handle)
            wait_health(w, "degraded", 20)
            produce(kafka_broker, topics["input"], spikes(40, 40))
            during = consume(kafka_broker, topics["output"], 8, 60, settle=1)
            assert len(during) == 8  # thresholds from the cache: scoring never stopped

            redis_handle = RedisServer().start(port=redis_handle.port)
            assert redis_handle.url == w.env["STREAM_DETECTOR_REDIS_URL"]
            recovered_in = wait_health(w, "ok", 30)
            assert recovered_in < 30

            write_registry_model(registry / "2", window_mean_model(4, 1, last_k=1), name="cpu",
                                 version="2", window=4, features=["value"], threshold=5.0,
                                 detection=RAW)
            time.sleep(5)  # the registry is polled every 2 s
            produce(kafka_broker, topics["input"], spikes(80, 40))
            after: list[dict[str, Any]] = consume(kafka_broker, topics["output"], 12, 60,
                                                  settle=1)
            metrics = w.get("/metrics")[1].decode()
    finally:
        stop_handle(redis_handle)
        shutil.rmtree(redis_handle.data_dir, ignore_errors=True)
    newest = [e for e in after if e["window_end"] > "2026-01-01T00:00:00.000080"]
    assert len(newest) == 4 and {e["model"]["version"] for e in newest} == {"2"}
    assert 'stream_detector_model_info{model="cpu"' in metrics
