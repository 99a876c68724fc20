"""Topic set-up for a worker: create what is missing, learn the input's partition count.

The key-state table must have exactly as many partitions as the input topic (Faust
restores changelog partition ``p`` on the worker that owns input partition ``p``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from stream_detector.connectivity import check_kafka
from stream_detector.exceptions import ConfigurationError
from stream_detector.settings import Settings

__all__ = ["ensure_topics"]

log = logging.getLogger(__name__)


def ensure_topics(settings: Settings, timeout: float = 30.0) -> int:
    """Create the input, output and dead-letter topics if absent; return input partitions.

    Raises
    ------
    ConnectionFailed
        Kafka refuses these settings (credentials, TLS, protocol) or does not answer.
    ConfigurationError
        A topic cannot be created.
    """
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    check_kafka(settings, timeout)  # wrong credentials or TLS: one clear line, in seconds
    admin = AdminClient(settings.confluent_config())
    names = [settings.input_topic, settings.output_topic, settings.dead_letter_topic]
    metadata = admin.list_topics(timeout=timeout)
    missing = [n for n in names if n not in metadata.topics]
    if missing:
        futures = admin.create_topics(
            [NewTopic(n, settings.topic_partitions, 1) for n in missing],
            operation_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result(timeout=timeout)
                log.info("created topic %s (%d partitions)", name, settings.topic_partitions)
            except Exception as exc:  # noqa: BLE001 - a racing worker may have created it
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise ConfigurationError(f"cannot create topic {name}: {exc}") from exc
    # a freshly created topic reaches the metadata of every broker a moment later
    deadline = time.monotonic() + timeout
    while True:
        topic: Any = admin.list_topics(timeout=timeout).topics.get(settings.input_topic)
        if topic is not None and topic.partitions and topic.error is None:
            return len(topic.partitions)
        if time.monotonic() > deadline:
            raise ConfigurationError(f"input topic {settings.input_topic} has no partitions")
        time.sleep(0.2)
