"""Checks every loader shares: each bad input becomes a DataError that says where.

Locations in messages are what a user sees in the file: ``row N`` is the N-th data row
(1-based) and, for CSV, ``line M`` is the line in a text editor (header = line 1), so either
reading of "row" finds the culprit.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from offline_training.loaded_data import MissingPolicy
from schemas.records import FLOAT32_MAX, TIMESTAMP_MAX, TIMESTAMP_MIN
from stream_detector.exceptions import DataError

__all__ = [
    "KNOWN_COLUMNS",
    "MAX_FILE_BYTES",
    "MAX_JSON_BYTES",
    "MAX_VALUE",
    "Where",
    "canonical_columns",
    "check_size",
    "fill_missing",
    "key_part",
    "numeric_column",
    "parse_timestamps",
    "time_order",
]

# Bounds keep a stray multi-GB file from exhausting memory; callers may raise them knowingly.
MAX_FILE_BYTES = 2 * 1024**3
MAX_JSON_BYTES = 256 * 1024**2  # JSON is parsed whole, with Python objects per value
MAX_VALUE = FLOAT32_MAX  # larger finite values overflow float32 (the worker: non_finite)
_MISSING_TOKENS = frozenset({"", "nan", "na", "n/a", "null", "none"})


@dataclass(frozen=True)
class Where:
    """Turns a 0-based data-row index into the location a user looks for."""

    path: Path
    header_lines: int | None = None  # CSV: lines before the first data row
    unit: str = "row"
    dataset: str | None = None  # HDF5: the array inside the file
    # CSV rows that span several lines (quoted line breaks): (first row index after such a
    # row, lines the rows before it took beyond one each), in row order
    extra_lines: tuple[tuple[int, int], ...] = ()

    @property
    def name(self) -> str:
        return f"{self.path}[{self.dataset}]" if self.dataset else str(self.path)

    def at(self, index: int, column: object | None = None) -> str:
        text = f"{self.name}: {self.unit} {index + 1}"
        if self.header_lines is not None:
            before = bisect.bisect_right(self.extra_lines, (index, math.inf)) - 1
            extra = self.extra_lines[before][1] if before >= 0 else 0
            text += f" (line {index + 1 + self.header_lines + extra})"
        if column is not None:
            text += f", column {str(column)!r}"
        return text


# Column names the loaders look for (records' fields); matched without regard to case.
KNOWN_COLUMNS = ("timestamp", "value", "date", "store", "item", "sales", "series", "label",
                 "imputed")


def canonical_columns(names: list[str]) -> list[str]:
    """Stripped names, with ``Timestamp``/``VALUE``-style spellings of :data:`KNOWN_COLUMNS`
    lower-cased (spreadsheet exports capitalise headers), unless that would make two
    columns alike or the exact name is there too.

    >>> canonical_columns([" Timestamp", "Value", "CPU"])
    ['timestamp', 'value', 'CPU']
    >>> canonical_columns(["Value", "value"])
    ['Value', 'value']
    """
    stripped = [str(n).strip() for n in names]
    lowered = [n.lower() for n in stripped]
    return [low if low in KNOWN_COLUMNS and n != low and low not in stripped
            and lowered.count(low) == 1 else n for n, low in zip(stripped, lowered, strict=True)]


def check_size(path: Path, max_bytes: int) -> None:
    """Reject a missing or empty file, and one over ``max_bytes``, before reading it."""
    if path.is_dir():
        raise DataError(f"{path} is a folder; give one data file (CSV, Parquet, HDF5, JSON or "
                        "JSON lines)")
    if not path.is_file():
        raise DataError(f"{path}: no such file; check the path")
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"{path}: file is empty; expected a header and data rows")
    if size > max_bytes:
        raise DataError(
            f"{path}: {_size(size)} exceeds the limit of {_size(max_bytes)} one file may hold "
            "(it is read whole); split it, e.g. by key or by month (Python: pass a larger "
            "max_bytes)"
        )


def _size(n: int) -> str:
    """Bytes as a user reads them.

    >>> _size(10), _size(256 * 1024**2), _size(2 * 1024**3 + 1)
    ('10 bytes', '256 MiB', '2.0 GiB')
    """
    if n >= 1024**3:
        return f"{n / 1024**3:.1f} GiB"
    return f"{n / 1024**2:.0f} MiB" if n >= 1024**2 else f"{n} bytes"


def numeric_column(column: pd.Series, where: Where, name: object) -> np.ndarray:
    """Column as float64; missing or non-finite become NaN, anything else non-numeric fails,
    and so does a finite number beyond float32 (:data:`MAX_VALUE`), which every model
    computes in: cast, it would be infinite."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(np.float64, na_value=np.nan, copy=True)
    unparsed = np.flatnonzero(np.isnan(values))  # few rows: check their text one by one
    for row in unparsed:
        if not _is_missing_token(column.iloc[row]):
            text = _plain(column.iloc[row])
            comma = ("; write numbers with a decimal point and no thousands separators (a "
                     "decimal comma is read in files separated by ; or tab)"
                     if re.fullmatch(r"\s*[-+]?[\d.,]*\d,\d[\d.,]*\s*", str(text)) else "")
            raise DataError(f"{where.at(int(row), name)}: {text!r} is not a number{comma}")
    finite = np.isfinite(values)
    huge = np.flatnonzero(finite & (np.abs(values, where=finite, out=np.zeros_like(values))
                                    > MAX_VALUE))
    if huge.size:
        at = int(huge[0])
        raise DataError(
            f"{where.at(at, name)}: {column.iloc[at]!r} is beyond the float32 range "
            f"(|x| <= {MAX_VALUE:.3g}) the models compute in; check its unit, or drop the row"
        )
    values[~finite] = np.nan
    return values


def _is_missing_token(value: object) -> bool:
    """Empty text, ``nan``/``null``-like words, None, NaN and pandas' NA all mean missing."""
    if isinstance(value, str):
        return value.strip().lower() in _MISSING_TOKENS
    if isinstance(value, float | np.floating):
        return bool(np.isnan(value))
    return value is None or value is pd.NA or value is pd.NaT


def fill_missing(
    values: np.ndarray, names: list[str], where: Where, policy: MissingPolicy
) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply the NaN/inf policy to a (n, d) array; returns the array and the imputed mask."""
    mask = np.isnan(values)
    if not mask.any():
        return values, None
    if policy == "reject":
        row, col = (int(i) for i in np.argwhere(mask)[0])
        raise DataError(
            f"{where.at(row, names[col])}: value is missing, NaN or infinite; fix or drop "
            "the row, or fill such values from the one before with --missing impute "
            "(Python: missing='impute')"
        )
    if policy != "impute":
        raise ValueError(f"missing must be 'reject' or 'impute', got {policy!r}")
    empty = np.flatnonzero(mask.all(axis=0))
    if empty.size:
        raise DataError(
            f"{where.name}: column {names[int(empty[0])]!r} has no finite value to impute from"
        )
    # Forward-fill keeps causality for all but a leading gap, which back-fill then closes.
    filled = pd.DataFrame(values).ffill().bfill().to_numpy(dtype=values.dtype)
    return filled, mask


def parse_timestamps(column: pd.Series, where: Where, name: str) -> np.ndarray:
    """ISO 8601 text (a trailing `` UTC`` read as ``+00:00``), or Unix epoch numbers
    (:func:`_epoch_times`), as naive UTC datetime64[ns]; names the first row that does not
    parse,
    or that lies outside the records' time range (``schemas.records``: [1900, 2200) UTC),
    before the cast to nanoseconds, which would wrap year 9999 round to 1815 silently."""
    epochs = _epoch_times(column, where, name)
    if epochs is not None:
        return epochs
    _refuse_empty(column, where, name)
    text = column
    if pd.api.types.infer_dtype(column, skipna=False) != "string":  # JSON numbers: as text,
        text = column.map(_plain).astype(str)  # never silently read as epochs by pandas
    # "2015-02-26 21:42:53 UTC" (database and BigQuery exports) is that time at +00:00
    text = text.str.replace(r"\s+(?:UTC|GMT)$", "+00:00", regex=True, case=False)
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        numeric = not pd.to_numeric(column, errors="coerce").isna().any()
        said = (f"is neither an ISO 8601 timestamp nor {_EPOCH_READ} to 2200" if numeric
                else "is not an ISO 8601 timestamp")
        raise DataError(
            f"{where.at(row, name)}: {_plain(column.iloc[row])!r} {said}; "
            "write times as 2015-02-26 21:42:53 or 2015-02-26T21:42:53+01:00 (naive = UTC)"
        )
    low, high = pd.Timestamp(TIMESTAMP_MIN), pd.Timestamp(TIMESTAMP_MAX)
    outside = ((parsed < low) | (parsed >= high)).to_numpy()
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise DataError(
            f"{where.at(row, name)}: {_plain(column.iloc[row])!r} is out of range: timestamps must "
            f"lie in [{low.date()}, {high.date()}) UTC; fix the time or drop the row"
        )
    return parsed.dt.tz_localize(None).to_numpy().astype("datetime64[ns]")


# Unix epoch numbers by unit, each read from 1e8 seconds (1973-03-03) in that unit up to the
# records' end (TIMESTAMP_MAX, 2200): the spans leave a gap of more than 10x between units,
# so the unit follows from the numbers themselves; below 1e8 s are counters and YYYYMMDD dates.
_EPOCH_UNITS: tuple[tuple[Literal["s", "ms", "us", "ns"], int], ...] = (
    ("s", 1), ("ms", 1_000), ("us", 1_000_000), ("ns", 1_000_000_000))
_EPOCH_LOW_S = 100_000_000
_EPOCH_READ = "Unix epoch seconds, ms, us or ns, one unit a column, from 1973-03-03"


def _epoch_times(column: pd.Series, where: Where, name: str) -> np.ndarray | None:
    """A column of Unix epoch numbers (most of its rows in one unit's span, see
    :data:`_EPOCH_UNITS`: from 1973-03-03 to 2200 in seconds, ms, us or ns) as
    datetime64[ns]; None when the column is anything else (then it is read as ISO 8601
    text).

    Raises DataError naming the first row that is not in that unit's span (empty, not a
    number, or another unit): without that, one bad row far down made the whole column read
    as ISO 8601 text and row 1 was blamed.

    >>> at = Where(Path("f.csv"))
    >>> _epoch_times(pd.Series(["1424986973", "1424987273"]), at, "t").tolist()
    [1424986973000000000, 1424987273000000000]
    >>> _epoch_times(pd.Series([915148800000]), at, "t").tolist()
    [915148800000000000]
    >>> _epoch_times(pd.Series(["2015"]), at, "t") is None
    True
    """
    numbers = pd.to_numeric(column, errors="coerce")
    values = numbers.to_numpy(np.float64)
    high_s = int(TIMESTAMP_MAX.timestamp())
    for unit, scale in _EPOCH_UNITS:
        fits = (values >= _EPOCH_LOW_S * scale) & (values < high_s * scale)  # NaN: False
        if 2 * int(fits.sum()) <= len(values):  # a majority, so a tie reads as ISO text
            continue
        if not fits.all():
            row = int(np.flatnonzero(~fits)[0])
            _refuse_empty(column.iloc[row:row + 1], where, name, offset=row)
            said, other = _plain(column.iloc[row]), _UNIT_NAMES[unit]
            if np.isnan(values[row]):  # text among numbers: one way of writing times a column
                raise DataError(f"{where.at(row, name)}: {said!r} is not a number, while the "
                                f"column's other rows are Unix epoch {other}; write every time "
                                "of a column the same way")
            raise DataError(
                f"{where.at(row, name)}: {said!r} is neither an ISO 8601 timestamp nor "
                f"{_EPOCH_READ} to 2200 (the column's other rows are Unix epoch {other}); "
                "fix the time or drop the row"
            )
        whole = bool((values == np.round(values)).all())  # ints: exact, no float rounding
        if whole:
            _refuse_compact_dates(numbers.astype("int64"), unit, where, name)
        exact = numbers.astype("int64") if whole else numbers
        stamps = pd.to_datetime(exact, unit=unit, utc=True)
        out: np.ndarray = stamps.dt.tz_localize(None).to_numpy().astype("datetime64[ns]")
        return out
    return None


_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds",
               "ns": "nanoseconds"}
# dates written without separators that also fall in an epoch unit's span (as seconds
# 2030-2039, as milliseconds 1976-2039): digits -> layout
_COMPACT = {10: ("%Y%m%d%H", "YYYYMMDDHH"), 12: ("%Y%m%d%H%M", "YYYYMMDDHHMM")}


def _refuse_compact_dates(numbers: pd.Series, unit: str, where: Where, name: str) -> None:
    """Raise DataError when every number of an epoch column is a date written without
    separators (``201404010000``: 2014-04-01 00:00, read as epoch milliseconds 1976-05-20):
    such a file was scored with every time wrong and only a cadence warning.

    >>> _refuse_compact_dates(pd.Series([1424986973, 1424987273]), "s", Where(Path("f")), "t")
    """
    digits = numbers.astype(str)
    width = int(digits.str.len().iloc[0])
    if width not in _COMPACT or not (digits.str.len() == width).all():
        return
    layout, spelled = _COMPACT[width]
    dates = pd.to_datetime(digits, format=layout, errors="coerce")
    if dates.isna().any() or not ((dates.dt.year >= 1900) & (dates.dt.year < 2200)).all():
        return
    first = _plain(numbers.iloc[0])
    as_epoch = pd.Timestamp(int(numbers.iloc[0]), unit=unit)
    raise DataError(
        f"{where.at(0, name)}: {first} looks like a date written {spelled} "
        f"({dates.iloc[0]:%Y-%m-%d %H:%M}), not Unix epoch {_UNIT_NAMES[unit]} "
        f"({as_epoch:%Y-%m-%d %H:%M}), and so does every row; write the times as ISO 8601 "
        f"({dates.iloc[0]:%Y-%m-%dT%H:%M:%S})")


def _refuse_empty(column: pd.Series, where: Where, name: str, offset: int = 0) -> None:
    """Raise DataError naming the first empty cell (blank, NaN or null) of a time column."""
    empty = column.isna().to_numpy() | (column.astype(str).str.strip() == "").to_numpy()
    if empty.any():
        row = offset + int(np.flatnonzero(empty)[0])
        raise DataError(f"{where.at(row, name)}: the time is empty; every row needs one "
                        "(or drop the row)")


def _plain(value: object) -> object:
    """A cell as the user wrote it: numpy scalars as Python ones (``1``, not ``np.int64(1)``)."""
    return value.item() if isinstance(value, np.generic) else value


def time_order(
    stamps: np.ndarray, rows: np.ndarray, where: Where, column: str, sort: bool,
    strict: bool = False,
) -> np.ndarray:
    """Indices of the rows in the order they are used: file order, or time order if ``sort``.

    The worker's policy (``stream_detector.core.timing``) holds offline too: repeated and
    out-of-order timestamps are kept in file order (the pipeline flags them ``repeated`` and
    ``late``), so a file the worker would score is never refused here. ``strict`` refuses
    them instead (duplicates always; disorder unless ``sort``). ``rows`` maps each stamp
    back to its data row so messages point into the file.
    """
    order = np.argsort(stamps, kind="stable") if sort else np.arange(len(stamps))
    if not strict:
        return order
    ordered = np.sort(stamps, kind="stable")
    dup = np.flatnonzero(ordered[1:] == ordered[:-1])
    if dup.size:
        first = ordered[dup[0]]
        shown = sorted(int(r) + 1 for r in rows[stamps == first])
        others = np.unique(ordered[dup]).size - 1
        more = f" (and {others} more repeated times)" if others else ""
        raise DataError(
            f"{where.name}: duplicate {column} {pd.Timestamp(first)} at {where.unit}s "
            f"{shown}{more}; keep one row per time, or load without strict time checks "
            "(they are kept in file order and flagged 'repeated')"
        )
    back = np.flatnonzero(stamps[1:] < stamps[:-1])
    if back.size and not sort:
        when = pd.Timestamp(stamps[back[0] + 1])
        raise DataError(
            f"{where.at(int(rows[back[0] + 1]), column)}: {when} is earlier than the row before; "
            "sort the file, load with sort=True, or load without strict time checks "
            "(kept in file order and flagged 'late')"
        )
    return order


def _normal_id(value: object) -> str | None:
    """``1``, ``"1"`` and ``1.0`` all name key part ``"1"``; None for a blank id."""
    text = str(value).strip()
    if _is_missing_token(value) or _is_missing_token(text):
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def _text_id(value: object) -> str | None:
    """A series id as the records carry it: text verbatim (``"000"``, ``"1e3"`` and
    ``"NA"`` are ids of their own: store codes, zip codes, regions), around it no blanks;
    a number (a numeric Parquet or JSON column) as :func:`_normal_id` writes it; None when
    blank."""
    if isinstance(value, str):
        return value.strip() or None
    return _normal_id(value)


def key_part(column: pd.Series, where: Where, name: str, numeric: bool = True) -> pd.Series:
    """Ids computed once per distinct value: store and item numbers (``numeric``) as
    :func:`_normal_id` writes them, series ids as :func:`_text_id` keeps them.

    Raises
    ------
    DataError
        An id is blank (named by its row).
    """
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    normal = _normal_id if numeric else _text_id
    ids = np.array([normal(u) for u in uniques] + [None], dtype=object)  # -1 -> None
    parts = ids[codes]
    blank = np.flatnonzero(pd.isna(parts))
    if blank.size:
        raise DataError(f"{where.at(int(blank[0]), name)}: the {name} id is empty")
    return pd.Series(parts, index=column.index, dtype=object)
