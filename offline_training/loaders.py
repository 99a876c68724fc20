"""Load training history into typed arrays; every bad input is a DataError that says where.

Formats: NAB-style series (``timestamp,value``), sales panels (``date,store,item,sales``),
fixed-width feature vectors (CSV, Parquet, HDF5), the seeds' JSON of numeric/string/mixed data
and JSON lists of records. Locations in messages are what a user sees in the file: ``row N``
is the N-th data row (1-based) and, for CSV, ``line M`` is the line in a text editor
(header = line 1), so either reading of "row" finds the culprit.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np
import pandas as pd

from stream_detector.exceptions import DataError

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_JSON_BYTES",
    "STRING_BUCKETS",
    "EventData",
    "Kind",
    "LoadedData",
    "MissingPolicy",
    "PanelData",
    "SeriesData",
    "infer_kind",
    "load",
    "load_events",
    "load_panel",
    "load_records_json",
    "load_seed_json",
    "load_series",
    "string_bucket",
]

MissingPolicy = Literal["reject", "impute"]
Kind = Literal["series", "sales", "events", "seed_json", "records_json"]

# Bounds keep a stray multi-GB file from exhausting memory; callers may raise them knowingly.
MAX_FILE_BYTES = 2 * 1024**3
MAX_JSON_BYTES = 256 * 1024**2  # JSON is parsed whole, with Python objects per value
STRING_BUCKETS = 1024
SERIES_COLUMNS = ("timestamp", "value")
SALES_COLUMNS = ("date", "store", "item", "sales")
_MISSING_TOKENS = frozenset({"", "nan", "na", "n/a", "null", "none"})
_H5_SUFFIXES = frozenset({".h5", ".hdf5", ".hdf"})
_PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})


@dataclass(frozen=True)
class SeriesData:
    """One univariate series: ``timestamps`` datetime64[ns] (n,), ``values`` float64 (n, 1)."""

    key: str
    timestamps: np.ndarray
    values: np.ndarray
    source: Path | None = None
    imputed_mask: np.ndarray | None = None  # bool (n, 1); True where a value was filled in
    names: list[str] = field(default_factory=lambda: ["value"])

    @property
    def imputed(self) -> int:
        """How many values the ``impute`` policy filled in."""
        return 0 if self.imputed_mask is None else int(self.imputed_mask.sum())


@dataclass(frozen=True)
class PanelData:
    """Many series keyed ``"store/item"`` (or by series id), each sorted by time."""

    series: dict[str, SeriesData]
    source: Path | None = None

    @property
    def imputed(self) -> int:
        """Values filled in over all keys."""
        return sum(s.imputed for s in self.series.values())


@dataclass(frozen=True)
class EventData:
    """Fixed-width feature vectors: ``features`` float32 (n, d), optional int64 ``labels`` (n,)."""

    features: np.ndarray
    names: list[str]
    labels: np.ndarray | None = None
    source: Path | None = None
    imputed_mask: np.ndarray | None = None  # bool (n, d)

    @property
    def imputed(self) -> int:
        """How many values the ``impute`` policy filled in."""
        return 0 if self.imputed_mask is None else int(self.imputed_mask.sum())


LoadedData = SeriesData | PanelData | EventData


@dataclass(frozen=True)
class _Where:
    """Turns a 0-based data-row index into the location a user looks for."""

    path: Path
    header_lines: int | None = None  # CSV: lines before the first data row
    unit: str = "row"
    dataset: str | None = None  # HDF5: the array inside the file

    @property
    def name(self) -> str:
        return f"{self.path}[{self.dataset}]" if self.dataset else str(self.path)

    def at(self, index: int, column: object | None = None) -> str:
        text = f"{self.name}: {self.unit} {index + 1}"
        if self.header_lines is not None:
            text += f" (line {index + 1 + self.header_lines})"
        if column is not None:
            text += f", column {str(column)!r}"
        return text


def string_bucket(text: str, buckets: int = STRING_BUCKETS) -> int:
    """Stable hash bucket of a string, the same in every process and Python version.

    Python's ``hash`` is salted per process, so a model trained with it could not be served;
    blake2b of the UTF-8 bytes is stable.

    >>> string_bucket("hello", 16), string_bucket("hello")
    (7, 679)
    """
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % buckets


def _check_size(path: Path, max_bytes: int) -> None:
    if not path.is_file():
        raise DataError(f"{path}: no such file; check the path")
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"{path}: file is empty; expected a header and data rows")
    if size > max_bytes:
        raise DataError(
            f"{path}: {size} bytes exceeds the limit of {max_bytes}; split the file "
            "or pass a larger max_bytes"
        )


def _check_csv_shape(path: Path) -> list[str]:
    """Return the header; reject ragged rows and interior blank lines with their line."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise DataError(f"{path}: line 1: no header; expected column names")
        names = [h.strip() for h in header]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise DataError(f"{path}: line 1: column(s) {repeated} appear twice; rename them")
        blank_line: int | None = None
        for row in reader:
            if not row:
                blank_line = blank_line or reader.line_num
                continue
            if blank_line is not None:
                raise DataError(f"{path}: line {blank_line} is blank; remove blank lines")
            if len(row) != len(header):
                raise DataError(
                    f"{path}: row {reader.line_num - 1} (line {reader.line_num}): "
                    f"{len(row)} fields, the header has {len(header)}; fix the row width"
                )
    return names


def _read_table(path: Path, max_bytes: int) -> tuple[pd.DataFrame, _Where]:
    """Read CSV (all fields as text, checked by the caller) or Parquet."""
    _check_size(path, max_bytes)
    if path.suffix.lower() in _PARQUET_SUFFIXES:
        frame = pd.read_parquet(path)
        frame.columns = [str(c).strip() for c in frame.columns]
        where = _Where(path)
    else:
        try:
            header = _check_csv_shape(path)
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
        frame.columns = header
        where = _Where(path, header_lines=1)
    if frame.empty:
        raise DataError(f"{path}: no data rows after the header")
    return frame, where


def _require_columns(frame: pd.DataFrame, required: tuple[str, ...], where: _Where) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"{where.name}: missing column(s) {missing}; found {list(frame.columns)}, "
            f"expected {list(required)}"
        )


def _numeric(column: pd.Series, where: _Where, name: object) -> np.ndarray:
    """Column as float64; missing or non-finite become NaN, anything else non-numeric fails."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(np.float64, na_value=np.nan, copy=True)
    unparsed = np.flatnonzero(np.isnan(values))  # few rows: check their text one by one
    for row in unparsed:
        if not _is_missing_token(column.iloc[row]):
            raise DataError(f"{where.at(int(row), name)}: {column.iloc[row]!r} is not a number")
    values[~np.isfinite(values)] = np.nan
    return values


def _is_missing_token(value: object) -> bool:
    """Empty text, ``nan``/``null``-like words, None, NaN and pandas' NA all mean missing."""
    if isinstance(value, str):
        return value.strip().lower() in _MISSING_TOKENS
    if isinstance(value, float | np.floating):
        return bool(np.isnan(value))
    return value is None or value is pd.NA or value is pd.NaT


def _fill_missing(
    values: np.ndarray, names: list[str], where: _Where, policy: MissingPolicy
) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply the NaN/inf policy to a (n, d) array; returns the array and the imputed mask."""
    mask = np.isnan(values)
    if not mask.any():
        return values, None
    if policy == "reject":
        row, col = (int(i) for i in np.argwhere(mask)[0])
        raise DataError(
            f"{where.at(row, names[col])}: value is missing, NaN or infinite; "
            "fix it or load with missing='impute'"
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


def _timestamps(column: pd.Series, where: _Where, name: str) -> np.ndarray:
    parsed = pd.to_datetime(column, format="ISO8601", errors="coerce", utc=True)
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{where.at(row, name)}: {column.iloc[row]!r} is not an ISO 8601 timestamp")
    return parsed.dt.tz_localize(None).to_numpy().astype("datetime64[ns]")


def _order(
    stamps: np.ndarray, rows: np.ndarray, where: _Where, column: str, sort: bool
) -> np.ndarray:
    """Indices that put ``stamps`` in time order; rejects duplicates, and disorder unless ``sort``.

    ``rows`` maps each stamp back to its data row so messages point into the file.
    """
    order = np.argsort(stamps, kind="stable")
    ordered = stamps[order]
    dup = np.flatnonzero(ordered[1:] == ordered[:-1])
    if dup.size:
        first = ordered[dup[0]]
        shown = sorted(int(r) + 1 for r in rows[stamps == first])
        others = np.unique(ordered[dup]).size - 1
        more = f" (and {others} more repeated times)" if others else ""
        raise DataError(
            f"{where.name}: duplicate {column} {pd.Timestamp(first)} at {where.unit}s "
            f"{shown}{more}; keep one row per time"
        )
    back = np.flatnonzero(stamps[1:] < stamps[:-1])
    if back.size and not sort:
        when = pd.Timestamp(stamps[back[0] + 1])
        raise DataError(
            f"{where.at(int(rows[back[0] + 1]), column)}: {when} is earlier than the row before; "
            "sort the file or load with sort=True"
        )
    return order


def _series_from_frame(
    frame: pd.DataFrame, where: _Where, key: str, missing: MissingPolicy, sort: bool
) -> SeriesData:
    _require_columns(frame, SERIES_COLUMNS, where)
    stamps = _timestamps(frame["timestamp"], where, "timestamp")
    values = _numeric(frame["value"], where, "value").reshape(-1, 1)
    order = _order(stamps, np.arange(len(stamps)), where, "timestamp", sort)
    values, mask = _fill_missing(values[order], ["value"], where, missing)
    return SeriesData(key, stamps[order], values, where.path, mask)


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


def _key_part(column: pd.Series, where: _Where, name: str) -> pd.Series:
    """Normalised ids (see :func:`_normal_id`), computed once per distinct value."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    ids = np.array([_normal_id(u) for u in uniques] + [None], dtype=object)  # -1 -> None
    parts = ids[codes]
    blank = np.flatnonzero(pd.isna(parts))
    if blank.size:
        raise DataError(f"{where.at(int(blank[0]), name)}: the {name} id is empty")
    return pd.Series(parts, index=column.index, dtype=object)


def _keyed(
    frame: pd.DataFrame,
    where: _Where,
    keys: pd.Series,
    columns: tuple[str, str],
    missing: MissingPolicy,
    sort: bool,
) -> PanelData:
    """Split rows by ``keys`` into series; parse first, so locations are the file's rows."""
    time_col, value_col = columns
    stamps = _timestamps(frame[time_col], where, time_col)
    values = _numeric(frame[value_col], where, value_col)
    series: dict[str, SeriesData] = {}
    for key, found in keys.groupby(keys, sort=False).indices.items():
        rows = np.asarray(found)
        order = rows[_order(stamps[rows], rows, where, time_col, sort)]
        filled, mask = _fill_missing(values[order].reshape(-1, 1), [value_col], where, missing)
        series[str(key)] = SeriesData(str(key), stamps[order], filled, None, mask, [value_col])
    return PanelData(series, where.path)


def _panel_from_frame(
    frame: pd.DataFrame, where: _Where, missing: MissingPolicy, sort: bool
) -> PanelData:
    _require_columns(frame, SALES_COLUMNS, where)
    keys = _key_part(frame["store"], where, "store") + "/" + _key_part(frame["item"], where, "item")
    return _keyed(frame, where, keys, ("date", "sales"), missing, sort)


def _events_from_frame(
    frame: pd.DataFrame, where: _Where, label_column: str | None, missing: MissingPolicy
) -> EventData:
    names = [str(c) for c in frame.columns if c != label_column]
    if not names:
        raise DataError(f"{where.name}: no feature columns besides the label {label_column!r}")
    matrix = np.column_stack([_numeric(frame[c], where, c) for c in names])
    labels = None
    if label_column is not None and label_column in frame.columns:
        raw = _numeric(frame[label_column], where, label_column)
        bad = np.flatnonzero(np.isnan(raw) | (raw != np.round(raw)))
        if bad.size:
            raise DataError(f"{where.at(int(bad[0]), label_column)}: label must be an integer")
        labels = raw.astype(np.int64)
    matrix, mask = _fill_missing(matrix, names, where, missing)
    return EventData(matrix.astype(np.float32), names, labels, where.path, mask)


def load_series(
    path: str | Path,
    *,
    key: str | None = None,
    missing: MissingPolicy = "reject",
    sort: bool = False,
    max_bytes: int = MAX_FILE_BYTES,
) -> SeriesData:
    """Load a ``timestamp,value`` CSV or Parquet file (NAB format); ``key`` defaults to the stem."""
    path = Path(path)
    frame, where = _read_table(path, max_bytes)
    return _series_from_frame(frame, where, key or path.stem, missing, sort)


def load_panel(
    path: str | Path,
    *,
    missing: MissingPolicy = "reject",
    sort: bool = False,
    max_bytes: int = MAX_FILE_BYTES,
) -> PanelData:
    """Load a ``date,store,item,sales`` panel; one series per ``"store/item"`` key."""
    path = Path(path)
    frame, where = _read_table(path, max_bytes)
    return _panel_from_frame(frame, where, missing, sort)


def load_events(
    path: str | Path,
    *,
    dataset: str | None = None,
    label_column: str | None = "label",
    missing: MissingPolicy = "reject",
    max_bytes: int = MAX_FILE_BYTES,
) -> EventData:
    """Load feature vectors from CSV/Parquet (header row; ``label_column`` optional) or HDF5.

    For HDF5, ``dataset`` names the (n, d) array (default: the first 2-D numeric dataset in
    sorted order); labels come from a 1-D dataset named ``labels``, ``label`` or ``y`` of
    length n, names from the dataset's ``feature_names`` attribute, else ``f0..f{d-1}``.
    """
    path = Path(path)
    if path.suffix.lower() in _H5_SUFFIXES:
        _check_size(path, max_bytes)
        return _load_h5(path, dataset, missing)
    frame, where = _read_table(path, max_bytes)
    return _events_from_frame(frame, where, label_column, missing)


def _load_h5(path: Path, dataset: str | None, missing: MissingPolicy) -> EventData:
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({exc})") from exc
    with handle:
        names_2d = _h5_datasets(handle, ndim=2)
        name = dataset or (names_2d[0] if names_2d else None)
        if name is None or name not in names_2d:
            raise DataError(
                f"{path}: no 2-D numeric dataset {name!r}; found {names_2d}; pass dataset="
            )
        node = handle[name]
        matrix = np.asarray(node[()], dtype=np.float64)
        attr = node.attrs.get("feature_names")
        names = (
            [n.decode() if isinstance(n, bytes) else str(n) for n in attr]
            if attr is not None
            else []
        )
        names = (
            names if len(names) == matrix.shape[1] else [f"f{i}" for i in range(matrix.shape[1])]
        )
        labels = _h5_labels(handle, matrix.shape[0])
    if matrix.shape[0] == 0:
        raise DataError(f"{path}: dataset {name!r} has no rows")
    matrix[~np.isfinite(matrix)] = np.nan
    matrix, mask = _fill_missing(matrix, names, _Where(path, dataset=name), missing)
    return EventData(matrix.astype(np.float32), names, labels, path, mask)


def _h5_datasets(handle: h5py.File, ndim: int) -> list[str]:
    found: list[str] = []

    def visit(name: str, node: object) -> None:
        if isinstance(node, h5py.Dataset) and node.ndim == ndim and node.dtype.kind in "fiub":
            found.append(name)

    handle.visititems(visit)
    return sorted(found)


def _h5_labels(handle: h5py.File, rows: int) -> np.ndarray | None:
    for candidate in ("labels", "label", "y"):
        node = handle.get(candidate)
        if isinstance(node, h5py.Dataset) and node.shape == (rows,):
            return np.asarray(node[()], dtype=np.int64)
    return None


def _read_json(path: Path, max_bytes: int) -> Any:
    _check_size(path, max_bytes)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid UTF-8 JSON ({exc}); fix the syntax") from exc


def _seed_section(doc: dict[str, Any], name: str, path: Path) -> list[Any]:
    section = doc.get(name, [])
    if not isinstance(section, list):
        raise DataError(f"{path}: {name!r} must be a JSON list, got {type(section).__name__}")
    return section


def _seed_numbers(items: list[Any], path: Path, section: str) -> np.ndarray:
    """Rows of numbers from a list of scalars or of equal-length lists."""
    rows = [item if isinstance(item, list) else [item] for item in items]
    width = len(rows[0]) if rows else 0
    for i, row in enumerate(rows):
        if len(row) != width:
            raise DataError(
                f"{path}: {section}[{i}] (record {i + 1}) has {len(row)} values, expected {width}"
            )
        for j, value in enumerate(row):
            if isinstance(value, bool) or not isinstance(value, int | float):
                where = f"{path}: {section}[{i}] (record {i + 1}), column {j}"
                raise DataError(f"{where}: {value!r} is not a number")
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), width)


def _seed_sections(doc: Any, path: Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Validated (numeric rows, strings, mixed score rows) of a seed-format document."""
    if not isinstance(doc, dict) or not {"numeric_data", "string_data", "mixed_data"} & doc.keys():
        raise DataError(f"{path}: expected an object with numeric_data, string_data or mixed_data")
    numeric = _seed_numbers(_seed_section(doc, "numeric_data", path), path, "numeric_data")
    strings = _seed_section(doc, "string_data", path)
    for i, text in enumerate(strings):
        if not isinstance(text, str):
            raise DataError(f"{path}: string_data[{i}] (record {i + 1}): {text!r} is not a string")
    mixed_items = _seed_section(doc, "mixed_data", path)
    for i, item in enumerate(mixed_items):
        if not isinstance(item, dict) or "scores" not in item:
            raise DataError(f"{path}: mixed_data[{i}] (record {i + 1}): missing field 'scores'")
    mixed = _seed_numbers([m["scores"] for m in mixed_items], path, "mixed_data")
    return numeric, strings, mixed


def load_seed_json(
    path: str | Path,
    *,
    buckets: int = STRING_BUCKETS,
    missing: MissingPolicy = "reject",
    max_bytes: int = MAX_JSON_BYTES,
) -> EventData:
    """Load the seeds' ``{"numeric_data", "string_data", "mixed_data": [{"scores"}]}`` JSON.

    Strings are encoded as two numbers: their length (the seed's encoding) and a stable hash
    bucket in ``[0, buckets)`` (see :func:`string_bucket`), so equal-length strings differ.
    When every present section has the same number of entries, entry i of each is one
    record: columns ``numeric_*``, ``string_len``, ``string_bucket``, ``mixed_*``. Otherwise
    the sections cannot be aligned and, as in the seed, all values are stacked into one
    column ``value`` (numbers, then string lengths, then the flattened scores); a single
    column cannot carry a second encoding, so buckets are dropped in that case.
    """
    path = Path(path)
    numeric, strings, mixed = _seed_sections(_read_json(path, max_bytes), path)
    lengths = np.array([len(s) for s in strings], dtype=np.float64).reshape(-1, 1)
    counts = {len(x) for x in (numeric, strings, mixed) if len(x)}
    if not counts:
        raise DataError(f"{path}: all sections are empty; no data to load")
    if len(counts) > 1:
        matrix = np.concatenate([numeric.ravel(), lengths.ravel(), mixed.ravel()])[:, None]
        names = ["value"]
    else:
        bucket = np.array([[string_bucket(s, buckets)] for s in strings], dtype=np.float64)
        parts = [numeric, lengths, bucket.reshape(-1, 1), mixed]
        matrix = np.hstack([p for p in parts if p.size])
        names = [f"numeric_{j}" for j in range(numeric.shape[1])]
        names += ["string_len", "string_bucket"] if strings else []
        names += [f"mixed_{j}" for j in range(mixed.shape[1])]
    matrix[~np.isfinite(matrix)] = np.nan  # JSON's NaN/Infinity tokens
    matrix, mask = _fill_missing(matrix, names, _Where(path, unit="record"), missing)
    return EventData(matrix.astype(np.float32), names, None, path, mask)


def _records_frame(records: list[Any], path: Path) -> pd.DataFrame:
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise DataError(f"{path}: record {i + 1} is {type(record).__name__}, not an object")
    frame = pd.DataFrame.from_records(records)
    if "features" in frame.columns:
        widths = frame["features"].map(lambda v: len(v) if isinstance(v, list) else -1)
        bad = np.flatnonzero(widths.to_numpy() != widths.iloc[0])
        if widths.iloc[0] < 1 or bad.size:
            row = int(bad[0]) if bad.size else 0
            raise DataError(
                f"{path}: record {row + 1}, column 'features': width differs or not a list"
            )
        names = [f"f{j}" for j in range(int(widths.iloc[0]))]
        frame = pd.DataFrame(frame["features"].tolist(), columns=names).assign(
            **({"label": frame["label"]} if "label" in frame.columns else {})
        )
    return frame


def load_records_json(
    path: str | Path,
    *,
    missing: MissingPolicy = "reject",
    sort: bool = False,
    max_bytes: int = MAX_JSON_BYTES,
) -> LoadedData:
    """Load a JSON list of records (the wire shapes of ``schemas.records`` or plain objects).

    Series records carrying several ``series`` ids become a :class:`PanelData` keyed by id.
    """
    path = Path(path)
    records = _read_json(path, max_bytes)
    if not isinstance(records, list) or not records:
        raise DataError(f"{path}: expected a non-empty JSON list of records")
    frame = _records_frame(records, path).drop(columns=["kind", "schema_version"], errors="ignore")
    where = _Where(path, unit="record")
    kind = _kind_from_columns(list(frame.columns))
    if kind == "sales":
        return _panel_from_frame(frame, where, missing, sort)
    if kind != "series":
        extra = [c for c in ("source", "event_id", "timestamp") if c in frame.columns]
        return _events_from_frame(frame.drop(columns=extra), where, "label", missing)
    if "series" not in frame.columns or frame["series"].nunique() == 1:
        key = str(frame["series"].iloc[0]) if "series" in frame.columns else path.stem
        return _series_from_frame(frame, where, key, missing, sort)
    keys = _key_part(frame["series"], where, "series")
    return _keyed(frame, where, keys, SERIES_COLUMNS, missing, sort)


def _kind_from_columns(columns: list[str]) -> Kind:
    if set(SALES_COLUMNS) <= set(columns):
        return "sales"
    if set(SERIES_COLUMNS) <= set(columns):
        return "series"
    return "events"


def infer_kind(path: str | Path) -> Kind:
    """Guess the loader from the extension, then from the header or top-level JSON shape."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in _H5_SUFFIXES:
        return "events"
    if suffix == ".json":
        _check_size(path, MAX_JSON_BYTES)
        with path.open(encoding="utf-8", errors="replace") as handle:
            head = handle.read(4096).lstrip()[:1]
        return "records_json" if head == "[" else "seed_json"
    if suffix in _PARQUET_SUFFIXES:
        import pyarrow.parquet as pq

        return _kind_from_columns(list(pq.read_schema(path).names))
    _check_size(path, MAX_FILE_BYTES)
    return _kind_from_columns(_check_csv_header(path))


def _check_csv_header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        return [h.strip() for h in next(csv.reader(handle), [])]


def load(path: str | Path, kind: Kind | None = None, **options: Any) -> LoadedData:
    """Load any supported file; ``kind`` overrides inference, ``options`` go to the loader."""
    chosen = kind or infer_kind(path)
    if chosen == "series":
        return load_series(path, **options)
    if chosen == "sales":
        return load_panel(path, **options)
    if chosen == "events":
        return load_events(path, **options)
    if chosen == "seed_json":
        return load_seed_json(path, **options)
    if chosen == "records_json":
        return load_records_json(path, **options)
    raise ValueError(f"kind must be series, sales, events, seed_json or records_json: {chosen!r}")
