"""Scale-out: two workers sharing a 4-partition topic (with a rebalance in the middle)
together emit the anomaly set one offline pass computes."""

from __future__ import annotations

import json
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
