"""Replay a history file into Kafka as the records a live producer would send.

Loaded history (what :mod:`offline_training.loaders` returns for CSV, Parquet, HDF5 or JSON
files) becomes typed records of :mod:`schemas.records`, serialised exactly as
``model_dump_json`` writes them, keyed by ``record.key`` and produced with librdkafka's
``murmur2_random`` partitioner, the one that matches the Java client (and so aiokafka and
Faust): a key lands on the partition any Kafka client would choose for it. Only the shape of
the loaded arrays matters here (see :class:`SeriesArrays`), so this module never imports
``offline_training``, which the worker image does not carry.

Conventions a consumer can rely on:

- Timestamps are written back as ISO 8601 with a ``T`` separator, in the coarsest unit that
  keeps every value of the file exact, and never coarser than seconds for series and events:
  NAB's ``2015-02-26 21:42:53`` becomes ``2015-02-26T21:42:53``; sales dates at midnight stay
  dates (``2017-01-01``). Offsets are converted to UTC and dropped (naive text = UTC).
- Event files carry no time or id: row ``i`` (0-based) gets ``timestamp`` = Unix epoch +
  ``i`` seconds and ``event_id`` = ``"<file stem>:<i>"``, so two replays send identical records.
- Order: a series in time order; a panel key after key, each in time order (the layout of
  the usual panel files), or with ``order="time"`` interleaved by timestamp like a live feed.
- With ``batch > 1`` a message is a JSON list of up to ``batch`` *consecutive* records of
  one key (with ``order="time"`` a panel's runs are short, so batches are small).

Memory stays bounded: the loaders' compact arrays, one chunk of records at a time, and
librdkafka's queue (capped by ``queue.buffering.max.kbytes``); encoded messages are never
collected.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, Protocol, TypeVar, runtime_checkable

import numpy as np
from pydantic import ValidationError

from schemas.records import FeatureEvent, RecordKind, SalesRow, SeriesPoint
from stream_detector.constants import MAX_MESSAGE_BYTES, MAX_RECORDS_PER_MESSAGE
from stream_detector.exceptions import ConfigurationError, DataError, StreamDetectorError

__all__ = [
    "load_source",
    "AnyRecord",
    "EventArrays",
    "Order",
    "PanelArrays",
    "RecordSource",
    "ReplayError",
    "ReplayStats",
    "SeriesArrays",
    "check_topic",
    "encode",
    "group_by_key",
    "iso_timestamps",
    "messages",
    "producer_config",
    "records_from",
    "send",
]

AnyRecord = SeriesPoint | SalesRow | FeatureEvent
Order = Literal["key", "time"]
R = TypeVar("R", bound=AnyRecord)

_CHUNK: Final = 16_384  # records built per step: bounds the Python objects alive at once
_Unit = Literal["D", "s", "ms", "us", "ns"]
_UNITS: Final[tuple[tuple[_Unit, int], ...]] = (
    ("D", 86_400 * 10**9),
    ("s", 10**9),
    ("ms", 10**6),
    ("us", 10**3),
)
_SECOND: Final = np.timedelta64(1, "s")

# librdkafka logs every reconnect attempt (20 lines a second while a broker is down) to
# stderr; routed here they reach the application's logging config, and the CLI's own
# one-line errors say what failed.
_KAFKA_LOG = logging.getLogger(__name__ + ".librdkafka")
_KAFKA_LOG.addHandler(logging.NullHandler())


def _pending_codes() -> frozenset[int]:
    from confluent_kafka import KafkaError

    # what the broker answers while it auto-creates a topic or elects its leaders
    return frozenset({KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART})


@runtime_checkable
class SeriesArrays(Protocol):
    """One keyed series (``loaders.SeriesData``): times (n,) and values (n, 1)."""

    @property
    def key(self) -> str: ...
    @property
    def timestamps(self) -> np.ndarray: ...
    @property
    def values(self) -> np.ndarray: ...
    @property
    def names(self) -> list[str]: ...


@runtime_checkable
class PanelArrays(Protocol):
    """Many keyed series (``loaders.PanelData``)."""

    @property
    def series(self) -> Mapping[str, SeriesArrays]: ...


@runtime_checkable
class EventArrays(Protocol):
    """Fixed-width feature vectors (``loaders.EventData``): features (n, d)."""

    @property
    def features(self) -> np.ndarray: ...


class ReplayError(StreamDetectorError):
    """Kafka refused or lost part of a replay; the message says what to check."""


# --- records from arrays (pure) ----------------------------------------------------------
def _iso_unit(stamps: np.ndarray, coarsest: Literal["D", "s"]) -> _Unit:
    ticks = stamps.astype("datetime64[ns]").view(np.int64)
    units = _UNITS if coarsest == "D" else _UNITS[1:]
    for unit, size in units:
        if not np.any(ticks % size):
            return unit
    return "ns"


def iso_timestamps(stamps: np.ndarray, coarsest: Literal["D", "s"] = "s") -> list[str]:
    """ISO 8601 text of ``datetime64`` values, in the coarsest unit that keeps all exact.

    ``coarsest="D"`` lets midnight-only data (sales dates) be written as dates.

    >>> iso_timestamps(np.array(["2015-02-26 21:42:53"], dtype="datetime64[ns]"))
    ['2015-02-26T21:42:53']
    >>> iso_timestamps(np.array(["2017-01-01", "2017-01-02"], dtype="datetime64[ns]"), "D")
    ['2017-01-01', '2017-01-02']
    >>> iso_timestamps(np.array(["2017-01-01", "2017-01-01T00:00:00.5"], dtype="datetime64[ns]"))
    ['2017-01-01T00:00:00.000', '2017-01-01T00:00:00.500']
    """
    unit = _iso_unit(stamps, coarsest)
    return [str(t) for t in np.datetime_as_string(stamps.astype("datetime64[ns]"), unit=unit)]


def _invalid(where: str, exc: ValidationError) -> DataError:
    first = exc.errors(include_url=False, include_input=False)[0]
    field_name = ".".join(str(p) for p in first["loc"])
    return DataError(f"{where}: {field_name}: {first['msg']}")


def _store_item(key: str, source: str) -> tuple[int, int]:
    store, _, item = key.partition("/")
    try:
        return int(store), int(item)
    except ValueError:
        raise DataError(
            f"{source}: sales key {key!r} is not STORE/ITEM with integer ids; "
            "the sales record kind needs numeric store and item columns"
        ) from None


def _keyed_records(
    kind: Literal["series", "sales"],
    series: Mapping[str, SeriesArrays],
    order: Order,
    limit: int | None,
    source: str,
) -> tuple[int, Iterator[SeriesPoint | SalesRow]]:
    """(count, records) of many keyed series, flattened key-major or merged by time."""
    keys = list(series)
    stamps = np.concatenate([s.timestamps for s in series.values()])
    values = np.concatenate([s.values[:, 0] for s in series.values()])
    key_index = np.repeat(np.arange(len(keys)), [len(s.timestamps) for s in series.values()])
    positions = (
        np.argsort(stamps, kind="stable") if order == "time" else np.arange(len(stamps))
    )[:limit]
    unit = _iso_unit(stamps, "D" if kind == "sales" else "s")
    ids = [_store_item(k, source) for k in keys] if kind == "sales" else []

    def build(k: int, text: str, value: float) -> SeriesPoint | SalesRow:
        if kind == "series":
            return SeriesPoint(kind="series", series=keys[k], timestamp=text, value=value)
        store, item = ids[k]
        return SalesRow(kind="sales", date=text, store=store, item=item, sales=value)

    def records() -> Iterator[SeriesPoint | SalesRow]:
        for start in range(0, len(positions), _CHUNK):
            idx = positions[start : start + _CHUNK]
            texts = np.datetime_as_string(stamps[idx], unit=unit).tolist()
            rows = zip(key_index[idx].tolist(), texts, values[idx].tolist(), strict=True)
            for n, (k, text, value) in enumerate(rows, start + 1):
                try:
                    yield build(k, text, value)
                except ValidationError as exc:
                    raise _invalid(f"{source}: record {n} ({keys[k]} at {text})", exc) from None

    return len(positions), records()


def _event_records(
    data: EventArrays, source_key: str, stem: str, limit: int | None, source: str
) -> tuple[int, Iterator[FeatureEvent]]:
    rows = len(data.features) if limit is None else min(limit, len(data.features))

    def records() -> Iterator[FeatureEvent]:
        for start in range(0, rows, _CHUNK):
            stop = min(start + _CHUNK, rows)
            stamps = np.datetime64(0, "s") + np.arange(start, stop) * _SECOND
            texts = np.datetime_as_string(stamps, unit="s").tolist()
            features = data.features[start:stop].tolist()
            for i, (text, vector) in enumerate(zip(texts, features, strict=True), start):
                try:
                    yield FeatureEvent(
                        kind="events",
                        source=source_key,
                        event_id=f"{stem}:{i}",
                        timestamp=text,
                        features=vector,
                    )
                except ValidationError as exc:
                    raise _invalid(f"{source}: row {i + 1}", exc) from None

    return rows, records()


@dataclass(frozen=True)
class RecordSource:
    """Records ready to send: their kind, how many, and a one-shot iterator over them."""

    kind: RecordKind
    total: int
    records: Iterator[AnyRecord] = field(repr=False)
    path: Path
    keys: int


def _select(
    series: Mapping[str, SeriesArrays], key: str | None, source: str
) -> Mapping[str, SeriesArrays]:
    if key is None:
        return series
    if key not in series:
        shown = ", ".join(list(series)[:5])
        raise DataError(f"{source}: no key {key!r}; the file has {len(series)} keys ({shown}, ...)")
    return {key: series[key]}


def records_from(
    data: SeriesArrays | PanelArrays | EventArrays,
    path: Path | str,
    *,
    kind: RecordKind | None = None,
    key: str | None = None,
    order: Order = "key",
    limit: int | None = None,
) -> RecordSource:
    """Prepare the records of loaded history (``offline_training.loaders.load(path)``).

    Parameters
    ----------
    path
        The file it came from: names the records in errors; its stem prefixes event ids.
    kind
        ``"sales"`` reads a panel as sales rows even if its value column is not ``sales``.
    key
        Series: the series id (default: the loader's key, the file stem for CSV files,
        e.g. ``Twitter_volume_AAPL``). Panels: replay only this key (``"1/7"``).
        Events: the source (default ``"events"``).
    order
        ``"key"``: key after key; ``"time"``: keys interleaved by timestamp.
    limit
        Send at most this many records (the first in replay order).

    Raises
    ------
    DataError
        ``key`` names no series, or (while iterating) a row cannot become a valid record;
        the message names the file and the record.
    """
    path = Path(path)
    where = str(path)
    if isinstance(data, EventArrays):
        total, events = _event_records(data, key or "events", path.stem, limit, where)
        return RecordSource("events", total, events, path, 1)
    if isinstance(data, PanelArrays):
        series = _select(data.series, key, where)
        # load_panel names its value column "sales"; records-JSON panels of series keep "value"
        is_sales = kind == "sales" or all(s.names == ["sales"] for s in series.values())
        found: Literal["series", "sales"] = "sales" if is_sales else "series"
    else:
        series, found = {key or data.key: data}, "series"
    total, keyed = _keyed_records(found, series, order, limit, where)
    return RecordSource(found, total, keyed, path, len(series))


# --- messages (pure) ----------------------------------------------------------------------
def load_source(
    path: Path | str,
    *,
    kind: RecordKind | None = None,
    key: str | None = None,
    order: Order = "key",
    limit: int | None = None,
) -> RecordSource:
    """Read a history file and prepare its records: the one path replay, ``score`` and
    ``train`` share, so they all see the same records (and timestamp texts)."""
    try:
        from offline_training import loaders
    except ImportError:  # the worker image carries stream_detector without the training side
        raise ConfigurationError(
            "reading history files needs offline_training, which this installation lacks; "
            "run it where the full stream-detector package is installed"
        ) from None
    data = loaders.load(Path(path), kind)
    return records_from(data, path, kind=kind, key=key, order=order, limit=limit)


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
    seconds: float = 0.0

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
) -> ReplayStats:
    """Produce ``(key, value, records)`` messages; optionally pace at ``rate`` records/s.

    Stops at the first failed delivery report (the rest would most likely fail the same
    way) and raises once the queue is drained.

    Raises
    ------
    ReplayError
        A delivery failed or Kafka did not acknowledge everything within ``flush_timeout``.
    """
    stats = ReplayStats()
    start = clock()
    try:
        _produce_all(producer, topic, stream, stats, rate, on_progress, clock)
    except StreamDetectorError:  # a bad record: what was sent before it still arrives
        producer.flush(flush_timeout)
        raise
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
) -> None:
    start = clock()
    pending = 0
    for key, value, count in stream:
        if rate:
            while (wait := start + stats.records / rate - clock()) > 0:
                producer.poll(min(wait, 0.1))  # sleep while serving delivery reports
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


def _raise_on_loss(stats: ReplayStats, topic: str, unacknowledged: int) -> None:
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
