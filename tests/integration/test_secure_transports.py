"""The pipeline through Kafka SASL_SSL and Redis TLS with ACL users, configured only by env.

    README example (bash, as written; hosts, ports, paths swapped for the test services')
      -> thresholds publish (Redis TLS, ACL user limited to sd:*)
      -> worker (Faust/aiokafka SASL_SSL SCRAM-SHA-512; topic admin over confluent-kafka)
      -> replay CSV (confluent-kafka producer) -> anomaly events
      -> thresholds set, picked up live (pub/sub over TLS) -> the next spike's event carries it
      -> alerts --dry-run (confluent-kafka consumer; incidents kept in Redis under sd:alerts:)
      -> tail --json (another confluent-kafka consumer)

Every component runs as ``python -m stream_detector`` with no URL or credential on its
command line: the environment is all it gets. The broker has no plaintext client listener and
redis-server no plaintext port, so nothing can pass by falling back.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer
from model_fixtures import window_mean_model, write_registry_model
from secure_env import clean_environ, cli, event_lines, readme_environment
from secure_services import REDIS_ADMIN, REDIS_ADMIN_PASSWORD, SCRAM_PASSWORD, Pki
from worker_harness import Worker, topic_names

from stream_detector.services.process import ServiceHandle, free_port
from stream_detector.settings import Settings

# offset: about 3x the median raw score, as train sets it (as tests/integration/test_worker.py)
DETECTION = {"halflife": 30, "warmup": 20, "suppress": 5, "offset": 5.0}
SPIKES = {60: 40.0, 120: -40.0}  # first replay
LIVE_SPIKE = 190  # second replay, after the live threshold change
LIVE_THRESHOLD = 2.5


def stamp(i: int) -> str:
    return f"2026-01-01 {i // 60:02d}:{i % 60:02d}:00"


def write_csv(path: Path, start: int, stop: int, spikes: dict[int, float]) -> Path:
    """A NAB-style series (timestamp,value): noise around 100 plus ``spikes``."""
    import numpy as np

    rng = np.random.default_rng(start)
    rows = ["timestamp,value"]
    for i in range(start, stop):
        value = 100.0 + float(rng.normal(0.0, 2.0)) + spikes.get(i, 0.0)
        rows.append(f"{stamp(i)},{value:.3f}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")
    return path


def offline_ends(model: Path, csv: Path) -> set[str]:
    """Event ids of the windows the offline pipeline alerts on (what the worker must emit)."""
    from stream_detector.files.batch import load_runtime, score_records
    from stream_detector.files.history import load_source

    runtime = load_runtime(model, "cpu")
    rows = [row for _, row in score_records(runtime, list(load_source(csv).records))]
    return {row.event_id for row in rows if row.alert}


def read_events(settings: Settings, topic: str, want: set[str], timeout: float
                ) -> dict[str, dict[str, Any]]:
    """Anomaly events by id and by window end, read over SASL_SSL until every event id in
    ``want`` (or window end) is seen."""
    consumer = Consumer(settings.confluent_config(**{
        "group.id": f"secure-test-{time.monotonic_ns()}", "auto.offset.reset": "earliest",
        "enable.auto.commit": False}))
    consumer.subscribe([topic])
    got: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    try:
        while not want <= got.keys() and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                event = json.loads(msg.value())
                got[event["window_end"]] = got[event["event_id"]] = event
    finally:
        consumer.close()
    return got


@pytest.fixture()
def secure_env(secure_kafka: ServiceHandle, secure_redis: ServiceHandle, secure_pki: Pki,
               tmp_path: Path) -> dict[str, str]:
    """The README example's settings plus this run's topics, state dir and web port."""
    topics = topic_names("secure")
    return {
        **clean_environ(),
        **readme_environment(secure_kafka, secure_redis, secure_pki, tmp_path),
        "STREAM_DETECTOR_INPUT_TOPIC": topics["input"],
        "STREAM_DETECTOR_OUTPUT_TOPIC": topics["output"],
        "STREAM_DETECTOR_DEAD_LETTER_TOPIC": topics["dead"],
        "STREAM_DETECTOR_APP_ID": topics["app_id"],
        "STREAM_DETECTOR_TOPIC_PARTITIONS": "2",
        "STREAM_DETECTOR_STATE_DIR": str(tmp_path / "state"),
        "STREAM_DETECTOR_WEB_PORT": str(free_port()),
        "STREAM_DETECTOR_PROVIDER": "cpu",
    }


def start_worker(env: dict[str, str], registry: Path, log: Path) -> Worker:
    import subprocess
    import sys

    sink = log.open("wb")
    proc = subprocess.Popen(  # noqa: S603 - our interpreter and module
        [sys.executable, "-m", "stream_detector", "worker", "--model", str(registry)],
        env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=log.parent)
    sink.close()
    return Worker(proc, {}, f"http://127.0.0.1:{env['STREAM_DETECTOR_WEB_PORT']}", log, env)


def stop_worker(worker: Worker) -> None:
    worker.proc.terminate()
    try:
        worker.proc.wait(timeout=30)
    except Exception:  # noqa: BLE001 - then by force
        worker.proc.kill()
        worker.proc.wait()


def test_pipeline_end_to_end_over_sasl_ssl_and_redis_tls(
    secure_env: dict[str, str], secure_redis: ServiceHandle, secure_pki: Pki, tmp_path: Path
) -> None:
    env = secure_env
    settings = Settings(**{k[len("STREAM_DETECTOR_"):].lower(): v for k, v in env.items()
                           if k.startswith("STREAM_DETECTOR_")})
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-512"
    assert settings.redis_url.startswith("rediss://")
    import redis

    admin = redis.Redis.from_url(secure_redis.url, username=REDIS_ADMIN,
                                 password=REDIS_ADMIN_PASSWORD, ssl_ca_certs=str(secure_pki.ca))
    admin.acl_log_reset()  # the session's redis-server also served the refusal tests' bad logins
    model = write_registry_model(tmp_path / "registry" / "tiny" / "1",
                                 window_mean_model(8, 1, last_k=1), window=8,
                                 features=["value"], threshold=4.0, detection=DETECTION)

    published = cli(env, "thresholds", "publish", "--model", str(model))
    assert published.returncode == 0, published.stderr

    worker = start_worker(env, model.parent.parent, tmp_path / "worker.log")
    try:
        worker.wait_ready(timeout=120)
        first = write_csv(tmp_path / "first" / "cpu.csv", 0, 160, SPIKES)
        expected = offline_ends(model, first)
        sent = cli(env, "replay", str(first), "--no-progress")
        assert sent.returncode == 0, sent.stderr
        assert "sent 160 series records of 1 key(s)" in sent.stdout
        events = read_events(settings, env["STREAM_DETECTOR_OUTPUT_TOPIC"], expected, 60)
        ids = {e["event_id"] for e in events.values()}
        assert ids == expected, sorted(events)  # exactly what the offline path finds
        spikes = {stamp(i).replace(" ", "T") for i in SPIKES} & events.keys()
        assert spikes, sorted(events)  # the injected spikes are among them
        for end in spikes:
            assert events[end]["threshold"] == 4.0
            assert events[end]["threshold_source"]["scope"] == "default"  # from Redis

        changed = cli(env, "thresholds", "set", str(model), "cpu", str(LIVE_THRESHOLD),
                      "--by", "secure-test", "--new-key")  # the card lists no keys
        assert changed.returncode == 0, changed.stderr
        time.sleep(2.0)  # pub/sub delivers within a second; the worker is never restarted
        second = write_csv(tmp_path / "second" / "cpu.csv", 160, 220, {LIVE_SPIKE: 40.0})
        assert cli(env, "replay", str(second), "--no-progress").returncode == 0
        live_end = stamp(LIVE_SPIKE).replace(" ", "T")
        events = read_events(settings, env["STREAM_DETECTOR_OUTPUT_TOPIC"], {live_end}, 60)
        assert live_end in events, sorted(events)
        assert events[live_end]["threshold"] == LIVE_THRESHOLD
        assert events[live_end]["threshold_source"]["set_by"] == "secure-test"
        status, health = worker.get("/health")
        assert status == 200 and json.loads(health)["status"] == "ok"
    finally:
        stop_worker(worker)

    group = "secure-alerts"
    alerts = cli(env, "alerts", "--dry-run", "--from-beginning", "--group", group,
                 "--suppress", "0.5", "--exit-when-idle", "3", "--max-seconds", "60")
    assert alerts.returncode == 0, alerts.stderr
    payloads = event_lines(alerts.stdout)
    assert len(payloads) >= 2 and all("cpu" in json.dumps(p) for p in payloads)
    assert "incidents opened" in alerts.stderr
    assert "not saved" not in alerts.stderr  # the incident store worked under the ACL
    tail = cli(env, "tail", "--json", "--from-beginning", "--limit", "3",
               "--exit-when-idle", "10")
    assert tail.returncode == 0, tail.stderr
    assert {e["key"] for e in event_lines(tail.stdout)} == {"cpu"}
    assert len(event_lines(tail.stdout)) == 3
    for text in (alerts.stdout, alerts.stderr, tail.stdout, worker.log.read_text()):
        assert SCRAM_PASSWORD not in text  # secrets never reach output or logs

    try:  # no client was denied a key, channel or command by the sd:* ACL user
        assert admin.acl_log() == []
        assert admin.hget("sd:threshold:tiny:1", "cpu") is not None
    finally:
        admin.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_demo_runs_through_the_secured_services(
    secure_env: dict[str, str], secure_kafka: ServiceHandle, secure_redis: ServiceHandle,
    tmp_path: Path,
) -> None:
    """``demo --kafka/--redis`` (thresholds, topic admin, worker, replay, collector) with the
    README's security settings from the environment; only the URLs are given as options."""
    env = {k: v for k, v in secure_env.items()
           if k not in ("STREAM_DETECTOR_INPUT_TOPIC", "STREAM_DETECTOR_OUTPUT_TOPIC",
                        "STREAM_DETECTOR_DEAD_LETTER_TOPIC", "STREAM_DETECTOR_APP_ID")}
    started = time.monotonic()
    done = cli(env, "demo", "--kind", "series", "--duration", "5", "--no-live",
               "--kafka", env["STREAM_DETECTOR_KAFKA_URL"],
               "--redis", env["STREAM_DETECTOR_REDIS_URL"], "--out", str(tmp_path / "demo"),
               timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "records: 4,032 series records" in done.stdout, done.stdout
    assert ": same)" in done.stdout  # the worker's events equal the offline pipeline's
    assert done.stdout.strip().splitlines()[-1].startswith("report: ")
    print(f"secure demo: {time.monotonic() - started:.0f} s")
