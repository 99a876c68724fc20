"""Every test here talks to the real Kafka broker and/or redis-server.

Besides the plain services of ``tests/conftest.py``, a secured pair for the transport tests:
a Kafka broker whose only client listener is SASL_SSL and a TLS-only redis-server with ACL
users (``tests/secure_services.py``), both on loopback, started once per session.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from secure_services import Pki, kafka_security, make_pki, redis_security

from stream_detector.services.kafka import KafkaBroker
from stream_detector.services.process import ServiceHandle, stop_handle
from stream_detector.services.redis import RedisServer
from stream_detector.settings import Settings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def secure_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a server certificate for localhost/127.0.0.1 and an unrelated CA (PEM files)."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def secure_kafka(secure_pki: Pki) -> Iterator[ServiceHandle]:
    """Kafka 3.9.1 with one SASL_SSL client listener (PLAIN and SCRAM-SHA-512 users)."""
    broker = KafkaBroker(Settings().cache_dir, security=kafka_security(secure_pki))
    handle = broker.start()
    yield handle
    stop_handle(handle)
    shutil.rmtree(handle.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def secure_redis(secure_pki: Pki) -> Iterator[ServiceHandle]:
    """redis-server on a TLS-only port, ``default`` user off, ACL users of the test module."""
    handle = RedisServer(redis_security(secure_pki)).start()
    yield handle
    stop_handle(handle)
    shutil.rmtree(Path(handle.data_dir), ignore_errors=True)
