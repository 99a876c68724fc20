"""Series messages of one batch read together: one timestamp read and one float conversion
for all of them.

:func:`~stream_detector.core.record_runs.parse_run` reads a message alone: for a list of
series records msgspec decodes and type-checks the rows (:mod:`.series_wire`) and the run's
timestamps and values then take about a dozen numpy calls (a few microseconds each, whatever
the length), about as long as the decode itself for 100 records; a lone record goes through
orjson and ``datetime.fromisoformat``. :func:`series_runs` decodes each message of a batch
(a list of series records, or one) with msgspec, joins the timestamps and values of every
message it accepts, reads them in one
:func:`~stream_detector.core.iso_times.epoch_ns_array` and one float32 conversion, and hands
each message its slice: the same runs as ``parse_run`` (same key, values, times, texts and
flags; a unit test compares them on random batches).

It only *accepts*: a message that is not plainly series records of one key (another kind, a
field msgspec refuses, mixed keys, bounds) gets None, and the caller reads it with
``parse_run``, which gives its run or its dead letter. When the joined timestamps are not in
one shared layout (or a value is not finite), each accepted message's columns are read
alone instead, as ``parse_run`` would.

Measured (2 shared cores): 64 messages of 100 records, the columns of a message in 29.5 us
against 50.8 us one message at a time, msgspec's decode (23 us) aside. Instructions of the
worker's batch step (``WorkerRuntime.process``, valgrind): 100 records a message -3.5%,
one record a message -6.4%.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, NamedTuple

from schemas.records import MAX_KEY_LENGTH, MAX_MESSAGE_BYTES, MAX_RECORDS_PER_MESSAGE
from stream_detector.core.iso_times import epoch_ns_array
from stream_detector.core.record_runs import RecordRun, one_key, series_columns, to_float32
from stream_detector.core.series_wire import SeriesWire, decode_series

__all__ = ["series_runs"]

_SERIES_WIDTH: Final = 1
_JSON_OPENERS: Final = (b"[", b"{")  # a list of records or one record


class _Accepted(NamedTuple):
    at: int  # its place in the batch
    rows: list[SeriesWire]
    start: int  # its records in the joined columns: start .. stop - 1
    stop: int


def series_runs(raws: Sequence[bytes | None],
                widths: Mapping[str, int] | None = None) -> list[RecordRun | None]:
    """For each message value of a batch, its one series run, or None when the caller must
    read it alone (:func:`~stream_detector.core.record_runs.parse_run`, which also gives a
    bad message its dead letter).

    Parameters
    ----------
    raws
        The batch's message values, in order (None: a tombstone, left to the caller).
    widths
        Feature count the served model of each record kind expects; when the series model
        expects more than one feature, no message is accepted here.

    Returns
    -------
    list
        ``len(raws)`` entries; an entry that is a run equals ``parse_run(raw, widths)[0]``
        (its ``values`` a ``(n, 1)`` float32 view of the batch's values, its ``ns_array`` a
        view of the batch's times).
    """
    out: list[RecordRun | None] = [None] * len(raws)
    if (widths or {}).get("series", _SERIES_WIDTH) != _SERIES_WIDTH:
        return out
    accepted: list[_Accepted] = []
    texts: list[str] = []
    values: list[float] = []
    for i, raw in enumerate(raws):
        if raw is None or raw[:1] not in _JSON_OPENERS or len(raw) > MAX_MESSAGE_BYTES:
            continue
        rows = decode_series(raw)
        if not rows:
            continue
        start = len(texts)
        if len(rows) == 1:  # one record: no comprehensions (each a call in Python 3.11)
            row = rows[0]
            if not 1 <= len(row.series) <= MAX_KEY_LENGTH:
                continue
            texts.append(row.timestamp)
            values.append(row.value)
        elif len(rows) <= MAX_RECORDS_PER_MESSAGE and one_key([r.series for r in rows]):
            texts += [r.timestamp for r in rows]
            values += [r.value for r in rows]
        else:
            continue
        accepted.append(_Accepted(i, rows, start, len(texts)))
    if not accepted:
        return out
    ns, floats = epoch_ns_array(texts), to_float32(values)
    if ns is None or floats is None:  # some message differs: each one read alone
        for a in accepted:
            out[a.at] = series_columns(a.rows)
        return out
    ns_list, column = ns.tolist(), floats.reshape(-1, 1)
    for a in accepted:
        lo, hi, rows = a.start, a.stop, a.rows
        if hi - lo == 1:
            imputed = [True] if rows[0].imputed else None
        else:
            flags = [r.imputed for r in rows]
            imputed = flags if True in flags else None
        out[a.at] = RecordRun("series", rows[0].series, column[lo:hi], ns_list[lo:hi],
                              texts[lo:hi], imputed, ns[lo:hi])
    return out
