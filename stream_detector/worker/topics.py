"""Topic set-up: create what is missing (a worker's topics; a replay's), learn the input's
partition count.

The key-state table must have exactly as many partitions as the input topic (Faust
restores changelog partition ``p`` on the worker that owns input partition ``p``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Final

from stream_detector.connectivity import check_kafka
from stream_detector.constants import topic_name_problem
from stream_detector.exceptions import ConfigurationError
from stream_detector.settings import Settings

__all__ = ["check_topic_roles", "create_missing", "ensure_topics"]

log = logging.getLogger(__name__)

_CLASHES: Final = {  # two roles on one topic, and what would go wrong
    ("input", "output"): "the worker would read its anomaly events back as records",
    ("input", "dead-letter"): "a bad record's dead letter would be consumed again, forever",
    ("output", "dead-letter"): "consumers of anomaly events would get dead letters",
}


def check_topic_roles(settings: Settings) -> None:
    """Refuse a worker whose input, output and dead-letter topics are not three topics.

    Raises
    ------
    ConfigurationError
        Two roles name one topic (the message says what would go wrong and which settings
        and flags name them).
    """
    roles = {"input": settings.input_topic, "output": settings.output_topic,
             "dead-letter": settings.dead_letter_topic}
    for (a, b), why in _CLASHES.items():
        if roles[a] == roles[b]:
            raise ConfigurationError(
                f"the {a} and {b} topics are both {roles[a]!r}: {why}; give each its own "
                "(--input/--output/--dead-letter, or STREAM_DETECTOR_INPUT_TOPIC, "
                "_OUTPUT_TOPIC, _DEAD_LETTER_TOPIC)")


def ensure_topics(settings: Settings, timeout: float = 30.0,
                  changelog: str | None = None) -> int:
    """Create the input, output and dead-letter topics if absent; return input partitions.
    An existing key-state ``changelog`` topic must have as many partitions as the input.

    Raises
    ------
    ConnectionFailed
        Kafka refuses these settings (credentials, TLS, protocol) or does not answer.
    ConfigurationError
        Two roles share a topic (:func:`check_topic_roles`), a topic cannot be created, or
        the changelog's partitions differ from the input's: Faust then crashed at the first
        state write to a partition the changelog lacks, after committing offsets of records
        whose state was never written, and crashed again at every start.
    """
    from confluent_kafka.admin import AdminClient

    check_topic_roles(settings)
    check_kafka(settings, timeout)  # wrong credentials or TLS: one clear line, in seconds
    names = [settings.input_topic, settings.output_topic, settings.dead_letter_topic]
    create_missing(settings, names, timeout)
    admin = AdminClient(settings.confluent_config())
    # a freshly created topic reaches the metadata of every broker a moment later
    deadline = time.monotonic() + timeout
    while True:
        listed = admin.list_topics(timeout=timeout).topics
        topic: Any = listed.get(settings.input_topic)
        if topic is not None and topic.partitions and topic.error is None:
            _check_changelog(listed.get(changelog) if changelog else None, changelog,
                             len(topic.partitions), settings.input_topic)
            return len(topic.partitions)
        if time.monotonic() > deadline:
            raise ConfigurationError(f"input topic {settings.input_topic} has no partitions")
        time.sleep(0.2)


def _check_changelog(topic: Any, name: str | None, partitions: int, source: str) -> None:
    if topic is None or not topic.partitions or len(topic.partitions) == partitions:
        return
    raise ConfigurationError(
        f"the key-state changelog {name} has {len(topic.partitions)} partitions but the input "
        f"topic {source} has {partitions}: grow both to the same count (deploy/README.md, "
        "\"Adding partitions\"); the worker does not start, so no offset moves past a "
        "state it could not write")


def create_missing(settings: Settings, names: Sequence[str], timeout: float = 30.0) -> list[str]:
    """Create those of ``names`` the cluster lacks, with ``settings.topic_partitions``
    partitions each (a broker's auto-creation would give its ``num.partitions``, often 1,
    and a worker cannot spread one partition); return the names it created.

    Raises
    ------
    ConfigurationError
        A name Kafka would refuse (letters, digits, ``.``, ``_`` and ``-``, up to 249), or a
        topic the cluster will not create (permissions, policy).
    """
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    for name in names:
        problem = topic_name_problem(name)
        if problem:
            raise ConfigurationError(f"topic {problem}")
    admin = AdminClient(settings.confluent_config())
    metadata = admin.list_topics(timeout=timeout)
    missing = [n for n in names if n not in metadata.topics]
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(n, settings.topic_partitions, 1) for n in missing], operation_timeout=timeout)
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
            log.info("created topic %s (%d partitions)", name, settings.topic_partitions)
        except Exception as exc:  # noqa: BLE001 - a racing worker may have created it
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise ConfigurationError(f"cannot create topic {name}: {exc}") from exc
    return missing
