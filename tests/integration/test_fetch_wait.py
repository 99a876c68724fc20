"""The worker's consumer, started on the real broker, fetches with the configured wait and
size.

aiokafka hands the wait to its fetcher when the consumer starts; the start-up patch
(stream_detector/worker/faust_fetch_wait.py) sets it on the consumer Faust builds.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from stream_detector.services.process import ServiceHandle
from stream_detector.settings import Settings
from stream_detector.worker import faust_fetch_wait
from stream_detector.worker.app import faust_app


def test_the_started_consumer_fetches_with_the_setting(
    kafka_broker: ServiceHandle, tmp_path: Path
) -> None:
    from aiokafka.consumer.fetcher import READ_COMMITTED
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    settings = Settings(kafka_url=kafka_broker.url, state_dir=tmp_path, fetch_max_wait=0.03,
                        fetch_min_bytes=2048)
    assert faust_fetch_wait.install(settings.fetch_max_wait, settings.fetch_min_bytes)

    async def started_wait() -> tuple[int, int]:
        app = faust_app(settings, 4)
        # the method on a stand-in for its thread (see tests/unit/worker/test_worker_fetch_wait.py)
        thread = SimpleNamespace(app=app, consumer=SimpleNamespace(in_transaction=False))
        consumer = AIOKafkaConsumerThread._create_worker_consumer(
            thread, app.transport)  # type: ignore[arg-type]
        await consumer.start()
        try:
            fetcher = consumer._fetcher
            assert fetcher._isolation_level == READ_COMMITTED  # aborted transactions skipped
            return int(fetcher._fetch_max_wait_ms), int(fetcher._fetch_min_bytes)
        finally:
            await consumer.stop()

    try:
        assert asyncio.run(started_wait()) == (30, 2048)
    finally:
        default = Settings()
        faust_fetch_wait.install(default.fetch_max_wait, default.fetch_min_bytes)
