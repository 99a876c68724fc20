"""Session fixtures that start the real services (Kafka broker, redis-server) on demand.

Only tests that ask for them start them: unit tests never touch the network.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream_detector.services.kafka import KafkaBroker
from stream_detector.services.process import ServiceHandle, stop_handle
from stream_detector.services.redis import RedisServer
from stream_detector.settings import Settings

pytest_plugins = ["ci_skips", "pytester"]

REPO_ROOT = Path(__file__).resolve().parents[1]
NAB_DIR = REPO_ROOT.parent / "shared" / "data" / "nab"


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[ServiceHandle]:
    """A real single-node KRaft Kafka 3.9.1 broker on a free loopback port."""
    handle = KafkaBroker(Settings().cache_dir).start()
    yield handle
    stop_handle(handle)
    shutil.rmtree(handle.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[ServiceHandle]:
    """A real redis-server on a free loopback port, no persistence."""
    handle = RedisServer(persistent=False).start()
    yield handle
    stop_handle(handle)
    shutil.rmtree(handle.data_dir, ignore_errors=True)


@pytest.fixture()
def redis_client(redis_server: ServiceHandle) -> Iterator[object]:
    """A client on a flushed database: tests never see each other's keys."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def nab_dir() -> Path:
    """The NAB realTweets subset beside the checkout (../shared/data/nab); skip when absent."""
    if not (NAB_DIR / "data" / "realTweets").is_dir():
        pytest.skip(f"NAB data not found at {NAB_DIR}")
    return NAB_DIR
