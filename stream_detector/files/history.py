"""History files as the typed records a live producer would send.

Loaded history (what :mod:`offline_training.loaders` returns for CSV, Parquet, HDF5 or JSON
files) becomes typed records of :mod:`schemas.records`. ``replay``, ``score`` and ``train``
all read files through :func:`load_source`, so they see the same records (and timestamp
texts). Only the shape of the loaded arrays matters here (see :class:`SeriesArrays`), so
this module imports ``offline_training``, which the worker image does not carry, only
when a file is read.

Conventions a consumer can rely on:

- Timestamps are written back as ISO 8601 with a ``T`` separator, in the coarsest unit that
  keeps every value of the file exact, and never coarser than seconds for series and events:
  NAB's ``2015-02-26 21:42:53`` becomes ``2015-02-26T21:42:53``; sales dates at midnight stay
  dates (``2017-01-01``). Offsets are converted to UTC and dropped (naive text = UTC).
- Event files carry no time or id: row ``i`` (0-based) gets ``timestamp`` = Unix epoch +
  ``i`` seconds and ``event_id`` = ``"<file stem>:<i>"``, so two replays send identical records.
- Order: a series in time order; a panel key after key, each in time order (the layout of
  the usual panel files), or with ``order="time"`` interleaved by timestamp like a live feed.

Records are built one chunk at a time from the loaders' compact arrays, never all at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final, Literal, Protocol, TypeVar, runtime_checkable

import numpy as np
from pydantic import ValidationError

from schemas.kinds import RecordKind
from schemas.records import FeatureEvent, SalesRow, SeriesPoint
from stream_detector.exceptions import ConfigurationError, DataError

__all__ = [
    "AnyRecord",
    "EventArrays",
    "aligned_events",
    "Order",
    "PanelArrays",
    "RecordSource",
    "SeriesArrays",
    "iso_timestamps",
    "load_source",
    "records_from",
    "shown_key",
]

AnyRecord = SeriesPoint | SalesRow | FeatureEvent
Order = Literal["key", "time"]

_CHUNK: Final = 16_384  # records built per step: bounds the Python objects alive at once
_Unit = Literal["D", "s", "ms", "us", "ns"]
_UNITS: Final[tuple[tuple[_Unit, int], ...]] = (
    ("D", 86_400 * 10**9),
    ("s", 10**9),
    ("ms", 10**6),
    ("us", 10**3),
)
_SECOND: Final = np.timedelta64(1, "s")


@runtime_checkable
class SeriesArrays(Protocol):
    """One keyed series (``loaded_data.SeriesData``): times (n,) and values (n, 1)."""

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
    """Many keyed series (``loaded_data.PanelData``)."""

    @property
    def series(self) -> Mapping[str, SeriesArrays]: ...


@runtime_checkable
class EventArrays(Protocol):
    """Fixed-width feature vectors (``loaded_data.EventData``): features (n, d)."""

    @property
    def features(self) -> np.ndarray: ...


_Events = TypeVar("_Events", bound=EventArrays)


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


def shown_key(key: str, limit: int = 60) -> str:
    """A key as messages show it: long keys cut to ``limit`` characters.

    >>> shown_key("k" * 100, 10)
    'kkkkkkk...'
    """
    return key if len(key) <= limit else f"{key[: limit - 3]}..."


def _store_item(key: str, source: str) -> tuple[int, int]:
    store, _, item = key.partition("/")
    try:
        return int(store), int(item)
    except ValueError:
        raise DataError(
            f"{source}: sales key {shown_key(key)!r} is not STORE/ITEM with integer ids; "
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
    imputed = np.concatenate([_imputed(s) for s in series.values()])
    key_index = np.repeat(np.arange(len(keys)), [len(s.timestamps) for s in series.values()])
    positions = (
        np.argsort(stamps, kind="stable") if order == "time" else np.arange(len(stamps))
    )[:limit]
    unit = _iso_unit(stamps, "D" if kind == "sales" else "s")
    ids = [_store_item(k, source) for k in keys] if kind == "sales" else []

    def build(k: int, text: str, value: float, filled: bool) -> SeriesPoint | SalesRow:
        if kind == "series":
            return SeriesPoint(kind="series", series=keys[k], timestamp=text, value=value,
                               imputed=filled)
        store, item = ids[k]
        return SalesRow(kind="sales", date=text, store=store, item=item, sales=value,
                        imputed=filled)

    def records() -> Iterator[SeriesPoint | SalesRow]:
        for start in range(0, len(positions), _CHUNK):
            idx = positions[start : start + _CHUNK]
            texts = np.datetime_as_string(stamps[idx], unit=unit).tolist()
            rows = zip(key_index[idx].tolist(), texts, values[idx].tolist(),
                       imputed[idx].tolist(), strict=True)
            for n, (k, text, value, filled) in enumerate(rows, start + 1):
                try:
                    yield build(k, text, value, filled)
                except ValidationError as exc:
                    raise _invalid(f"{source}: record {n} ({shown_key(keys[k])} at {text})",
                                   exc) from None

    return len(positions), records()


def _imputed(series: SeriesArrays) -> np.ndarray:
    """(n,) bool: which values the loader's ``impute`` policy filled in."""
    mask = getattr(series, "imputed_mask", None)
    if mask is None:
        return np.zeros(len(series.timestamps), dtype=bool)
    flat = np.asarray(mask, dtype=bool).reshape(len(series.timestamps), -1)
    return np.asarray(flat.any(axis=1), dtype=bool)


def _event_records(
    data: EventArrays, source_key: str, stem: str, limit: int | None, source: str
) -> tuple[int, Iterator[FeatureEvent]]:
    rows = len(data.features) if limit is None else min(limit, len(data.features))
    mask = getattr(data, "imputed_mask", None)  # (n, d): values ``impute`` filled in
    filled = [False] * rows
    if mask is not None:
        per_row = np.asarray(np.asarray(mask, dtype=bool)[:rows].reshape(rows, -1).any(axis=1),
                             dtype=bool)
        filled = [bool(x) for x in per_row]

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
                        imputed=filled[i],  # as series and sales records are flagged
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
    imputed: int = 0  # values the loader filled in (``missing="impute"``)
    ignored: tuple[str, ...] = ()  # the file's columns no record carries (e.g. "host")
    names: tuple[str, ...] = ()  # events: the features' names, in the records' order


def _select(
    series: Mapping[str, SeriesArrays], key: str | None, source: str
) -> Mapping[str, SeriesArrays]:
    if key is None:
        return series
    if key not in series:
        shown = ", ".join(shown_key(k) for k in list(series)[:5])
        more = ", ..." if len(series) > 5 else ""
        raise DataError(f"{source}: no key {shown_key(key)!r}; the file has {len(series)} keys "
                        f"({shown}{more})")
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
        if key is not None and data.key not in (key, path.stem):  # the ids of its series
            raise DataError(f"{where}: no key {shown_key(key)!r}; its series column holds "
                            f"one id, {shown_key(data.key)!r} (--key names a file's series "
                            "only when it has no series column)")
        series, found = {key or data.key: data}, "series"
    total, keyed = _keyed_records(found, series, order, limit, where)
    return RecordSource(found, total, keyed, path, len(series))


# --- reading a file ---------------------------------------------------------------------
def load_source(
    path: Path | str,
    *,
    kind: RecordKind | None = None,
    key: str | None = None,
    order: Order = "key",
    limit: int | None = None,
    strict_time: bool = False,
    missing: Literal["reject", "impute"] = "reject",
    features: Sequence[str] | None = None,
) -> RecordSource:
    """Read a history file and prepare its records: the one path replay, ``score`` and
    ``train`` share, so they all see the same records (and timestamp texts).

    Records keep the file's order within a key; repeated and out-of-order timestamps are
    accepted (the pipeline flags them, see ``stream_detector.core.timing``) unless
    ``strict_time``, which refuses them with the rows named. Empty, NaN or infinite values
    refuse the file (the row named) unless ``missing="impute"``: each is filled in from the
    value before it and its record sent with ``imputed: true`` (``RecordSource.imputed``
    counts them).

    ``features`` (a model's feature names, for events): the file's columns are taken by
    name in that order (:func:`aligned_events`), so a file with the model's columns in
    another order scores right; DataError when its names are not the model's."""
    try:
        from offline_training import loaders
    except ImportError:  # the worker image carries stream_detector without the training side
        raise ConfigurationError(
            "reading history files needs offline_training, which this installation lacks; "
            "run it where the full stream-detector package is installed"
        ) from None
    options: dict[str, object] = {"strict_time": True} if strict_time else {}
    if missing != "reject":
        options["missing"] = missing
    data = loaders.load(Path(path), kind, **options)
    names: tuple[str, ...] = ()
    if isinstance(data, EventArrays):
        names = tuple(getattr(data, "names", ()))
        if features is not None and names:
            data, names = aligned_events(data, names, tuple(features), path)
    source = records_from(data, path, kind=kind, key=key, order=order, limit=limit)
    return replace(source, imputed=int(getattr(data, "imputed", 0)),
                   ignored=tuple(getattr(data, "ignored", ())), names=names)


def _generic(names: Sequence[str]) -> bool:
    """Names a file or card gives when it has none of its own: f0, f1, ..."""
    return list(names) == [f"f{i}" for i in range(len(names))]


def aligned_events(data: _Events, names: tuple[str, ...], wanted: tuple[str, ...],
                   path: Path | str) -> tuple[_Events, tuple[str, ...]]:
    """``data`` with its feature columns in the model's order ``wanted``, taken by name.

    Unnamed columns (``f0, f1, ...`` on either side) are taken by position, as before
    names were kept. Columns were always taken by position: a file with the model's
    columns in another order was scored silently wrong, its contributors misnamed.

    Raises
    ------
    DataError
        The names differ from the model's (which are missing, which the model lacks).
    """
    if names == wanted or _generic(names) or _generic(wanted):
        return data, names
    if set(names) != set(wanted) or len(set(names)) != len(names):
        missing = [n for n in wanted if n not in names][:5]
        extra = [n for n in names if n not in wanted][:5]
        said = "; ".join(part for part in (
            f"missing {', '.join(map(repr, missing))}" if missing else "",
            f"not the model's {', '.join(map(repr, extra))}" if extra else "",
            "a name repeated" if len(set(names)) != len(names) else "") if part)
        raise DataError(f"{path}: its columns are not the model's {len(wanted)} features "
                        f"({said}); score a file with the columns the model was trained on "
                        f"({', '.join(wanted[:4])}{', ...' if len(wanted) > 4 else ''})")
    order = [names.index(n) for n in wanted]
    mask = getattr(data, "imputed_mask", None)
    moved: _Events = replace(data, features=data.features[:, order],  # type: ignore[type-var]
                             names=list(wanted),
                             imputed_mask=None if mask is None else mask[:, order])
    return moved, wanted
