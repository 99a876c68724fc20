"""Feature vectors from HDF5: one (n, d) numeric dataset, with optional labels and names."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from offline_training.load_checks import Where, fill_missing
from offline_training.load_tables import SERIES_COLUMNS, events_from_frame, kind_from_columns
from offline_training.loaded_data import EventData, MissingPolicy
from stream_detector.exceptions import DataError

__all__ = ["H5_SUFFIXES", "load_hdf5_events"]

H5_SUFFIXES = frozenset({".h5", ".hdf5", ".hdf"})


def load_hdf5_events(path: Path, dataset: str | None, missing: MissingPolicy) -> EventData:
    """Feature vectors of one dataset (see :func:`offline_training.loaders.load_events`).

    A frame written by ``pandas.DataFrame.to_hdf`` (``format="fixed"`` keeps each dtype in
    its own block, ``"table"`` one table) is read whole through pandas: every column, named
    and in order, whatever its dtype; ``dataset`` names its key (default: the first).
    """
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({exc})") from exc
    with handle:
        frames = _pandas_keys(handle)
        key = (dataset or "").strip("/") or (frames[0] if frames else "")
        if key in frames:
            handle.close()
            return _pandas_events(path, key, missing)
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
    matrix, mask = fill_missing(matrix, names, Where(path, dataset=name), missing)
    return EventData(matrix.astype(np.float32), names, labels, path, mask)


def _pandas_keys(handle: h5py.File) -> list[str]:
    """Groups that pandas wrote (``to_hdf``): they carry a ``pandas_type`` attribute."""
    found: list[str] = []

    def visit(name: str, node: object) -> None:
        if isinstance(node, h5py.Group) and "pandas_type" in node.attrs:
            found.append(name)

    handle.visititems(visit)
    return sorted(found)


def _pandas_events(path: Path, key: str, missing: MissingPolicy) -> EventData:
    try:
        import tables  # noqa: F401  # pandas reads HDF5 through PyTables
    except ImportError:
        raise DataError(
            f"{path}: {key!r} was written by pandas.to_hdf; reading it needs PyTables "
            "(pip install tables), or save the frame as Parquet or CSV"
        ) from None
    frame = pd.read_hdf(path, key)
    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    if not isinstance(frame, pd.DataFrame) or frame.empty:
        raise DataError(f"{path}: {key!r} holds no rows of a table; expected a DataFrame")
    frame.columns = [str(c) for c in frame.columns]
    _refuse_records(path, key, frame)
    return events_from_frame(frame, Where(path, dataset=key), "label", missing)


def _refuse_records(path: Path, key: str, frame: pd.DataFrame) -> None:
    """A frame of records (a series or a sales panel) is not feature vectors, and HDF5 is
    read as nothing else: said with the way out (CSV or Parquet). A column of times is
    refused by :func:`events_from_frame`, for every format."""
    columns = list(frame.columns)
    if not set(SERIES_COLUMNS) <= set(columns):
        return
    raise DataError(f"{path}: {key!r} has the columns of a {kind_from_columns(columns, path)} "
                    "table; an HDF5 file is read as feature vectors (events), so save a series "
                    "or a sales panel as CSV or Parquet")


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
