"""A 500-key sales panel with per-key thresholds in Redis: changing one key's threshold
changes that key's detections within one second, without a restart, and without a Redis
call per record."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from model_fixtures import window_mean_model, write_registry_model
from worker_harness import consume, produce, run_worker

from stream_detector.core.thresholds import ThresholdEntry, ThresholdStore
from stream_detector.services.process import ServiceHandle

pytestmark = pytest.mark.slow

KEYS = [(store, item) for store in range(1, 11) for item in range(1, 51)]  # 500 keys
NEVER = 1e9


def rows(days: range, seed: int) -> list[tuple[bytes, bytes]]:
    rng = np.random.default_rng(seed)
    out = []
    for d in days:
        day = (date(2017, 1, 1) + timedelta(days=d)).isoformat()
        for store, item in KEYS:
            sales = float(rng.poisson(20 + store + item % 7))
            out.append((f"{store}/{item}".encode(), json.dumps(
                {"kind": "sales", "date": day, "store": store, "item": item, "sales": sales}
            ).encode()))
    return out


def hash_reads(client: redis.Redis) -> int:
    stats: dict[str, Any] = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("hget", "hgetall",
                                                                               "hmget", "get"))


def test_one_keys_threshold_change_reaches_the_worker_within_a_second(
    kafka_broker: ServiceHandle, redis_server: ServiceHandle, redis_client: Any, tmp_path: Path
) -> None:
    model = write_registry_model(
        tmp_path / "registry" / "sales" / "1", window_mean_model(7, 1), name="sales",
        window=7, features=["sales"], record_kind="sales", threshold=NEVER,
        detection={"normalise": False, "warmup": 0, "suppress": 1},
    )
    store = ThresholdStore(redis_client)
    store.set_many("sales", "1", {f"{s}/{i}": ThresholdEntry(value=NEVER, method="manual")
                                  for s, i in KEYS})

    with run_worker(kafka_broker, redis_server, [model.parent.parent], tmp_path,
                    partitions=4) as worker:
        produce(kafka_broker, worker.topics["input"], rows(range(0, 10), seed=1))
        quiet = consume(kafka_broker, worker.topics["output"], 1, 15)
        assert quiet == []  # every key's threshold is out of reach

        reads_before = hash_reads(redis_client)
        store.set("sales", "1", "3/7", 0.0, method="manual")  # key 3/7 now alerts on anything
        time.sleep(1.0)
        produce(kafka_broker, worker.topics["input"], rows(range(10, 14), seed=2))
        events = consume(kafka_broker, worker.topics["output"], 4, 60, settle=3)
        reads_after = hash_reads(redis_client)

    assert {e["key"] for e in events} == {"3/7"}
    assert sorted(e["window_end"] for e in events) == [
        (date(2017, 1, 1) + timedelta(days=d)).isoformat() for d in range(10, 14)]
    assert all(e["threshold"] == 0.0 and e["threshold_source"]["scope"] == "key" for e in events)
    # 2,000 records were scored after the change; the cache fetched the change, not per record
    assert reads_after - reads_before < 20
