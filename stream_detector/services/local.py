"""Local Kafka broker and redis-server on demand, for people (CLI), tests and the demo.

The broker is :mod:`stream_detector.services.kafka`'s, the Redis
:mod:`stream_detector.services.redis`'s, and what both share (spawning, readiness, stopping)
:mod:`stream_detector.services.process`'s. This module holds what ties them together: the
state file through which ``stream-detector services start``, ``status`` and ``stop`` find the
detached services, and :func:`local_services` (both, for the length of a ``with`` block).
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from stream_detector.services.kafka import KafkaBroker, kafka_ready
from stream_detector.services.process import ServiceHandle, is_alive, stop_handle
from stream_detector.services.redis import RedisServer, redis_ready

__all__ = ["DEFAULT_PORTS", "clear_state", "handle_ready", "last_ports", "load_state",
           "local_services", "save_state"]

DEFAULT_PORTS = {"kafka": 9092, "redis": 6379}


def _state_path(cache_dir: Path) -> Path:
    return Path(cache_dir) / "services" / "state.json"


def load_state(cache_dir: Path) -> dict[str, ServiceHandle]:
    """Services recorded by ``services start`` (alive or not)."""
    path = _state_path(cache_dir)
    if not path.is_file():
        return {}
    raw: dict[str, Any] = json.loads(path.read_text())
    return {name: ServiceHandle(**entry) for name, entry in raw.items()}


def save_state(cache_dir: Path, handles: dict[str, ServiceHandle]) -> None:
    """Record running services in ``CACHE_DIR/services/state.json``."""
    path = _state_path(cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({k: asdict(v) for k, v in handles.items()}, indent=2))


def clear_state(cache_dir: Path) -> None:
    """Forget the recorded services (after ``services stop``); their ports are kept for the
    next start (:func:`last_ports`)."""
    path = _state_path(cache_dir)
    if path.is_file():
        ports = {name: h.port for name, h in load_state(cache_dir).items()}
        (path.parent / "ports.json").write_text(json.dumps(ports))
    path.unlink(missing_ok=True)


def last_ports(cache_dir: Path) -> dict[str, int]:
    """The ports the services had when last started from ``cache_dir``, else Kafka's and
    Redis' own (9092, 6379): a stop and a start keep the URLs a shell exported and a running
    worker reconnects to (each start took whatever port was free)."""
    ports = dict(DEFAULT_PORTS)
    saved = Path(cache_dir) / "services" / "ports.json"
    if saved.is_file():
        try:
            ports.update({k: int(v) for k, v in json.loads(saved.read_text()).items()
                          if k in ports})
        except (ValueError, TypeError, AttributeError):
            pass  # a damaged note: the defaults
    ports.update({name: h.port for name, h in load_state(cache_dir).items() if name in ports})
    return ports


def handle_ready(handle: ServiceHandle) -> bool:
    """Whether a recorded service is alive and answers a real request."""
    if not is_alive(handle.pid):
        return False
    try:
        if handle.name == "kafka":
            return kafka_ready(handle.url.split("://", 1)[1])
        return redis_ready(handle.url)
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return False


@contextlib.contextmanager
def local_services(cache_dir: Path) -> Iterator[tuple[ServiceHandle, ServiceHandle]]:
    """Kafka and Redis for the duration of a ``with`` block (tests, benchmarks, the demo)."""
    redis_handle = RedisServer(persistent=False).start()
    try:
        kafka_handle = KafkaBroker(cache_dir).start()
        try:
            yield kafka_handle, redis_handle
        finally:
            stop_handle(kafka_handle)
            shutil.rmtree(kafka_handle.data_dir, ignore_errors=True)
    finally:
        stop_handle(redis_handle)
        shutil.rmtree(redis_handle.data_dir, ignore_errors=True)
