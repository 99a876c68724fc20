"""CSV and Parquet tables: series (``timestamp,value``), sales panels and feature vectors.

CSV is read as text, its layout and shape checked first (:mod:`.load_csv`: preamble,
separator, header, row widths, blank lines, encoding) so that each bad value can be reported
with its row and line. The frame converters also serve JSON lists of records, which become
the same frames.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from offline_training.load_checks import (
    MAX_FILE_BYTES,
    Where,
    canonical_columns,
    check_size,
    fill_missing,
    key_part,
    numeric_column,
    parse_timestamps,
    time_order,
)
from offline_training.load_csv import check_csv_shape, check_text, csv_layout, decimal_commas
from offline_training.loaded_data import (
    EventData,
    Kind,
    MissingPolicy,
    PanelData,
    SeriesData,
)
from stream_detector.exceptions import DataError

__all__ = [
    "PARQUET_SUFFIXES",
    "SALES_COLUMNS",
    "SERIES_COLUMNS",
    "SERIES_KEY",
    "events_from_frame",
    "keyed",
    "kind_from_columns",
    "load_panel",
    "load_series",
    "panel_from_frame",
    "read_parquet",
    "read_table",
    "require_columns",
    "series_from_frame",
    "series_table",
]

SERIES_COLUMNS = ("timestamp", "value")
SALES_COLUMNS = ("date", "store", "item", "sales")
PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})


def read_table(path: Path, max_bytes: int) -> tuple[pd.DataFrame, Where]:
    """Read CSV (all fields as text, checked by the caller) or Parquet.

    CSV: a UTF-8 byte-order mark (spreadsheet exports) is dropped, and so are an Excel
    ``sep=`` line and ``#`` comment lines before the header; the delimiter is read from the
    header line (:func:`csv_layout`); with a delimiter other than ``,``, decimal commas
    become points.
    """
    check_size(path, max_bytes)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        frame = read_parquet(path)
        frame.columns = canonical_columns(list(frame.columns))
        where = Where(path)
    else:
        check_text(path)
        skip, delimiter = csv_layout(path)
        try:
            header, extra_lines = check_csv_shape(path, skip, delimiter)
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False,
                            sep=delimiter, encoding="utf-8-sig", skiprows=skip)
        frame.columns = canonical_columns(header)
        if delimiter != ",":
            frame = decimal_commas(frame)
        where = Where(path, header_lines=1 + skip, extra_lines=extra_lines)
    if frame.empty:
        raise DataError(f"{path}: no data rows after the header")
    return frame, where


def read_parquet(path: Path, schema_only: bool = False) -> pd.DataFrame:
    """A Parquet file as a frame (``schema_only``: no rows, its columns only); a file that
    is not Parquet, or is damaged, is a DataError naming it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if schema_only:
            schema = pq.read_schema(path)
            names = [("timestamp" if name == _PANDAS_INDEX and pa.types.is_timestamp(kind)
                      else name) for name, kind in zip(schema.names, schema.types, strict=True)]
            return pd.DataFrame(columns=canonical_columns(names))
        return _index_as_column(pd.read_parquet(path))
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc}); check that it is "
                        "complete, or save it again") from exc


_PANDAS_INDEX = "__index_level_0__"  # how pandas.to_parquet stores an unnamed index
_INDEX_COLUMNS = frozenset({"timestamp", "date", "series", "store", "item"})


def _index_as_column(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame pandas wrote with its times (or a record column) as the index, with that
    index as a column again (an unnamed DatetimeIndex as ``timestamp``): pandas restores the
    index, so the file seemed to lack the column. Other indexes are not data: left out."""
    index = frame.index
    if isinstance(index, pd.DatetimeIndex) or index.name in _INDEX_COLUMNS:
        name = str(index.name or "timestamp")
        if name not in frame.columns:
            return frame.reset_index(names=name)
    return frame


def _require_columns(frame: pd.DataFrame, required: tuple[str, ...], where: Where) -> None:
    require_columns(list(frame.columns), required, where.name)


def require_columns(found: list[str], required: tuple[str, ...], name: object,
                    hint: str = "") -> None:
    """The one missing-columns check (every command, every format): names what is missing,
    what was found and what was expected, and says when the "columns" are a first row of
    data (a file without its header line); ``hint`` ends the message."""
    missing = [c for c in required if c not in found]
    if missing:
        if headerless(found):
            hint = (f"; its first line looks like data, not column names; add a header "
                    f"line {','.join(required)}")
        raise DataError(
            f"{name}: missing column(s) {missing}; found {list(found)}, "
            f"expected {list(required)}{hint}"
        )


def headerless(columns: list[str]) -> bool:
    """Whether every column name starts like a number or a date (``2014-04-01 00:00:00``,
    ``19.76``, pandas' ``19.76.1`` for a repeat): the file's first line is data.

    >>> headerless(["2014-04-01 00:00:00", "NaN"]), headerless(["timestamp", "1st_jet"])
    (True, False)
    """
    return bool(columns) and all(re.match(r"[+-]?\.?\d", str(c).strip())
                                 or str(c).strip().lower() in _MISSING_WORDS for c in columns)


# what a first row of data holds where a number is missing (pandas' words); no header says these
_MISSING_WORDS = frozenset({"nan", "-nan", "inf", "-inf", "+inf", "infinity", "-infinity",
                            "null", "none", "n/a", "na", "#n/a"})


IMPUTED = "imputed"  # the records' flag: the producer filled this value in
_TRUTH = {"true": True, "1": True, "1.0": True, "yes": True,
          "false": False, "0": False, "0.0": False, "no": False}


def given_imputed(frame: pd.DataFrame, where: Where) -> np.ndarray | None:
    """(n,) bool of an ``imputed`` column (the records' flag: true/false, 1/0, blank =
    false), or None without one; anything else is a DataError naming the row."""
    if IMPUTED not in frame.columns:
        return None
    flags = np.zeros(len(frame), dtype=bool)
    for row, value in enumerate(frame[IMPUTED].tolist()):
        if isinstance(value, bool | np.bool_):
            flags[row] = bool(value)
            continue
        text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else (
            str(value).strip().lower())
        if text and text not in _TRUTH:
            raise DataError(f"{where.at(row, IMPUTED)}: {value!r} is not true or false")
        flags[row] = _TRUTH.get(text, False)
    return flags


def _with_given(mask: np.ndarray | None, given: np.ndarray | None) -> np.ndarray | None:
    """The loader's imputed mask (n, 1) joined with the file's own flags (n,)."""
    if given is None or not given.any():
        return mask
    flags = given.reshape(-1, 1)
    return flags if mask is None else mask | flags


def series_from_frame(
    frame: pd.DataFrame, where: Where, key: str, missing: MissingPolicy, sort: bool,
    strict_time: bool = False,
) -> SeriesData:
    """One ``timestamp,value`` series, in time order, with the missing-value policy applied;
    rows an ``imputed`` column marks keep the mark (:func:`given_imputed`)."""
    _require_columns(frame, SERIES_COLUMNS, where)
    stamps = parse_timestamps(frame["timestamp"], where, "timestamp")
    values = numeric_column(frame["value"], where, "value").reshape(-1, 1)
    given = given_imputed(frame, where)
    order = time_order(stamps, np.arange(len(stamps)), where, "timestamp", sort, strict_time)
    values, mask = fill_missing(values[order], ["value"], where, missing)
    mask = _with_given(mask, None if given is None else given[order])
    return SeriesData(key, stamps[order], values, where.path, mask)


SERIES_KEY = "series"  # the series records' key field (schemas.records.SeriesPoint)


def series_table(
    frame: pd.DataFrame, where: Where, key: str, missing: MissingPolicy, sort: bool,
    strict_time: bool = False,
) -> SeriesData | PanelData:
    """A ``timestamp,value`` table; with a ``series`` column (the records' key field), one
    series per id: a :class:`PanelData` when it holds several ids, else the one series named
    by its id. Without that column the table is one series named ``key``."""
    ignored = tuple(str(c) for c in frame.columns
                    if c not in (*SERIES_COLUMNS, SERIES_KEY, IMPUTED))
    if SERIES_KEY not in frame.columns:
        return replace(series_from_frame(frame, where, key, missing, sort, strict_time),
                       ignored=ignored)
    _require_columns(frame, SERIES_COLUMNS, where)
    # ids verbatim, as the records carry them ("000" is not "0"); a blank one named here
    keys = key_part(frame[SERIES_KEY], where, SERIES_KEY, numeric=False)
    if keys.nunique() == 1:
        return replace(series_from_frame(frame, where, str(keys.iloc[0]), missing, sort,
                                         strict_time), ignored=ignored)
    return replace(keyed(frame, where, keys, SERIES_COLUMNS, missing, sort, strict_time),
                   ignored=ignored)


def keyed(
    frame: pd.DataFrame,
    where: Where,
    keys: pd.Series,
    columns: tuple[str, str],
    missing: MissingPolicy,
    sort: bool,
    strict_time: bool = False,
) -> PanelData:
    """Split rows by ``keys`` into series; parse first, so locations are the file's rows."""
    time_col, value_col = columns
    stamps = parse_timestamps(frame[time_col], where, time_col)
    values = numeric_column(frame[value_col], where, value_col)
    given = given_imputed(frame, where)
    series: dict[str, SeriesData] = {}
    for key, found in keys.groupby(keys, sort=False).indices.items():
        rows = np.asarray(found)
        order = rows[time_order(stamps[rows], rows, where, time_col, sort, strict_time)]
        filled, mask = fill_missing(values[order].reshape(-1, 1), [value_col], where, missing)
        mask = _with_given(mask, None if given is None else given[order])
        series[str(key)] = SeriesData(str(key), stamps[order], filled, None, mask, [value_col])
    return PanelData(series, where.path)


def panel_from_frame(
    frame: pd.DataFrame, where: Where, missing: MissingPolicy, sort: bool,
    strict_time: bool = False,
) -> PanelData:
    """A ``date,store,item,sales`` frame as one series per ``"store/item"`` key."""
    _require_columns(frame, SALES_COLUMNS, where)
    keys = key_part(frame["store"], where, "store") + "/" + key_part(frame["item"], where, "item")
    return keyed(frame, where, keys, ("date", "sales"), missing, sort, strict_time)


def events_from_frame(
    frame: pd.DataFrame, where: Where, label_column: str | None, missing: MissingPolicy
) -> EventData:
    """Every column but the label as a float32 feature; the label, if present, as int64.
    A table with the columns of a series or a sales panel, or with a column of times
    (datetime dtype), is refused: its times are not features (DataError)."""
    for kind, required in (("sales panel", SALES_COLUMNS), ("series", SERIES_COLUMNS)):
        if set(required) <= set(frame.columns):
            raise DataError(f"{where.name}: its columns {', '.join(required)} are a {kind}'s, "
                            "not feature vectors (events): read it as a "
                            f"{kind.split()[0]} (leave out --kind events)")
    times = [str(c) for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c])]
    if times:  # Parquet and HDF5 keep the dtype: read as numbers, times became a feature
        raise DataError(f"{where.name}: a column of times ({times[0]!r}) is not a feature of "
                        "feature vectors (events); leave the times out of the features")
    names = [str(c) for c in frame.columns if c != label_column]
    if not names:
        raise DataError(f"{where.name}: no feature columns besides the label {label_column!r}")
    matrix = np.column_stack([numeric_column(frame[c], where, c) for c in names])
    labels = None
    if label_column is not None and label_column in frame.columns:
        raw = numeric_column(frame[label_column], where, label_column)
        bad = np.flatnonzero(np.isnan(raw) | (raw != np.round(raw)))
        if bad.size:
            raise DataError(f"{where.at(int(bad[0]), label_column)}: label must be an integer")
        labels = raw.astype(np.int64)
    matrix, mask = fill_missing(matrix, names, where, missing)
    return EventData(matrix.astype(np.float32), names, labels, where.path, mask)


_TIME_COLUMNS = frozenset({"timestamp", "date", "time", "datetime"})
_RECORD_ONLY = frozenset({"value", "store", "item", "sales"})  # record fields, not features


def kind_from_columns(columns: list[str], name: object = "the file") -> Kind:
    """Sales if the sales columns are all there, else series if those are, else events.

    A table with a time column (``timestamp``, ``date``, ...) or a column only records have
    (``value``, ``store``, ``item``, ``sales``) is a series or a sales panel with columns
    missing, not feature vectors: it gets the missing-columns message of the kind it is
    closest to, the one ``score`` gives, and how to read it otherwise. So does a file whose
    first line is data (no header: feature vectors need their names too).

    Raises:
        DataError: columns missing, as above.
    """
    if set(SALES_COLUMNS) <= set(columns):
        return "sales"
    if set(SERIES_COLUMNS) <= set(columns):
        return "series"
    if headerless(columns):
        raise DataError(f"{name}: its first line {list(columns)} looks like data, not column "
                        "names; add a header line: timestamp,value (a series), "
                        "date,store,item,sales (sales), or the features' names (events)")
    if (_TIME_COLUMNS | _RECORD_ONLY) & set(columns):
        # the larger share of its columns present, then the fewer missing ("time,count":
        # a series with other names, not a sales panel missing four columns)
        closest = max((SALES_COLUMNS, SERIES_COLUMNS),
                      key=lambda req: (len(set(req) & set(columns)) / len(req),
                                       -len(set(req) - set(columns))))
        hint = ("; read as a sales panel: one series needs the columns timestamp,value"
                if closest == SALES_COLUMNS else "; rename its columns to timestamp,value"
                if _TIME_COLUMNS & set(columns) else "; add a timestamp column")
        require_columns(columns, closest, name,
                        hint + " (feature vectors without times: --kind events)")
    return "events"


def load_series(
    path: str | Path,
    *,
    key: str | None = None,
    missing: MissingPolicy = "reject",
    sort: bool = False,
    strict_time: bool = False,
    max_bytes: int = MAX_FILE_BYTES,
) -> SeriesData | PanelData:
    """Load a ``timestamp,value`` CSV or Parquet file (NAB format); ``key`` defaults to the stem.

    A ``series`` column names each row's series, as in the records: several ids make a
    :class:`PanelData` (:func:`series_table`); ``key`` names a file without that column.
    Rows stay in file order (``sort`` orders them by time); repeated and out-of-order
    timestamps are accepted as the worker accepts them, or refused with ``strict_time``.
    """
    path = Path(path)
    frame, where = read_table(path, max_bytes)
    return series_table(frame, where, key or path.stem, missing, sort, strict_time)


def load_panel(
    path: str | Path,
    *,
    missing: MissingPolicy = "reject",
    sort: bool = False,
    strict_time: bool = False,
    max_bytes: int = MAX_FILE_BYTES,
) -> PanelData:
    """Load a ``date,store,item,sales`` panel; one series per ``"store/item"`` key (file
    order within a key; see :func:`load_series` for ``sort`` and ``strict_time``)."""
    path = Path(path)
    frame, where = read_table(path, max_bytes)
    return panel_from_frame(frame, where, missing, sort, strict_time)
