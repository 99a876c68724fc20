"""Replay records into Kafka as a live producer would send them.

Records (from :func:`stream_detector.files.history.load_source`) are serialised exactly as
``model_dump_json`` writes them, keyed by ``record.key`` and produced with librdkafka's
``murmur2_random`` partitioner, the one that matches the Java client (and so aiokafka and
Faust): a key lands on the partition any Kafka client would choose for it. With
``batch > 1`` a message is a JSON list of up to ``batch`` *consecutive* records of one key
(with ``order="time"`` a panel's runs are short, so batches are small).

Memory stays bounded: messages are encoded one at a time as the records arrive, and
librdkafka's queue is capped by ``queue.buffering.max.kbytes``; encoded messages are never
collected.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

from schemas.records import MAX_MESSAGE_BYTES, MAX_RECORDS_PER_MESSAGE
from stream_detector.exceptions import DataError, StreamDetectorError
from stream_detector.files.history import AnyRecord

__all__ = [
    "ReplayError",
    "ReplayStats",
    "check_topic",
    "encode",
    "group_by_key",
    "messages",
    "producer_config",
    "send",
]

R = TypeVar("R", bound=AnyRecord)

# librdkafka logs every reconnect attempt (20 lines a second while a broker is down) to
# stderr; routed here they reach the application's logging config, and the CLI's own
# one-line errors say what failed.
_KAFKA_LOG = logging.getLogger(__name__ + ".librdkafka")
_KAFKA_LOG.addHandler(logging.NullHandler())


def _pending_codes() -> frozenset[int]:
    from confluent_kafka import KafkaError

    # what the broker answers while it auto-creates a topic or elects its leaders
    return frozenset({KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART})


class ReplayError(StreamDetectorError):
    """Kafka refused or lost part of a replay; the message says what to check."""


# --- messages (pure) ----------------------------------------------------------------------
def group_by_key(records: Iterable[R], size: int) -> Iterator[list[R]]:
    """Runs of consecutive records that share a key, at most ``size`` each, order kept.

    Records are never reordered: a key's records stay in sequence and a message never
    mixes keys (the worker would dead-letter it as ``mixed_keys``).
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    group: list[R] = []
    for record in records:
        if group and (len(group) == size or record.key != group[0].key):
            yield group
            group = []
        group.append(record)
    if group:
        yield group


def _to_json(record: AnyRecord) -> bytes:
    # the serializer model_dump_json uses, minus its str round trip: identical bytes
    return record.__pydantic_serializer__.to_json(record)


def encode(records: Sequence[AnyRecord], as_list: bool | None = None) -> bytes:
    """One message value: a record object, or a JSON list of records of one key.

    ``as_list`` defaults to "more than one record"; a batching replay passes True so
    every message of a run has the same shape.
    """
    if as_list is None:
        as_list = len(records) != 1
    if not as_list:
        (record,) = records
        return _to_json(record)
    return b"[" + b",".join(_to_json(r) for r in records) + b"]"


def messages(records: Iterable[AnyRecord], batch: int = 1) -> Iterator[tuple[bytes, bytes, int]]:
    """``(key, value, record count)`` per message; ``batch > 1`` sends lists of one key.

    Raises
    ------
    DataError
        A message would exceed the worker's size limit (fewer records per message fit).
    """
    if not 1 <= batch <= MAX_RECORDS_PER_MESSAGE:
        raise DataError(f"batch must be 1..{MAX_RECORDS_PER_MESSAGE}, got {batch}")
    groups: Iterable[Sequence[AnyRecord]] = (
        ((r,) for r in records) if batch == 1 else group_by_key(records, batch)
    )
    for group in groups:
        value = encode(group, as_list=batch > 1)
        if len(value) > MAX_MESSAGE_BYTES:
            fits = max(1, len(group) * MAX_MESSAGE_BYTES // len(value))
            raise DataError(
                f"a message of {len(group)} records is {len(value)} bytes, above the "
                f"worker's limit of {MAX_MESSAGE_BYTES}; use --batch {fits} or less"
            )
        yield group[0].key.encode(), value, len(group)


# --- Kafka --------------------------------------------------------------------------------
def producer_config(base: dict[str, Any]) -> dict[str, Any]:
    """Producer settings for replay on top of the connection settings in ``base``.

    ``murmur2_random`` hashes keys like the Java client (and aiokafka, hence Faust), so a
    key's partition is the same whoever produces it. Compression stays off because the
    worker's aiokafka decodes lz4/snappy/zstd only with optional packages.
    """
    return {
        **base,
        "partitioner": "murmur2_random",
        "client.id": "stream-detector-replay",
        "logger": _KAFKA_LOG,
        "enable.idempotence": True,  # retries neither duplicate nor reorder a key's records
        "linger.ms": 10,
        "batch.size": 1_000_000,
        "batch.num.messages": 10_000,
        "queue.buffering.max.kbytes": 65_536,  # bounds memory: produce() waits beyond this
        "message.timeout.ms": 30_000,
    }


class _Producer(Protocol):
    def produce(
        self, topic: str, *, value: bytes, key: bytes, on_delivery: Callable[[Any, Any], None]
    ) -> None: ...

    def poll(self, timeout: float) -> int: ...

    def flush(self, timeout: float) -> int: ...


def check_topic(producer: Any, topic: str, servers: str, timeout: float = 10.0) -> int:
    """Number of partitions of ``topic``; waits for a topic the broker auto-creates.

    Raises
    ------
    ReplayError
        Kafka does not answer within ``timeout`` or the topic does not exist.
    """
    from confluent_kafka import KafkaException

    pending = _pending_codes()
    deadline = time.monotonic() + timeout
    while True:
        left = max(deadline - time.monotonic(), 0.1)
        try:
            meta = producer.list_topics(topic, timeout=left).topics.get(topic)
        except KafkaException as exc:
            raise ReplayError(
                f"cannot reach Kafka at {servers} ({exc.args[0].str()}); start it with "
                "`stream-detector services start` or pass --kafka kafka://HOST:PORT"
            ) from None
        error = meta.error if meta is not None else None
        if meta is not None and error is None and meta.partitions:
            return len(meta.partitions)
        if time.monotonic() >= deadline or (error is not None and error.code() not in pending):
            reason = error.str() if error is not None else "no partitions"
            raise ReplayError(
                f"topic {topic!r} is not available on {servers} ({reason}); create it, "
                "e.g. kafka-topics.sh --create --topic NAME --partitions 4"
            )
        time.sleep(0.2)


@dataclass
class ReplayStats:
    """What a replay sent, and what Kafka acknowledged."""

    records: int = 0
    messages: int = 0
    bytes: int = 0
    delivered: int = 0
    failed: int = 0
    first_error: str | None = None
    first_code: int | None = None  # confluent_kafka.KafkaError code of first_error
    seconds: float = 0.0
    interrupted: bool = False  # ``stop`` said so before the stream's end

    @property
    def records_per_second(self) -> float:
        """Records sent per second, produce to last acknowledgement."""
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def on_delivery(self, err: Any, _msg: Any) -> None:
        """librdkafka's delivery report for one message."""
        if err is None:
            self.delivered += 1
            return
        self.failed += 1
        if self.first_error is None:
            self.first_error = err.str() if hasattr(err, "str") else str(err)
            self.first_code = err.code() if hasattr(err, "code") else None


def _produce(producer: _Producer, topic: str, key: bytes, value: bytes, stats: ReplayStats) -> None:
    while True:
        try:
            producer.produce(topic, value=value, key=key, on_delivery=stats.on_delivery)
            return
        except BufferError:  # local queue full: serve reports until there is room
            producer.poll(0.05)


def send(
    producer: _Producer,
    topic: str,
    stream: Iterable[tuple[bytes, bytes, int]],
    *,
    rate: float | None = None,
    on_progress: Callable[[int], None] | None = None,
    flush_timeout: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
    stop: Callable[[], bool] | None = None,
) -> ReplayStats:
    """Produce ``(key, value, records)`` messages; optionally pace at ``rate`` records/s.

    Stops at the first failed delivery report (the rest would most likely fail the same
    way) and raises once the queue is drained. ``stop`` is asked before each message and
    every 0.1 s of a paced wait: when it says so, no more are produced, those produced are
    still delivered, and the stats say ``interrupted`` (a Ctrl-C, without raising inside
    librdkafka's calls).

    Raises
    ------
    ReplayError
        A delivery failed or Kafka did not acknowledge everything within ``flush_timeout``.
    """
    stats = ReplayStats()
    start = clock()
    try:
        _produce_all(producer, topic, stream, stats, rate, on_progress, clock,
                     stop or _never)
    except StreamDetectorError:  # a bad record: what was sent before it still arrives
        producer.flush(flush_timeout)
        raise
    purge = getattr(producer, "purge", None)
    if stats.failed and stats.first_code in _UNREACHABLE and purge is not None:
        purge()  # the queue would time out message by message: a minute more, no news
    unacknowledged = producer.flush(flush_timeout)
    stats.seconds = clock() - start
    _raise_on_loss(stats, topic, unacknowledged)
    return stats


def _produce_all(
    producer: _Producer,
    topic: str,
    stream: Iterable[tuple[bytes, bytes, int]],
    stats: ReplayStats,
    rate: float | None,
    on_progress: Callable[[int], None] | None,
    clock: Callable[[], float],
    stop: Callable[[], bool],
) -> None:
    start = clock()
    pending = 0
    for key, value, count in stream:
        if rate:
            while (wait := start + stats.records / rate - clock()) > 0 and not stop():
                producer.poll(min(wait, 0.1))  # sleep while serving delivery reports
        if stop():
            stats.interrupted = True
            break
        _produce(producer, topic, key, value, stats)
        producer.poll(0)
        stats.records += count
        stats.messages += 1
        stats.bytes += len(value)
        pending += count
        if on_progress is not None and (pending >= 1024 or rate):
            on_progress(pending)
            pending = 0
        if stats.failed:  # the rest would most likely fail the same way
            break
    if on_progress is not None and pending:
        on_progress(pending)


def _never() -> bool:
    return False


# librdkafka's local errors when no broker takes the messages: _MSG_TIMED_OUT,
# _TRANSPORT, _ALL_BROKERS_DOWN, _PURGE_QUEUE, _PURGE_INFLIGHT
_UNREACHABLE: Final = frozenset({-192, -195, -187, -152, -151})


def _raise_on_loss(stats: ReplayStats, topic: str, unacknowledged: int) -> None:
    if stats.failed and stats.first_code in _UNREACHABLE:
        raise ReplayError(
            f"Kafka stopped taking messages to {topic!r} ({stats.first_error}): is the "
            f"broker still running? The replay stopped with {stats.delivered:,} of "
            f"{stats.messages:,} messages stored"
        )
    if stats.failed:
        raise ReplayError(
            f"Kafka rejected {stats.failed} of {stats.messages} messages to {topic!r} "
            f"({stats.first_error}); the replay stopped with {stats.delivered} stored"
        )
    if unacknowledged or stats.delivered != stats.messages:
        raise ReplayError(
            f"{stats.messages - stats.delivered} of {stats.messages} messages to {topic!r} "
            "were not acknowledged in time; check the broker and retry"
        )
