"""Load training history into typed arrays; every bad input is a DataError that says where.

Formats: NAB-style series (``timestamp,value``), sales panels (``date,store,item,sales``),
fixed-width feature vectors (CSV, Parquet, HDF5), the seeds' JSON of numeric/string/mixed data
and JSON lists of records. :func:`load` picks the loader for a file; the loaders live with
their format (:mod:`.load_tables`, :mod:`.load_hdf5`, :mod:`.load_json`), the checks they
share in :mod:`.load_checks` and the types they return in :mod:`.loaded_data`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from offline_training.load_checks import MAX_FILE_BYTES, MAX_JSON_BYTES, check_size
from offline_training.load_hdf5 import H5_SUFFIXES, load_hdf5_events
from offline_training.load_json import load_records_json, load_seed_json
from offline_training.load_tables import (
    PARQUET_SUFFIXES,
    csv_header,
    events_from_frame,
    kind_from_columns,
    load_panel,
    load_series,
    read_table,
)
from offline_training.loaded_data import EventData, Kind, LoadedData, MissingPolicy

__all__ = ["infer_kind", "load", "load_events"]


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
    if suffix == ".json":
        check_size(path, MAX_JSON_BYTES)
        with path.open(encoding="utf-8-sig", errors="replace") as handle:
            head = handle.read(4096).lstrip()[:1]
        return "records_json" if head == "[" else "seed_json"
    if suffix in PARQUET_SUFFIXES:
        import pyarrow.parquet as pq

        return kind_from_columns(list(pq.read_schema(path).names), path)
    check_size(path, MAX_FILE_BYTES)
    return kind_from_columns(csv_header(path), path)


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
