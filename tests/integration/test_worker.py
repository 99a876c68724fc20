"""The Faust worker end to end on the real broker and redis-server.

A series with injected spikes goes in (single records, lists of records, and bad messages
of every kind between them); the anomalies that come out must be exactly those the
offline pipeline computes on the same records, and every bad message must reach the
dead-letter topic with its reason while the records around it are still scored.
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from model_fixtures import window_mean_model, write_registry_model
from worker_harness import bootstrap, consume, produce, run_worker

from schemas.events import SourceRef
from schemas.records import MAX_MESSAGE_BYTES, parse_message
from stream_detector.core.key_state import DictStore
from stream_detector.core.model_runtime import ModelRuntime
from stream_detector.core.pipeline import Pipeline
from stream_detector.core.registry import load_model
from stream_detector.services.process import ServiceHandle
from stream_detector.worker.threshold_cache import ThresholdCache

# offset: about 3x the median raw score, as train sets it
DETECTION = {"halflife": 30, "warmup": 20, "suppress": 5, "offset": 5.0}
BAD = {
    "malformed_json": b"{oops",
    "wrong_type": b'{"kind":"series","series":"cpu","timestamp":"2026-01-01T00:00:00","value":"x"}',
    "non_finite": b'{"kind":"series","series":"cpu","timestamp":"2026-01-01T00:00:00","value":NaN}',
    "unknown_kind": b'{"kind":"weather","station":"x","temperature":3}',
    "mixed_keys": (b'[{"kind":"series","series":"a","timestamp":"2026-01-01T00:00:00","value":1},'
                   b'{"kind":"series","series":"b","timestamp":"2026-01-01T00:00:00","value":1}]'),
    "oversize": b"[" + b" " * MAX_MESSAGE_BYTES + b"]",
}


def series_records(key: str, n: int, spikes: dict[int, float], seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    values = rng.normal(100.0, 2.0, n)
    for at, jump in spikes.items():
        values[at] += jump
    return [{"kind": "series", "series": key, "value": round(float(v), 3),
             "timestamp": f"2026-01-01T{i // 60:02d}:{i % 60:02d}:00"}
            for i, v in enumerate(values)]


def offline_events(model_dir: Path, records: list[dict[str, Any]]) -> list[Any]:
    loaded = load_model(model_dir, preference="cpu")
    cache = ThresholdCache(loaded.card, client=None)  # type: ignore[arg-type]  # card values
    pipeline = Pipeline([ModelRuntime(loaded, cache.lookup)], DictStore())
    parsed = [r for rec in records for r in parse_message(json.dumps(rec).encode())]
    pending = pipeline.ingest(parsed, SourceRef(topic="offline"))
    scored = pipeline.decide(pending, Pipeline.score(pending))
    return [s.event for s in scored if s.event is not None]


@pytest.mark.parametrize("bulk", ["true", "false"], ids=["bulk-delivery", "faust-stream"])
def test_worker_matches_offline_and_dead_letters_every_bad_message(
    kafka_broker: ServiceHandle, redis_server: ServiceHandle, redis_client: Any, tmp_path: Path,
    bulk: str,
) -> None:
    model = write_registry_model(
        tmp_path / "registry" / "tiny" / "1", window_mean_model(8, 1, last_k=1),
        window=8, features=["value"], threshold=4.0, detection=DETECTION,
    )
    cpu = series_records("cpu", 160, {60: 40.0, 120: -40.0}, seed=1)
    mem = series_records("mem", 160, {90: 35.0}, seed=2)
    offline = offline_events(model, cpu) + offline_events(model, mem)
    expected = {(e.key, e.window_end): e for e in offline}
    assert {k for k, _ in expected} == {"cpu", "mem"}  # the spikes are detectable offline

    messages: list[tuple[bytes | None, bytes]] = []
    for i in range(0, 160, 10):  # cpu one record per message, mem ten records per message
        messages += [(b"cpu", json.dumps(r).encode()) for r in cpu[i : i + 10]]
        messages.append((b"mem", json.dumps(mem[i : i + 10]).encode()))
        if i // 10 < len(BAD):
            messages.append((b"cpu", list(BAD.values())[i // 10]))

    with run_worker(kafka_broker, redis_server, [model.parent.parent], tmp_path,
                    extra_env={"STREAM_DETECTOR_LOG_FORMAT": "json",
                               "STREAM_DETECTOR_BULK_DELIVERY": bulk}) as worker:
        produce(kafka_broker, worker.topics["input"], messages)
        events = consume(kafka_broker, worker.topics["output"], len(expected), 60, settle=2)
        dead = consume(kafka_broker, worker.topics["dead"], len(BAD), 30)
        status, health = worker.get("/health")
        metrics = worker.get("/metrics")[1].decode()
        # Prometheus' name[] filter: only the samples asked for (the benchmarks poll this)
        only = worker.get("/metrics?name%5B%5D=stream_detector_records_in_total"
                          "&name%5B%5D=stream_detector_degraded")[1].decode()

    logs = [json.loads(line) for line in worker.log.read_text().splitlines()
            if line.startswith("{")]
    assert any(entry["logger"] == "stream_detector.worker.models" and "model tiny version 1" in
               entry["message"] for entry in logs)  # structured logs, one JSON object a line
    delivery = [e["message"] for e in logs if "delivery:" in e["message"]]
    assert delivery == [("bulk delivery: " if bulk == "true" else "Faust stream delivery: ")
                        + worker.topics["input"]], delivery
    got = {(e["key"], e["window_end"]): e for e in events}
    assert got.keys() == expected.keys()
    for k, e in got.items():
        assert abs(e["score"] - expected[k].score) <= 1e-5
        assert abs(e["raw_score"] - expected[k].raw_score) <= 1e-5
        assert e["event_id"] == expected[k].event_id
        assert e["provider"] == "CPUExecutionProvider"
        assert e["model"]["version"] == "1" and e["source"]["offset"] is not None
    assert sorted(d["reason"] for d in dead) == sorted(BAD)
    assert all(d["original"] for d in dead)
    assert all(d["original_key"] == base64.b64encode(b"cpu").decode() for d in dead)
    oversize = next(d for d in dead if d["reason"] == "oversize")
    assert oversize["truncated"] and oversize["original_size"] == len(BAD["oversize"])
    assert status == 200 and json.loads(health)["status"] == "ok"
    assert 'stream_detector_invalid_records_total{reason="oversize"} 1.0' in metrics
    assert 'stream_detector_windows_scored_total{model="tiny"}' in metrics
    assert 'stream_detector_provider_info{provider="CPUExecutionProvider"} 1.0' in metrics
    samples = [line for line in only.splitlines() if not line.startswith("#")]
    assert {line.partition("{")[0].partition(" ")[0] for line in samples} == {
        "stream_detector_records_in_total", "stream_detector_degraded"}
    whole = {line.rpartition(" ")[0] for line in metrics.splitlines()}
    assert {line.rpartition(" ")[0] for line in samples} <= whole  # its series, no others


def test_records_of_an_aborted_transaction_are_not_scored(
    kafka_broker: ServiceHandle, redis_server: ServiceHandle, tmp_path: Path
) -> None:
    """A producer writing in transactions: the records of the one it aborted never existed
    for other readers (read_committed), and the worker scored them (Faust reads
    read_uncommitted): events for spikes no consumer of the topic could see."""
    from confluent_kafka import Producer

    model = write_registry_model(
        tmp_path / "registry" / "tiny" / "1", window_mean_model(4, 1, last_k=1),
        window=4, features=["value"], threshold=5.0,
        detection={"normalise": False, "warmup": 0, "suppress": 4},
    )
    spike = range(9, 120, 10)  # flat 10s, a 100 every 10th record: one alert each
    records = [{"kind": "series", "series": "cpu", "value": 100.0 if i in spike else 10.0,
                "timestamp": f"2026-01-01T{i // 60:02d}:{i % 60:02d}:00"} for i in range(120)]
    aborted = range(40, 80)  # holds the spikes at 49, 59, 69 and 79
    with run_worker(kafka_broker, redis_server, [model.parent.parent], tmp_path,
                    partitions=1) as worker:
        producer = Producer({"bootstrap.servers": bootstrap(kafka_broker),
                             "transactional.id": f"tx-{uuid.uuid4()}"})
        producer.init_transactions(30)
        for part in (range(0, 40), aborted, range(80, 120)):
            producer.begin_transaction()
            for i in part:
                producer.produce(worker.topics["input"], key=b"cpu",
                                 value=json.dumps(records[i]).encode())
            producer.flush(30)
            end = producer.abort_transaction if part is aborted else producer.commit_transaction
            end(30)
        events = consume(kafka_broker, worker.topics["output"], 8, 60, settle=3)
    seen = sorted(e["window_end"] for e in events)
    assert seen == sorted(records[i]["timestamp"] for i in spike if i not in aborted), seen
