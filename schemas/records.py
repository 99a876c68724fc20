"""Input records: what producers put on the input topic.

Three kinds share one discriminated union on ``kind``:

- ``series``: one point of a univariate series (``{"kind": "series", "series": "AAPL",
  "timestamp": "2015-02-26T21:42:53", "value": 104.0}``), key = series id;
- ``sales``: one daily sales row (``{"kind": "sales", "date": "2017-01-01", "store": 1,
  "item": 7, "sales": 13.0}``), key = ``"store/item"``;
- ``events``: one fixed-width feature vector (``{"kind": "events", "source": "detector-a",
  "event_id": "...", "timestamp": "...", "features": [...]}``), key = source.

A Kafka message carries one record (a JSON object) or several records of the same key (a
JSON list), to amortise per-message cost. :func:`parse_message` is the only entry point a
worker needs: it either returns validated records or raises :class:`RecordError` whose
``reason`` is a stable, machine-readable code that goes on the dead-letter topic.

Timestamps are kept twice: as the producer's ISO 8601 text (events echo it verbatim, so
offline and online runs produce identical event ids) and as integer nanoseconds since the
Unix epoch (``epoch_ns``; naive timestamps are read as UTC) for ordering and windowing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Annotated, Final, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from schemas.kinds import RECORD_KINDS

__all__ = [
    "FLOAT32_MAX",
    "MAX_FEATURES",
    "MAX_ID",
    "MAX_KEY_LENGTH",
    "MAX_MESSAGE_BYTES",
    "MAX_RECORDS_PER_MESSAGE",
    "MAX_TIMESTAMP_LENGTH",
    "MAX_WINDOW_LENGTH",
    "MIN_TIMESTAMP_LENGTH",
    "REASONS",
    "TIMESTAMP_MAX",
    "TIMESTAMP_MIN",
    "FeatureEvent",
    "Record",
    "RecordError",
    "SalesRow",
    "SeriesPoint",
    "in_time_range",
    "parse_iso8601",
    "parse_message",
]

# Bounds on untrusted input, one home for the schema and the worker's fast paths alike
# (security: a producer must not be able to exhaust a worker).
MAX_MESSAGE_BYTES: Final = 1_048_576
MAX_RECORDS_PER_MESSAGE: Final = 10_000
MAX_WINDOW_LENGTH: Final = 4_096
MAX_FEATURES: Final = 4_096
FLOAT32_MAX: Final = 3.4028234663852886e38  # numpy.finfo(numpy.float32).max
MAX_KEY_LENGTH: Final = 256
MIN_TIMESTAMP_LENGTH: Final = 4
MAX_TIMESTAMP_LENGTH: Final = 64
MAX_ID: Final = 2**31
"""Largest store or item number of a sales row."""
_BOM: Final = b"\xef\xbb\xbf"

Reason = Literal[
    "malformed_json",
    "oversize",
    "too_many_records",
    "wrong_type",
    "non_finite",
    "wrong_width",
    "unknown_kind",
    "mixed_keys",
    "schema_version",
    "empty_message",
    "unrouted",
    "timestamp_range",
]
REASONS: Final[tuple[str, ...]] = get_args(Reason)

# The accepted time range, [TIMESTAMP_MIN, TIMESTAMP_MAX): wide for any real history, and
# well inside int64 nanoseconds (1677-09-21 .. 2262-04-11), numpy's datetime64[ns] and the
# key state's int64 fields, so a clock error such as year 1 or 9999 is rejected here as
# ``timestamp_range`` instead of overflowing later, where it would stop a worker for good.
TIMESTAMP_MIN: Final = datetime(1900, 1, 1, tzinfo=UTC)
TIMESTAMP_MAX: Final = datetime(2200, 1, 1, tzinfo=UTC)
_MIN_NAIVE: Final = TIMESTAMP_MIN.replace(tzinfo=None)
_MAX_NAIVE: Final = TIMESTAMP_MAX.replace(tzinfo=None)
_RANGE_TEXT: Final = (
    f"timestamps must lie in [{TIMESTAMP_MIN.date()}, {TIMESTAMP_MAX.date()}) UTC; "
    "fix the producer's clock or the record's time field"
)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE: Final = datetime(1970, 1, 1)
_MICROSECOND: Final = timedelta(microseconds=1)


class RecordError(ValueError):
    """A message that cannot become records; it belongs on the dead-letter topic.

    Parameters
    ----------
    reason
        Stable machine-readable code, one of :data:`REASONS`; dashboards group by it.
    message
        What is wrong and, where possible, what the producer should send instead.
    """

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason: Reason = reason
        self.message = message


def parse_iso8601(text: str) -> datetime:
    """Parse an ISO 8601 timestamp or date; naive values are taken as UTC.

    >>> parse_iso8601("2015-02-26T21:42:53").isoformat()
    '2015-02-26T21:42:53+00:00'
    >>> parse_iso8601("2017-01-01").isoformat()
    '2017-01-01T00:00:00+00:00'
    """
    dt = datetime.fromisoformat(text)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def _check_iso8601(text: str) -> str:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not ISO 8601; send e.g. '2015-02-26T21:42:53Z'") from None
    if not in_time_range(dt):
        raise PydanticCustomError("timestamp_range", "{text} is out of range: {rule}",
                                  {"text": repr(text), "rule": _RANGE_TEXT})
    return text


def in_time_range(dt: datetime) -> bool:
    """Whether ``dt`` (naive = UTC) lies in ``[TIMESTAMP_MIN, TIMESTAMP_MAX)``.

    >>> in_time_range(datetime(2015, 2, 26)), in_time_range(datetime(1, 1, 1))
    (True, False)
    """
    if dt.tzinfo is None:
        return _MIN_NAIVE <= dt < _MAX_NAIVE
    return TIMESTAMP_MIN <= dt < TIMESTAMP_MAX


_Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY_LENGTH)]
# The models compute in float32: a value beyond its range is infinite there (NAN_INF's
# non_finite), and `score` refuses it in a file; checked by pydantic's own bounds (no
# Python call per feature).
_Value = Annotated[float, Field(ge=-FLOAT32_MAX, le=FLOAT32_MAX)]
_Timestamp = Annotated[
    str,
    Field(min_length=MIN_TIMESTAMP_LENGTH, max_length=MAX_TIMESTAMP_LENGTH),
    AfterValidator(_check_iso8601),
]


class _RecordBase(BaseModel):
    # strict: a series id sent as a number or a value sent as a string is a producer bug
    # that should surface on the dead-letter topic, not be silently coerced.
    model_config = ConfigDict(frozen=True, strict=True, extra="forbid", allow_inf_nan=False)

    schema_version: Literal[1] = 1
    imputed: bool = Field(
        default=False, description="the producer filled this value in (a missing reading)"
    )

    def _timestamp_text(self) -> str:  # overridden per kind
        raise NotImplementedError

    @property
    def timestamp_text(self) -> str:
        """The producer's timestamp exactly as sent."""
        return self._timestamp_text()

    # Computed on first use rather than stored during validation: a private attribute set
    # in a model validator doubled the cost of validating a record.
    @cached_property
    def epoch_ns(self) -> int:
        """The timestamp as integer nanoseconds since the Unix epoch (UTC)."""
        dt = datetime.fromisoformat(self._timestamp_text())
        # naive = UTC; subtracting a naive epoch avoids datetime.replace (~10x the parse).
        # Integer arithmetic: float seconds would lose the microseconds of recent dates.
        epoch = _EPOCH if dt.tzinfo is not None else _EPOCH_NAIVE
        return (dt - epoch) // _MICROSECOND * 1000

    @property
    def time(self) -> datetime:
        """The timestamp as a timezone-aware datetime."""
        return parse_iso8601(self._timestamp_text())


class SeriesPoint(_RecordBase):
    """One point of a univariate series; key = ``series``."""

    kind: Literal["series"]
    series: _Key
    timestamp: _Timestamp
    value: _Value

    def _timestamp_text(self) -> str:
        return self.timestamp

    @property
    def key(self) -> str:
        """Partitioning and window key."""
        return self.series

    @property
    def values(self) -> list[float]:
        """The record's feature vector (one value)."""
        return [self.value]


class SalesRow(_RecordBase):
    """One daily sales figure of an item in a store; key = ``"store/item"``."""

    kind: Literal["sales"]
    date: _Timestamp
    store: Annotated[int, Field(ge=0, le=MAX_ID)]
    item: Annotated[int, Field(ge=0, le=MAX_ID)]
    sales: _Value

    def _timestamp_text(self) -> str:
        return self.date

    @property
    def key(self) -> str:
        """Partitioning and window key, e.g. ``"1/7"``."""
        return f"{self.store}/{self.item}"

    @property
    def values(self) -> list[float]:
        """The record's feature vector (one value)."""
        return [self.sales]


class FeatureEvent(_RecordBase):
    """One fixed-width feature vector (e.g. 57 physics-object features); key = ``source``."""

    kind: Literal["events"]
    source: _Key
    event_id: Annotated[str, Field(max_length=MAX_KEY_LENGTH)] = ""
    timestamp: _Timestamp
    features: Annotated[list[_Value], Field(min_length=1, max_length=MAX_FEATURES)]

    def _timestamp_text(self) -> str:
        return self.timestamp

    @property
    def key(self) -> str:
        """Partitioning and window key."""
        return self.source

    @property
    def values(self) -> list[float]:
        """The record's feature vector."""
        return self.features


Record = Annotated[SeriesPoint | SalesRow | FeatureEvent, Field(discriminator="kind")]

# Built once: constructing a TypeAdapter compiles a validator, far too slow per message.
_ONE: Final[TypeAdapter[SeriesPoint | SalesRow | FeatureEvent]] = TypeAdapter(Record)
_MANY: Final[TypeAdapter[list[SeriesPoint | SalesRow | FeatureEvent]]] = TypeAdapter(list[Record])


def _beyond_float32(error: ErrorDetails) -> bool:
    """A value, sales figure or feature outside :data:`_Value`'s bounds."""
    loc = error["loc"]
    return (error["type"] in {"less_than_equal", "greater_than_equal"} and bool(loc)
            and (loc[-1] in {"value", "sales"} or (len(loc) > 1 and loc[-2] == "features")))


def _reason_for(error: ErrorDetails) -> Reason:
    kind = error["type"]
    loc = error["loc"]
    if kind == "json_invalid":
        return "malformed_json"
    if kind in {"union_tag_invalid", "union_tag_not_found"}:
        return "unknown_kind"
    if kind == "finite_number" or _beyond_float32(error):
        return "non_finite"
    if kind == "timestamp_range":
        return "timestamp_range"
    if loc and loc[-1] == "schema_version":
        return "schema_version"
    if kind in {"too_long", "too_short"} and loc and loc[-1] == "features":
        return "wrong_width"
    return "wrong_type"


def _record_error(exc: ValidationError, many: bool) -> RecordError:
    first = exc.errors(include_url=False, include_input=False)[0]
    loc = list(first["loc"])
    where = ""
    if many and loc and isinstance(loc[0], int):
        where = f"record {loc.pop(0)}: "
    if loc and loc[0] in RECORD_KINDS:
        loc.pop(0)  # the union tag adds nothing a reader needs
    field = ".".join(str(p) for p in loc)
    said = first["msg"]
    if _beyond_float32(first):
        said = (f"beyond the float32 range the models compute in (|x| <= {FLOAT32_MAX:.4g}); "
                "check its unit")
    text = f"{where}{field + ': ' if field else ''}{said}"
    if exc.error_count() > 1:
        text += f" (and {exc.error_count() - 1} more problems)"
    return RecordError(_reason_for(first), text)


def _check_records(
    records: list[SeriesPoint | SalesRow | FeatureEvent], expected_width: int | None
) -> None:
    head = records[0]
    for i, record in enumerate(records):
        if record.kind != head.kind or record.key != head.key:
            raise RecordError(
                "mixed_keys",
                f"record {i} has key {record.kind}:{record.key!r} but record 0 has "
                f"{head.kind}:{head.key!r}; send records of different keys as separate messages",
            )
        if expected_width is not None and len(record.values) != expected_width:
            raise RecordError(
                "wrong_width",
                f"record {i} has {len(record.values)} features, the model expects {expected_width}",
            )


def parse_message(
    raw: bytes,
    max_bytes: int = MAX_MESSAGE_BYTES,
    max_records: int = MAX_RECORDS_PER_MESSAGE,
    expected_width: int | None = None,
) -> list[SeriesPoint | SalesRow | FeatureEvent]:
    """Validate one Kafka message value into records.

    Parameters
    ----------
    raw
        The message value: one JSON record object, or a JSON list of records of one key.
    max_bytes, max_records
        Bounds that keep a hostile or broken producer from exhausting a worker.
    expected_width
        If given, every record's feature vector must have this many values (the model's
        feature count); a mismatch is ``wrong_width`` rather than a scoring crash later.

    Returns
    -------
    list
        The records in message order (at least one).

    Raises
    ------
    RecordError
        With ``reason`` in :data:`REASONS`; never any other exception for bad input.
    """
    if len(raw) > max_bytes:
        raise RecordError(
            "oversize", f"message is {len(raw)} bytes, the limit is {max_bytes}; split it"
        )
    if raw[:3] == _BOM:  # a UTF-8 byte-order mark (text exported by spreadsheet tools)
        raw = raw[3:]
    many = raw.lstrip()[:1] == b"["
    try:
        records = _MANY.validate_json(raw) if many else [_ONE.validate_json(raw)]
    except ValidationError as exc:
        raise _record_error(exc, many) from None
    if len(records) > max_records:
        raise RecordError(
            "too_many_records",
            f"message holds {len(records)} records, the limit is {max_records}; split it",
        )
    if not records:
        raise RecordError("empty_message", "message is an empty list ([]); send one record "
                          "or a list of at least one")
    _check_records(records, expected_width)
    return records
