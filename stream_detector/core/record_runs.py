"""Records of one message as columns: one parse per message, checks over the whole run.

A Kafka message carries one record or a list of records of one key
(:func:`schemas.records.parse_message`). The worker's hot path needs them as arrays, not
as one pydantic object per record, so :func:`parse_run` reads a message with orjson into
a :class:`RecordRun` (key, kind, ``(n, features)`` float32 values, epoch nanoseconds,
timestamp texts), checking every rule of the record schemas over the run: rows' types and
key counts are counted in C, columns taken with ``itemgetter``, a long message's
timestamps read at once (:func:`~stream_detector.core.iso_times.epoch_ns_array`). The
worker reads series messages with their batch first (:mod:`.batch_runs`, built on the
helpers here) and comes here for the rest.

It only *accepts* what it has checked: whenever a message is not plainly valid (any doubt:
wrong type, unknown field, bad timestamp, mixed keys, bounds), it hands the message to
:func:`~schemas.records.parse_message`, which either raises the :class:`RecordError` the
message deserves (same reason, same text: the dead letter is the one the reference path
writes) or returns records, which become a run. A unit test checks both paths give the
same runs and the same errors on random valid and broken messages.

Measured on 100-record series messages (2 shared cores, loaded): about 0.7 us per record
here (orjson's own parse about 0.2 of it), against 4 to 13 us through pydantic objects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt
import orjson

from schemas.kinds import RecordKind
from schemas.records import (
    FLOAT32_MAX,
    MAX_FEATURES,
    MAX_ID,
    MAX_KEY_LENGTH,
    MAX_MESSAGE_BYTES,
    MAX_RECORDS_PER_MESSAGE,
    MAX_TIMESTAMP_LENGTH,
    MIN_TIMESTAMP_LENGTH,
    TIMESTAMP_MAX,
    TIMESTAMP_MIN,
    Record,
    RecordError,
    in_time_range,
    parse_message,
)
from stream_detector.core.iso_times import epoch_ns_array
from stream_detector.core.series_wire import (
    PlainSeriesWire,
    SeriesWire,
    decode_series,
    imputed_flags,
)

__all__ = ["RecordRun", "check_widths", "one_key", "parse_run", "runs_of", "series_columns",
           "slice_runs", "to_float32"]

# Record.epoch_ns's arithmetic: naive times are UTC, integer microseconds then ns
_UTC_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH: Final = datetime(1970, 1, 1)
_US: Final = timedelta(microseconds=1)
_NAIVE_RANGE: Final = (TIMESTAMP_MIN.replace(tzinfo=None), TIMESTAMP_MAX.replace(tzinfo=None))
_SMALL: Final = 16
_F32_MAX: Final = FLOAT32_MAX


class RecordRun(NamedTuple):
    """Consecutive records of one key and kind, as columns.

    ``values`` is ``(n, features)`` float32 (the records' feature vectors, in order),
    ``epoch_ns`` their timestamps in nanoseconds since the Unix epoch (naive = UTC),
    ``texts`` the timestamps as sent, ``imputed`` each record's flag (None: none is),
    ``ns_array`` the same times as an int64 array ``(n,)`` when they were read at once
    (:func:`~stream_detector.core.iso_times.epoch_ns_array`; None otherwise): the time
    check over a message uses it instead of converting the list again.
    """

    kind: RecordKind
    key: str
    values: npt.NDArray[np.float32]
    epoch_ns: list[int]
    texts: list[str]
    imputed: list[bool] | None = None
    ns_array: npt.NDArray[np.int64] | None = None

    def __len__(self) -> int:  # records, not fields
        return len(self.texts)

    def tail(self, start: int) -> RecordRun:
        """The run without its first ``start`` records."""
        return self.part(start, len(self))

    def part(self, start: int, stop: int) -> RecordRun:
        """Records ``start .. stop - 1`` of the run."""
        imputed = None if self.imputed is None else self.imputed[start:stop]
        ns = None if self.ns_array is None else self.ns_array[start:stop]
        return RecordRun(self.kind, self.key, self.values[start:stop],
                         self.epoch_ns[start:stop], self.texts[start:stop], imputed, ns)

    def take(self, keep: list[int]) -> RecordRun:
        """The records at the indices ``keep`` (in order)."""
        imputed = None if self.imputed is None else [self.imputed[i] for i in keep]
        ns = None if self.ns_array is None else self.ns_array[keep]
        return RecordRun(self.kind, self.key, self.values[keep], [self.epoch_ns[i] for i in keep],
                         [self.texts[i] for i in keep], imputed, ns)


def slice_runs(runs: Sequence[RecordRun], first: int, stop: int | None) -> list[RecordRun]:
    """Records ``first`` to ``stop`` (message order, across runs) as runs.

    >>> import numpy as np
    >>> run = RecordRun("series", "k", np.zeros((4, 1), np.float32), [0, 1, 2, 3], list("abcd"))
    >>> [r.texts for r in slice_runs([run, run], 3, 6)]
    [['d'], ['a', 'b']]
    """
    out: list[RecordRun] = []
    at = 0
    for run in runs:
        lo, hi = max(first - at, 0), len(run) if stop is None else min(stop - at, len(run))
        if lo < hi:
            out.append(run if (lo, hi) == (0, len(run)) else run.part(lo, hi))
        at += len(run)
    return out


def runs_of(records: Sequence[Record]) -> list[RecordRun]:
    """Validated records as runs: one per stretch of consecutive records of one key (and
    one width: records of a kind no model serves may differ)."""
    runs: list[RecordRun] = []
    start = 0
    for i in range(1, len(records) + 1):
        if i == len(records) or (records[i].kind, records[i].key, len(records[i].values)) != (
                records[start].kind, records[start].key, len(records[start].values)):
            part = records[start:i]
            head = part[0]
            imputed = [r.imputed for r in part]
            runs.append(RecordRun(
                head.kind, head.key,
                np.array([r.values for r in part], dtype=np.float32),  # validated: in range
                [r.epoch_ns for r in part], [r.timestamp_text for r in part],
                imputed if any(imputed) else None))
            start = i
    return runs


def parse_run(raw: bytes, widths: Mapping[str, int] | None = None) -> list[RecordRun]:
    """One message as runs: one run, or none for an empty list (several only for records
    of a kind no model serves whose widths differ).

    Parameters
    ----------
    raw
        The message value.
    widths
        Feature count the served model of each record kind expects; a run of another
        width is left to the caller's reference check (it raises ``wrong_width``).

    Raises
    ------
    RecordError
        Exactly as :func:`~schemas.records.parse_message` then :func:`check_widths` do.
    """
    run = _fast(raw) if len(raw) <= MAX_MESSAGE_BYTES else None
    if run is not None and (widths is None or widths.get(run.kind, run.values.shape[1])
                            == run.values.shape[1]):
        return [run]
    records = parse_message(raw)  # the reference: raises the dead letter's reason
    check_widths(records, widths or {})
    return runs_of(records)


def check_widths(records: Sequence[Record], widths: Mapping[str, int]) -> None:
    """Raise ``wrong_width`` for a record whose kind's model expects another width."""
    for r in records:
        want = widths.get(r.kind)
        if want is not None and len(r.values) != want:
            raise RecordError(
                "wrong_width", f"record of key {r.key!r} has {len(r.values)} values; "
                f"the {r.kind} model expects {want}"
            )


def _fast(raw: bytes) -> RecordRun | None:
    # a list of records: msgspec's typed rows (a lone record is as fast through orjson)
    wire = decode_series(raw) if raw[:1] == b"[" else None
    if wire is not None:
        run = series_columns(wire)
        if run is not None:
            return run
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    rows = doc if type(doc) is list else [doc] if type(doc) is dict else None
    if not rows or len(rows) > MAX_RECORDS_PER_MESSAGE or type(rows[0]) is not dict:
        return None
    columns = _KINDS.get(rows[0].get("kind"))  # type: ignore[arg-type]
    return None if columns is None else columns(rows)


def _exact(rows: list[Any], fields: frozenset[str]) -> bool:
    """Every row a dict of ``len(fields)`` keys, counted in C: with every field present
    (the caller's lookups raise KeyError otherwise), exactly ``fields``."""
    n = len(rows)
    return list(map(type, rows)).count(dict) == n and list(map(len, rows)).count(
        len(fields)) == n


def _plain(rows: list[Any], fields: frozenset[str], optional: frozenset[str]) -> bool:
    """Every row a dict of exactly ``fields`` (plus any of ``optional``)."""
    for r in rows:
        if type(r) is not dict:
            return False
        keys = r.keys()
        if keys != fields and not (fields <= keys and keys - fields <= optional):
            return False
        if "schema_version" in r and not (type(r["schema_version"]) is int
                                          and r["schema_version"] == 1):
            return False
        if "imputed" in r and type(r["imputed"]) is not bool:
            return False
    return True


def _column(rows: list[Any], name: str) -> list[Any]:
    """Field ``name`` of every row (KeyError when a row lacks it)."""
    return list(map(itemgetter(name), rows))


def _imputed(rows: list[Any]) -> list[bool] | None:
    flags = [r.get("imputed", False) for r in rows]
    return flags if any(flags) else None


def _timed(texts: list[Any]) -> tuple[list[int], npt.NDArray[np.int64] | None] | None:
    """Epoch nanoseconds of ISO 8601 texts (``Record.epoch_ns`` of each; None if any is
    bad) and, when they were read at once, the same times as an array."""
    many = epoch_ns_array(texts)  # the common layouts, all at once
    if many is not None:
        return many.tolist(), many
    ns = _times_each(texts)
    return None if ns is None else (ns, None)


def _times_each(texts: list[Any]) -> list[int] | None:
    """Epoch nanoseconds of ISO 8601 texts, as ``Record.epoch_ns``, text by text
    (``datetime.fromisoformat``, naive = UTC); None if any is bad."""
    out = []
    fromiso, naive, micro = datetime.fromisoformat, _NAIVE_EPOCH, _US
    lo, hi = _NAIVE_RANGE
    for t in texts:
        if type(t) is not str or not MIN_TIMESTAMP_LENGTH <= len(t) <= MAX_TIMESTAMP_LENGTH:
            return None
        try:
            dt = fromiso(t)
        except ValueError:
            return None
        if dt.tzinfo is None:  # in_time_range, inlined for the common case
            if not lo <= dt < hi:
                return None
            out.append((dt - naive) // micro * 1000)
        elif in_time_range(dt):
            out.append((dt - _UTC_EPOCH) // micro * 1000)
        else:
            return None
    return out


def _numbers(values: list[Any]) -> npt.NDArray[np.float32] | None:
    """Finite JSON numbers (int or float, never bool) as float32; None otherwise."""
    types = list(map(type, values))  # counted in C
    if types.count(float) + types.count(int) != len(values):
        return None
    return to_float32(values)


def to_float32(values: list[float]) -> npt.NDArray[np.float32] | None:
    """:func:`_numbers` of values already known to be ints or floats (msgspec's rows
    are floats): float32, None when any is not finite in float32 (NaN, inf, or beyond
    its range, which the schema's general path dead-letters as ``non_finite``)."""
    if len(values) <= _SMALL:  # numpy's per-call cost dominates short lists
        if not all(-_F32_MAX <= v <= _F32_MAX for v in values):  # NaN fails too
            return None
        return np.array(values, dtype=np.float32)
    # fromiter: no search for the list's shape and dtype (210 against 288 instructions a
    # value, valgrind, 10,000 values)
    x = np.fromiter(values, np.float64, len(values))
    largest = float(np.abs(x).max())  # NaN when any is NaN
    if not largest <= _F32_MAX:
        return None
    return x.astype(np.float32)


def one_key(keys: list[Any]) -> bool:
    """Whether ``keys`` (one per record, at least one) are one valid key, repeated."""
    head = keys[0]
    return (type(head) is str and 1 <= len(head) <= MAX_KEY_LENGTH
            and keys.count(head) == len(keys))


_SERIES: Final = frozenset({"kind", "series", "timestamp", "value"})
_SALES: Final = frozenset({"kind", "date", "store", "item", "sales"})
_EVENTS: Final = frozenset({"kind", "source", "timestamp", "features"})
_VERSION: Final = frozenset({"schema_version", "imputed"})


def _series(rows: list[Any]) -> RecordRun | None:
    if len(rows) == 1 and rows[0].keys() == _SERIES:  # the commonest message: one point
        return _series_point(rows[0])
    exact = _exact(rows, _SERIES)  # no optional field: no imputed flag either
    if not exact and not _plain(rows, _SERIES, _VERSION):
        return None
    try:
        keys, texts = _column(rows, "series"), _column(rows, "timestamp")
        kinds, values_in = _column(rows, "kind"), _column(rows, "value")
    except KeyError:  # rows of as many keys as the fields, but other ones
        return None
    if kinds.count("series") != len(rows) or not one_key(keys):
        return None
    values, ns = _numbers(values_in), _timed(texts)
    if values is None or ns is None:
        return None
    return RecordRun("series", keys[0], values.reshape(-1, 1), ns[0], texts,
                     None if exact else _imputed(rows), ns[1])


def series_columns(rows: list[SeriesWire] | list[PlainSeriesWire]) -> RecordRun | None:
    """The run of series rows msgspec decoded and type-checked (:mod:`.series_wire`)."""
    if not rows or len(rows) > MAX_RECORDS_PER_MESSAGE:
        return None
    keys = [r.series for r in rows]
    if not one_key(keys):
        return None
    texts = [r.timestamp for r in rows]
    values, ns = to_float32([r.value for r in rows]), _timed(texts)
    if values is None or ns is None:
        return None
    return RecordRun("series", keys[0], values.reshape(-1, 1), ns[0], texts,
                     imputed_flags(rows), ns[1])


def _series_point(r: dict[str, Any]) -> RecordRun | None:
    key, text, value = r["series"], r["timestamp"], r["value"]
    if (r["kind"] != "series" or type(key) is not str or not 1 <= len(key) <= MAX_KEY_LENGTH
            or (type(value) is not float and type(value) is not int)
            or not -_F32_MAX <= value <= _F32_MAX):
        return None  # the general path decides (and names what is wrong)
    ns = _times_each([text])  # one text: numpy would not pay
    if ns is None:
        return None
    return RecordRun("series", key, np.array([[value]], dtype=np.float32), ns, [text])


def _sales(rows: list[Any]) -> RecordRun | None:
    exact = _exact(rows, _SALES)  # no optional field: no imputed flag either
    if not exact and not _plain(rows, _SALES, _VERSION):
        return None
    n = len(rows)
    try:
        stores, items = _column(rows, "store"), _column(rows, "item")
        texts, kinds, sales = _column(rows, "date"), _column(rows, "kind"), _column(rows, "sales")
    except KeyError:  # rows of as many keys as the fields, but other ones
        return None
    if kinds.count("sales") != n:
        return None
    for ids in (stores, items):  # ints (never bool) all equal to the first, in range
        if (list(map(type, ids)).count(int) != n or ids.count(ids[0]) != n
                or not 0 <= ids[0] <= MAX_ID):
            return None
    values, ns = _numbers(sales), _timed(texts)
    if values is None or ns is None:
        return None
    return RecordRun("sales", f"{stores[0]}/{items[0]}", values.reshape(-1, 1), ns[0], texts,
                     None if exact else _imputed(rows), ns[1])


def _events(rows: list[Any]) -> RecordRun | None:
    if not _plain(rows, _EVENTS, _VERSION | {"event_id"}):
        return None
    keys, texts = [r["source"] for r in rows], [r["timestamp"] for r in rows]
    features = [r["features"] for r in rows]
    if [r["kind"] for r in rows].count("events") != len(rows) or not one_key(keys):
        return None
    if any(type(r.get("event_id", "")) is not str or len(r.get("event_id", "")) > MAX_KEY_LENGTH
           for r in rows):
        return None
    width = len(features[0]) if type(features[0]) is list else 0
    if not 1 <= width <= MAX_FEATURES or any(
            type(f) is not list or len(f) != width for f in features):
        return None
    flat, ns = _numbers([v for f in features for v in f]), _timed(texts)
    if flat is None or ns is None:
        return None
    return RecordRun("events", keys[0], flat.reshape(-1, width), ns[0], texts, _imputed(rows),
                     ns[1])


_KINDS: Final[dict[RecordKind, Callable[[list[Any]], RecordRun | None]]] = {
    "series": _series, "sales": _sales, "events": _events,
}
