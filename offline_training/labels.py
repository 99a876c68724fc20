"""Labelled anomaly windows for ``evaluate``: which windows belong to which key of a file.

Three shapes of label file are read, all JSON objects of name -> list of ``[start, end]``
windows (inclusive; times as ISO 8601 text or Unix epoch numbers):

- NAB's ``combined_windows.json``: names are files (``realTweets/Twitter_volume_AAPL.csv``);
  the windows of the evaluated file belong to its one series;
- per key: names are the file's series ids (``{"1/7": [...], "cpu": [...]}``), for files of
  several series (a ``series`` column, sales' store/item);
- the demo's ``labels.json`` (``{"generator": ..., "labels": {KEY: [...]}, ...}``): per key,
  times in epoch nanoseconds.

Epoch numbers are read by magnitude, as the data loaders read time columns: seconds below
1e11, milliseconds below 1e14, microseconds below 1e17, else nanoseconds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from stream_detector.exceptions import DataError

__all__ = ["Windows", "key_windows", "read_labels"]

Windows = list[tuple[pd.Timestamp, pd.Timestamp]]

_EPOCH_UNITS = ((1e11, "s"), (1e14, "ms"), (1e17, "us"))


def _time(value: Any) -> pd.Timestamp:
    """One window edge: ISO text, or epoch seconds/ms/us/ns by magnitude (see module)."""
    if isinstance(value, bool):
        raise TypeError(f"{value!r} is not a time")
    if isinstance(value, int | float):
        unit = next((u for bound, u in _EPOCH_UNITS if abs(value) < bound), "ns")
        return pd.Timestamp(value, unit=unit)
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a time")
    stamp = pd.Timestamp(value)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp


def read_labels(path: Path) -> dict[str, Windows]:
    """Every entry of a label file (see the module for its shapes), name -> windows.

    Raises
    ------
    DataError
        The file cannot be read, is not an object of name -> windows, or a window is not
        a ``[start, end]`` pair of times with ``start <= end``.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read label windows ({exc})") from exc
    if isinstance(raw, dict) and isinstance(raw.get("labels"), dict) and "generator" in raw:
        raw = raw["labels"]  # the demo's own labels.json
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected an object of file name or key -> list of "
                        "[start, end] windows (as NAB's combined_windows.json)")
    table: dict[str, Windows] = {}
    for name, pairs in raw.items():
        try:
            windows = [(_time(a), _time(b)) for a, b in pairs]
        except (TypeError, ValueError) as exc:
            raise DataError(f"{path}: windows of {name!r} must be [start, end] pairs of "
                            f"ISO 8601 times or epoch numbers ({exc})") from exc
        for start, end in windows:
            if end < start:
                raise DataError(f"{path}: window [{start}, {end}] of {name!r} ends before "
                                "it starts")
        table[str(name)] = windows
    return table


def key_windows(table: dict[str, Windows], labels: Path, data: Path,
                keys: Sequence[str]) -> dict[str, Windows]:
    """The windows of each labelled key of ``data`` (whose series are ``keys``).

    Entries named by the keys themselves (or by a file of that name: NAB's
    ``realTweets/KEY.csv`` names series ``KEY`` of a file joining several) win; otherwise
    the entry of ``data``'s file name (NAB's way), which needs a file of one series. Keys
    the labels do not name are left out (not judged: no alert of theirs is called false).

    Raises
    ------
    DataError
        No entry names a key or the file, or the file's entry would stand for several
        series (one key's windows would judge the others' alerts).
    """
    named = {Path(name).stem: windows for name, windows in table.items()}  # NAB's files
    named.update(table)
    by_key = {k: named[k] for k in keys if k in named}
    if by_key:
        return by_key
    for name, windows in table.items():
        if Path(name).name == data.name or name == data.stem:
            if len(keys) > 1:
                raise DataError(
                    f"{labels} gives {name!r} windows for the whole file, but "
                    f"{data.name} holds {len(keys):,} series (e.g. "
                    f"{', '.join(map(repr, keys[:3]))}): give windows per key "
                    '({"KEY": [[start, end], ...]}, as the demo\'s labels.json) or '
                    "evaluate one series with --key")
            return {keys[0]: windows} if keys else {}
    entries = (f"its entries are e.g. {', '.join(map(repr, list(table)[:3]))}" if table
               else "it holds no entries")
    raise DataError(f"{labels} has no windows for {data.name} or its series; {entries}, the "
                    f"file's series e.g. {', '.join(map(repr, keys[:3]))}")
