"""The Faust app: wiring from Kafka to the pipeline stages and back, nothing else.

Foundation stage: the ``relay`` agent checks that a message is JSON (one record or a list of
records), forwards each record to the output topic stamped with its source coordinates,
counts records per key in Redis, and sends undecodable messages to the dead-letter topic
with the reason and the original bytes. The scoring agent replaces the relay in the worker.

Run: ``python -m stream_detector.app`` (settings from ``STREAM_DETECTOR_*``).
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import faust
import redis.asyncio as aioredis

from stream_detector.constants import APP_ID, MAX_MESSAGE_BYTES, REDIS_PREFIX
from stream_detector.settings import Settings, get_settings

__all__ = ["create_app", "decode_message", "RELAY_COUNT_PREFIX", "main"]

log = logging.getLogger(__name__)

RELAY_COUNT_PREFIX = REDIS_PREFIX + "relay:count:"


def decode_message(raw: bytes | None) -> list[dict[str, Any]]:
    """Records in one message (an object or a list of objects); ValueError says why not.

    >>> decode_message(b'{"series": "a", "value": 1}')
    [{'series': 'a', 'value': 1}]
    >>> decode_message(b'[1]')
    Traceback (most recent call last):
    ...
    ValueError: wrong_type: every record must be a JSON object
    """
    if raw is None or len(raw) > MAX_MESSAGE_BYTES:
        raise ValueError(f"oversize: message exceeds {MAX_MESSAGE_BYTES} bytes")
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"malformed_json: {exc}") from None
    records = payload if isinstance(payload, list) else [payload]
    if not all(isinstance(r, dict) for r in records):
        raise ValueError("wrong_type: every record must be a JSON object")
    return records


def _record_key(record: dict[str, Any]) -> str:
    for field in ("series", "source"):
        if field in record:
            return str(record[field])
    if "store" in record and "item" in record:
        return f"{record['store']}/{record['item']}"
    return "_"


def create_app(settings: Settings | None = None) -> faust.App:
    """A Faust app with the relay agent, configured from ``settings``."""
    settings = settings or get_settings()
    app = faust.App(
        APP_ID,
        broker=settings.kafka_url,
        broker_credentials=settings.faust_broker_credentials(),
        store="memory://",
        topic_partitions=settings.topic_partitions,
        web_port=settings.web_port,
        web_host="127.0.0.1",
        datadir=str(settings.state_dir),
        producer_max_request_size=2 * MAX_MESSAGE_BYTES,
    )
    source = app.topic(settings.input_topic, value_serializer="raw")
    sink = app.topic(settings.output_topic, value_serializer="raw")
    dead_letter = app.topic(settings.dead_letter_topic, value_serializer="raw")
    store = aioredis.Redis.from_url(settings.redis_url, **settings.redis_kwargs())

    @app.agent(source)
    async def relay(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            msg = event.message
            origin = {"topic": msg.topic, "partition": msg.partition, "offset": msg.offset}
            try:
                records = decode_message(event.value)
            except ValueError as exc:
                reason, _, detail = str(exc).partition(": ")
                original = base64.b64encode(event.value or b"").decode()
                body = {"reason": reason, "message": detail, "original": original, **origin}
                await dead_letter.send(key=msg.key, value=json.dumps(body).encode())
                continue
            for record in records:
                key = _record_key(record)
                out = json.dumps({**record, "_source": origin}).encode()
                await sink.send(key=key.encode(), value=out)
                await store.incr(RELAY_COUNT_PREFIX + key)

    return app


def main() -> None:
    """Run a worker for the app built from the environment's settings."""
    settings = get_settings()
    worker = faust.Worker(create_app(settings), loglevel=settings.log_level.lower())
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
