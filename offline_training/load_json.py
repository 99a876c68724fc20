"""JSON history: the seeds' documents of numeric, string and mixed data, and record lists.

JSON is parsed whole, with a Python object per value, so its size limit is lower than the
tables'. Record lists (the wire shapes of ``schemas.records`` or plain objects) become
frames and go through the same converters as CSV and Parquet.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pandas as pd

from offline_training.load_checks import (
    MAX_JSON_BYTES,
    Where,
    canonical_columns,
    check_size,
    fill_missing,
)
from offline_training.load_tables import (
    events_from_frame,
    kind_from_columns,
    panel_from_frame,
    series_table,
)
from offline_training.loaded_data import EventData, LoadedData, MissingPolicy
from schemas.kinds import RECORD_KINDS
from schemas.records import SeriesPoint
from stream_detector.exceptions import DataError

# the record version this package reads: the one home is the records' schema_version field
SCHEMA_VERSION: int = get_args(SeriesPoint.model_fields["schema_version"].annotation)[0]

__all__ = [
    "JSON_LINES_SUFFIXES",
    "STRING_BUCKETS",
    "is_json_lines",
    "load_records_json",
    "load_seed_json",
    "string_bucket",
]

STRING_BUCKETS = 1024


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


def _read_text(path: Path, max_bytes: int) -> str:
    check_size(path, max_bytes)
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8") from exc


def _read_json(path: Path, max_bytes: int) -> Any:
    try:
        return json.loads(_read_text(path, max_bytes))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); fix the syntax") from exc


JSON_LINES_SUFFIXES = frozenset({".jsonl", ".ndjson"})


def is_json_lines(text: str) -> bool:
    r"""Whether ``text`` is JSON lines (one JSON value a line, at least its first line
    complete on its own) rather than one JSON document.

    >>> is_json_lines('{"a": 1}\n{"a": 2}\n'), is_json_lines('{\n "a": 1\n}')
    (True, False)
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return False
    try:
        json.loads(lines[0])
    except json.JSONDecodeError:
        return False
    return True


def _read_records(path: Path, max_bytes: int) -> list[Any]:
    """Records of a JSON list, one JSON object, or JSON lines (each line a record or a list
    of records: one Kafka message as the worker receives it)."""
    text = _read_text(path, max_bytes)
    if path.suffix.lower() not in JSON_LINES_SUFFIXES and not is_json_lines(text):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON ({exc}); fix the syntax") from exc
        if isinstance(doc, dict) and len(doc) == 1:
            (name, inner), = doc.items()
            if isinstance(inner, list) and inner and all(isinstance(r, dict) for r in inner):
                raise DataError(
                    f"{path}: one JSON object holding a list of {len(inner):,} records under "
                    f"{name!r}; give the list itself (a JSON array of records, or JSON lines: "
                    "one record, or list of records, a line)")
        return doc if isinstance(doc, list) else [doc]
    records: list[Any] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            message = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}: line {number}: not valid JSON ({exc.msg}, column {exc.colno}); "
                "JSON lines hold one record, or one list of records, per line"
            ) from exc
        records.extend(message if isinstance(message, list) else [message])
    return records


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
    matrix, mask = fill_missing(matrix, names, Where(path, unit="record"), missing)
    return EventData(matrix.astype(np.float32), names, None, path, mask)


def _records_frame(records: list[Any], path: Path) -> pd.DataFrame:
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise DataError(f"{path}: record {i + 1} is {type(record).__name__}, not an object")
    frame = pd.DataFrame.from_records(records)
    frame.columns = canonical_columns(list(frame.columns))
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


def _check_kinds(records: list[Any], path: Path) -> None:
    """The wire fields the frame drops, checked as a worker checks them: ``kind`` from the
    closed list and one kind per file, ``schema_version`` the current one (else a worker
    dead-letters the record as ``unknown_kind`` / ``schema_version``)."""
    seen: dict[str, int] = {}
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            continue  # named by _records_frame
        kind = record.get("kind")
        if kind is not None and kind not in RECORD_KINDS:
            raise DataError(f"{path}: record {i + 1}: kind {kind!r} is not one of "
                            f"{', '.join(RECORD_KINDS)} (a worker dead-letters it as "
                            "unknown_kind)")
        version = record.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise DataError(f"{path}: record {i + 1}: schema_version {version!r} is not "
                            f"{SCHEMA_VERSION}, the version this stream-detector reads")
        if kind is not None:
            seen.setdefault(kind, i)
    if len(seen) > 1:
        (first, _), (other, at) = list(seen.items())[:2]  # in file order
        raise DataError(f"{path}: record {at + 1} is {other}, earlier ones {first}; one file "
                        "holds records of one kind")


def load_records_json(
    path: str | Path,
    *,
    missing: MissingPolicy = "reject",
    sort: bool = False,
    strict_time: bool = False,
    max_bytes: int = MAX_JSON_BYTES,
) -> LoadedData:
    """Load a JSON list of records (the wire shapes of ``schemas.records`` or plain objects).

    The file holds a JSON list of records, one record, or JSON lines (one record or list of
    records a line, as messages on the input topic; ``.jsonl``/``.ndjson``, or any ``.json``
    file whose first line is a complete JSON value). Series records carrying several
    ``series`` ids become a :class:`PanelData` keyed by id.
    """
    path = Path(path)
    records = _read_records(path, max_bytes)
    if not records:
        raise DataError(f"{path}: expected a non-empty JSON list of records")
    _check_kinds(records, path)
    # "imputed" stays: the series and sales converters keep the producer's flag
    frame = _records_frame(records, path).drop(columns=["kind", "schema_version"],
                                               errors="ignore")
    where = Where(path, unit="record")
    kind = kind_from_columns(list(frame.columns), path)
    if kind == "sales":
        return panel_from_frame(frame, where, missing, sort, strict_time)
    if kind != "series":
        extra = [c for c in ("source", "event_id", "timestamp", "imputed") if c in frame.columns]
        return events_from_frame(frame.drop(columns=extra), where, "label", missing)
    return series_table(frame, where, path.stem, missing, sort, strict_time)
