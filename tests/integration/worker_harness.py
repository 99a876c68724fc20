"""Run the real worker in its own process against the session's broker and redis-server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer

from stream_detector.services.process import ServiceHandle, free_port


def bootstrap(handle: ServiceHandle) -> str:
    return handle.url.split("://", 1)[1]


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    topics: dict[str, str]
    web: str
    log: Path
    env: dict[str, str]

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.web + path, timeout=5) as r:  # noqa: S310
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def health(self) -> dict[str, Any]:
        code, body = self.get("/health")
        assert code == 200, body
        result: dict[str, Any] = json.loads(body)
        return result

    def metric(self, name: str, labels: str = "") -> float:
        """Sum of a Prometheus series' samples (``labels``: a substring such as 'kind="x"')."""
        total = 0.0
        for line in self.get("/metrics")[1].decode().splitlines():
            if line.startswith(name) and labels in line and not line.startswith("#"):
                head, _, value = line.rpartition(" ")
                if head.split("{")[0] == name:
                    total += float(value)
        return total

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log.read_text()[-3000:]}")
            try:
                if self.get("/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"worker not ready: {self.log.read_text()[-3000:]}")


def topic_names(prefix: str = "t") -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {"input": f"{prefix}-in-{suffix}", "output": f"{prefix}-out-{suffix}",
            "dead": f"{prefix}-dlq-{suffix}", "app_id": f"sd-test-{suffix}"}


def spawn_worker(
    kafka: ServiceHandle, redis: ServiceHandle, models: list[Path], tmp: Path,
    topics: dict[str, str], partitions: int = 2, extra_env: dict[str, str] | None = None,
    port: int | None = None,
) -> Worker:
    """Start a worker process (not waiting for it); ``stop_worker`` ends it."""
    port = port or free_port()
    repo = str(Path(__file__).resolve().parents[2])
    env = {
        **os.environ,
        # the worker process imports this checkout (not whatever is installed editable)
        "PYTHONPATH": os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p),
        "STREAM_DETECTOR_KAFKA_URL": kafka.url,
        "STREAM_DETECTOR_REDIS_URL": redis.url,
        "STREAM_DETECTOR_APP_ID": topics["app_id"],
        "STREAM_DETECTOR_TOPIC_PARTITIONS": str(partitions),
        "STREAM_DETECTOR_WEB_PORT": str(port),
        "STREAM_DETECTOR_STATE_DIR": str(tmp / "state"),
        "STREAM_DETECTOR_PROVIDER": "cpu",
        **(extra_env or {}),
    }
    args = [sys.executable, "-m", "stream_detector", "worker",
            "--input", topics["input"], "--output", topics["output"],
            "--dead-letter", topics["dead"]]
    for m in models:
        args += ["--model", str(m)]
    log_path = tmp / f"worker-{port}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    return Worker(proc, topics, f"http://127.0.0.1:{port}", log_path, env)


def stop_worker(worker: Worker, kill: bool = False) -> None:
    """SIGKILL (``kill``) or SIGTERM the worker and reap it."""
    if worker.proc.poll() is not None:
        return
    if kill:
        worker.proc.kill()
    else:
        worker.proc.terminate()
    try:
        worker.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.proc.kill()
        worker.proc.wait()


@contextmanager
def run_worker(
    kafka: ServiceHandle, redis: ServiceHandle, models: list[Path], tmp: Path,
    topics: dict[str, str] | None = None, partitions: int = 2,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Worker]:
    worker = spawn_worker(kafka, redis, models, tmp, topics or topic_names(), partitions,
                          extra_env)
    try:
        worker.wait_ready()
        yield worker
    finally:
        stop_worker(worker)


def produce(kafka: ServiceHandle, topic: str, messages: list[tuple[bytes | None, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap(kafka), "partitioner": "murmur2_random",
                         "linger.ms": 5, "message.max.bytes": 2_000_000})
    for key, value in messages:
        producer.produce(topic, key=key, value=value)
        producer.poll(0)
    assert producer.flush(30) == 0


def consume(kafka: ServiceHandle, topic: str, expected: int, timeout: float,
            settle: float = 0.0) -> list[dict[str, Any]]:
    """Read ``expected`` JSON messages (then ``settle`` seconds more, to catch extras)."""
    consumer = Consumer({"bootstrap.servers": bootstrap(kafka), "group.id": f"t-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    settle_until: float | None = None
    try:
        while time.monotonic() < deadline:
            if len(got) >= expected:
                settle_until = settle_until or time.monotonic() + settle
                if time.monotonic() >= settle_until:
                    break
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            got.append(json.loads(msg.value()))
    finally:
        consumer.close()
    return got
