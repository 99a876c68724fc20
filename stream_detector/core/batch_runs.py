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
one shared layout, they are read once per layout (two producers that stamp differently
share a batch: 256 lone records, half of them with a trailing Z, 43,600 -> 36,100
instructions a message against ~22,500 in one layout; one of them with a Z: 42,600 ->
39,200); what still fails (a bad date, a value not finite) is read one message at a time,
as ``parse_run`` would.

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
from stream_detector.core.series_wire import (
    PlainSeriesWire,
    SeriesWire,
    decode_series,
    imputed_flags,
)

__all__ = ["series_runs"]

_SERIES_WIDTH: Final = 1
_JSON_OPENERS: Final = (b"[", b"{")  # a list of records or one record
_DIGITS_AS_ZERO: Final = str.maketrans("123456789", "000000000")


class _Accepted(NamedTuple):
    at: int  # its place in the batch
    rows: list[SeriesWire] | list[PlainSeriesWire]
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
            # one_key's rule for one key (msgspec gave a str), inlined: the list and the
            # call cost ~2% of the worker's instructions at one record a message (valgrind)
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
    if accepted:
        _read(accepted, texts, values, out, by_layout=True)
    return out


def _read(accepted: list[_Accepted], texts: list[str], values: list[float],
          out: list[RecordRun | None], by_layout: bool) -> None:
    """The accepted messages' runs into ``out``: their joined columns read at once; when
    that fails, per timestamp layout (``by_layout``: producers that stamp differently
    share a batch), and else one message at a time."""
    ns, floats = epoch_ns_array(texts), to_float32(values)
    if ns is None or floats is None:
        groups = _layouts(accepted, texts) if by_layout else []
        if len(groups) > 1:
            for group in groups:
                _read(*_joined(group, texts, values), out, by_layout=False)
            return
        for a in accepted:  # each one read alone
            out[a.at] = series_columns(a.rows)
        return
    ns_list, column = ns.tolist(), floats.reshape(-1, 1)
    for a in accepted:
        lo, hi, rows = a.start, a.stop, a.rows
        out[a.at] = RecordRun("series", rows[0].series, column[lo:hi], ns_list[lo:hi],
                              texts[lo:hi], imputed_flags(rows), ns[lo:hi])


def _layouts(accepted: list[_Accepted], texts: list[str]) -> list[list[_Accepted]]:
    """The messages grouped by the layout of their first timestamp (digits as 0)."""
    groups: dict[str, list[_Accepted]] = {}
    for a in accepted:
        groups.setdefault(texts[a.start].translate(_DIGITS_AS_ZERO), []).append(a)
    return list(groups.values())


def _joined(group: list[_Accepted], texts: list[str], values: list[float],
            ) -> tuple[list[_Accepted], list[str], list[float]]:
    """``group``'s columns joined anew, and the messages placed in them."""
    placed: list[_Accepted] = []
    g_texts: list[str] = []
    g_values: list[float] = []
    for a in group:
        start = len(g_texts)
        g_texts += texts[a.start:a.stop]
        g_values += values[a.start:a.stop]
        placed.append(_Accepted(a.at, a.rows, start, len(g_texts)))
    return placed, g_texts, g_values
