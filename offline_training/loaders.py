"""Load training history into typed arrays; every bad input is a DataError that says where.

Formats: NAB-style series (``timestamp,value``), sales panels (``date,store,item,sales``),
fixed-width feature vectors (CSV, Parquet, HDF5), the seeds' JSON of numeric/string/mixed data
and JSON lists of records. :func:`load` picks the loader for a file; the loaders live with
their format (:mod:`.load_tables`, :mod:`.load_hdf5`, :mod:`.load_json`), the checks they
share in :mod:`.load_checks` and the types they return in :mod:`.loaded_data`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from offline_training.load_checks import MAX_FILE_BYTES, MAX_JSON_BYTES, check_size
from offline_training.load_csv import check_text, csv_header
from offline_training.load_hdf5 import H5_SUFFIXES, load_hdf5_events
from offline_training.load_json import (
    JSON_LINES_SUFFIXES,
    is_json_lines,
    load_records_json,
    load_seed_json,
)
from offline_training.load_tables import (
    PARQUET_SUFFIXES,
    events_from_frame,
    kind_from_columns,
    load_panel,
    load_series,
    read_parquet,
    read_table,
)
from offline_training.loaded_data import EventData, Kind, LoadedData, MissingPolicy
from schemas.kinds import RECORD_KINDS
from stream_detector.exceptions import DataError

__all__ = ["infer_kind", "load", "load_events"]

# options of the loaders of timed rows, which feature-vector loaders do not take
_TIME_OPTIONS = frozenset({"strict_time", "sort"})
# fields that make a JSON object a record (schemas.records), not the seeds' document
_RECORD_FIELDS = frozenset({"kind", "series", "timestamp", "date", "features"})


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
    if path.suffix.lower() in H5_SUFFIXES:
        check_size(path, max_bytes)
        return load_hdf5_events(path, dataset, missing)
    frame, where = read_table(path, max_bytes)
    return events_from_frame(frame, where, label_column, missing)


def infer_kind(path: str | Path) -> Kind:
    """Guess the loader from the extension, then from the header or top-level JSON shape."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in H5_SUFFIXES:
        return "events"
    if suffix in JSON_LINES_SUFFIXES:
        return "records_json"
    if suffix == ".json":
        check_size(path, MAX_JSON_BYTES)
        with path.open(encoding="utf-8-sig", errors="replace") as handle:
            head = handle.read(65536)
        if head.lstrip()[:1] == "[" or is_json_lines(head):
            return "records_json"
        # one object: a single record (as one Kafka message holds), else the seeds' document
        return "records_json" if _RECORD_FIELDS & set(_top_keys(head)) else "seed_json"
    if suffix in PARQUET_SUFFIXES:
        check_size(path, MAX_FILE_BYTES)
        return kind_from_columns(list(read_parquet(path, schema_only=True).columns), path)
    check_size(path, MAX_FILE_BYTES)
    check_text(path)
    return kind_from_columns(csv_header(path), path)


def _top_keys(head: str) -> list[str]:
    """Keys of a JSON object's first level (all of them when ``head`` is the whole
    document; else the record fields ``head`` names, a quick look)."""
    try:
        doc = json.loads(head)
    except json.JSONDecodeError:
        return [k for k in _RECORD_FIELDS if f'"{k}"' in head]
    return list(doc) if isinstance(doc, dict) else []


def load(path: str | Path, kind: Kind | None = None, **options: Any) -> LoadedData:
    """Load any supported file; ``kind`` overrides inference, ``options`` go to the loader.

    A JSON file's own shape picks its loader even when ``kind`` names a record kind
    (``score`` passes the model's): records in JSON are never read as a CSV table. Feature
    vectors have no times, so ``strict_time`` and ``sort`` do not apply to them.
    """
    suffix = Path(path).suffix.lower()
    if suffix in JSON_LINES_SUFFIXES | {".json"} and kind in RECORD_KINDS:
        kind = None
    if suffix in H5_SUFFIXES and kind not in (None, "events"):
        raise DataError(f"{path}: HDF5 files hold feature vectors (events), not {kind} "
                        f"records; give {kind} history as CSV, Parquet or JSON")
    chosen = kind or infer_kind(path)
    if chosen in ("events", "seed_json"):  # rows without time: the time options do not apply
        options = {k: v for k, v in options.items() if k not in _TIME_OPTIONS}
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
