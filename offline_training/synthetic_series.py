"""Seeded seasonal series with labelled injected anomalies, and the labels' NAB files.

Same seed and config, same arrays, bit for bit (one ``numpy.random.Generator`` per call).
Anomalies are kept out of the first ``probation`` fraction of each series (NAB scores no
detection there) and spaced so their label windows never overlap. Point labels mark exactly
the rows an injection changed; NAB-style windows are wider (``window_fraction`` of the rows,
shared among the anomalies, centred on each, as NAB's labelling does).

The other record kinds: :mod:`offline_training.synthetic_sales` (store x item panels, built
from :class:`LabelledSeries`) and :mod:`offline_training.synthetic_events` (collision-like
feature events).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "SERIES_ANOMALIES",
    "AnomalyWindow",
    "LabelledSeries",
    "SeriesConfig",
    "anomaly_slots",
    "make_series",
    "write_labels",
    "write_series_csv",
]

SERIES_ANOMALIES = ("spike", "dip", "level_shift", "trend_change", "variance_burst", "contextual")
# Rows each anomaly lasts; at 5-minute rows a level shift holds for 3 h, a trend change
# ramps up and back over 4 h, a variance burst or an out-of-season stretch lasts 2 h.
_SERIES_ROWS = {"spike": 1, "dip": 3, "level_shift": 36, "trend_change": 48}
_SERIES_ROWS |= {"variance_burst": 24, "contextual": 24}
_NAB_TIME = "%Y-%m-%d %H:%M:%S.%f"


@dataclass(frozen=True)
class AnomalyWindow:
    """Rows ``start..end`` (inclusive) changed by one injection of ``kind``; NAB window rows."""

    start: int
    end: int
    kind: str
    window_start: int
    window_end: int


@dataclass(frozen=True)
class LabelledSeries:
    """``timestamps`` datetime64[ns] (n,), ``values`` float64 (n,), ``labels`` int8 (n,)."""

    key: str
    timestamps: np.ndarray
    values: np.ndarray
    labels: np.ndarray
    anomalies: list[AnomalyWindow]

    def nab_windows(self) -> list[list[str]]:
        """``[[start, end], ...]`` as in NAB's ``combined_windows.json``."""

        def stamp(row: int) -> str:
            return pd.Timestamp(self.timestamps[row]).strftime(_NAB_TIME)

        return [[stamp(a.window_start), stamp(a.window_end)] for a in self.anomalies]


@dataclass(frozen=True)
class SeriesConfig:
    """A tweet-volume-like series: 14 days of 5-minute counts by default."""

    rows: int = 4032
    freq: str = "5min"
    start: str = "2015-02-26 00:00:00"
    level: float = 100.0
    daily_amplitude: float = 0.3  # fraction of level
    weekly_amplitude: float = 0.15
    trend_per_day: float = 0.5  # value units per day
    noise: float = 0.05  # standard deviation as a fraction of level
    magnitude: float = 8.0  # injected size in noise standard deviations
    anomalies: Sequence[str] = SERIES_ANOMALIES
    probation: float = 0.15
    window_fraction: float = 0.10


def anomaly_slots(
    rows: int, lengths: Sequence[int], probation: float, pad: int
) -> list[tuple[int, int]]:
    """Allowed start rows ``(lo, hi)`` (inclusive) for each anomaly: one equal slot each
    after probation, with ``pad`` rows kept free on both sides so label windows cannot overlap.

    Parameters
    ----------
    rows
        Length of the series (rows).
    lengths
        Rows each anomaly lasts, in placement order.
    probation
        Share (0-1) of the first rows kept free of anomalies (NAB scores no detection there).
    pad
        Rows kept free on each side of an anomaly inside its slot.

    Returns
    -------
    list of tuple of int
        One ``(lo, hi)`` start-row range per entry of ``lengths``.

    Raises
    ------
    ValueError
        When the rows after probation cannot hold every anomaly with its padding.

    Examples
    --------
    >>> anomaly_slots(100, [1, 1], probation=0.2, pad=2)
    [(22, 57), (62, 97)]
    """
    first = int(np.ceil(probation * rows))
    slot = (rows - first) // max(len(lengths), 1)
    bounds = []
    for j, length in enumerate(lengths):
        lo, hi = first + j * slot + pad, first + (j + 1) * slot - length - pad
        if hi < lo:
            raise ValueError(f"{rows} rows are too few for {len(lengths)} anomalies; add rows")
        bounds.append((lo, hi))
    return bounds


def _window(start: int, length: int, half: int, rows: int) -> tuple[int, int]:
    centre = start + length // 2
    return max(0, min(start, centre - half)), min(rows - 1, max(start + length - 1, centre + half))


def _seasonal(stamps: pd.DatetimeIndex, cfg: SeriesConfig, shift_days: float = 0.0) -> np.ndarray:
    """Level x (1 + daily + weekly) + trend, optionally read ``shift_days`` later in season."""
    days = (stamps - stamps[0]).total_seconds().to_numpy() / 86400.0
    hour = (stamps.hour + stamps.minute / 60.0).to_numpy() + 24.0 * shift_days
    week_day = stamps.day_of_week.to_numpy() + hour / 24.0
    daily = cfg.daily_amplitude * np.cos(2 * np.pi * (hour - 14.0) / 24.0)  # mid-afternoon peak
    weekly = cfg.weekly_amplitude * np.cos(2 * np.pi * (week_day - 2.5) / 7.0)  # mid-week peak
    return cfg.level * (1.0 + daily + weekly) + cfg.trend_per_day * days


def _inject(
    kind: str,
    values: np.ndarray,
    span: slice,
    cfg: SeriesConfig,
    ctx: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Change ``values[span]`` in place; ``ctx`` is the series at the opposite season."""
    size = cfg.magnitude * cfg.noise * cfg.level
    length = span.stop - span.start
    if kind == "spike":
        values[span] += size
    elif kind == "dip":
        values[span] -= size
    elif kind == "level_shift":
        values[span] += 0.6 * size
    elif kind == "trend_change":
        up, down = np.linspace(0, 1, length - length // 2), np.linspace(1, 0, length // 2)
        values[span] += size * np.concatenate([up, down])  # slope change, then back
    elif kind == "variance_burst":
        values[span] += rng.normal(0.0, 4.0 * cfg.noise * cfg.level, length)
    elif kind == "contextual":
        values[span] = ctx[span] + rng.normal(0.0, cfg.noise * cfg.level, length)
    else:
        raise ValueError(f"unknown anomaly {kind!r}; choose from {SERIES_ANOMALIES}")


def make_series(
    config: SeriesConfig | None = None, seed: int = 0, key: str = "synthetic"
) -> LabelledSeries:
    """Seasonal (daily + weekly) series with trend and noise and labelled injected anomalies.

    Contextual anomalies are placed at the daily trough and replaced by the daily peak's
    values: each value is ordinary for the series, only wrong for its time of day.
    """
    cfg = config or SeriesConfig()
    rng = np.random.default_rng(seed)
    stamps = pd.date_range(cfg.start, periods=cfg.rows, freq=cfg.freq)
    values = _seasonal(stamps, cfg) + rng.normal(0.0, cfg.noise * cfg.level, cfg.rows)
    opposite = _seasonal(stamps, cfg, shift_days=0.5)
    kinds = list(cfg.anomalies)
    rng.shuffle(kinds)
    lengths = [_SERIES_ROWS.get(k, 1) for k in kinds]
    half = int(cfg.window_fraction * cfg.rows / max(len(kinds), 1)) // 2
    bounds = anomaly_slots(cfg.rows, lengths, cfg.probation, half + 1)
    gap = opposite - _seasonal(stamps, cfg)  # > 0 where the other season is higher
    labels = np.zeros(cfg.rows, dtype=np.int8)
    found: list[AnomalyWindow] = []
    for kind, (lo, hi), length in zip(kinds, bounds, lengths, strict=True):
        if kind == "contextual":  # the deepest trough of the slot, where peak values are wrong
            start = lo + int(np.argmax(gap[lo : hi + 1]))
        else:
            start = int(rng.integers(lo, hi + 1))
        span = slice(start, start + length)
        _inject(kind, values, span, cfg, opposite, rng)
        labels[span] = 1
        window = _window(start, length, half, cfg.rows)
        found.append(AnomalyWindow(start, start + length - 1, kind, *window))
    return LabelledSeries(key, stamps.to_numpy().astype("datetime64[ns]"), values, labels, found)


def write_series_csv(path: str | Path, series: LabelledSeries) -> Path:
    """Write ``timestamp,value`` in NAB's layout (``2015-02-26 21:42:53``)."""
    path = Path(path)
    stamps = pd.DatetimeIndex(series.timestamps).strftime("%Y-%m-%d %H:%M:%S")
    pd.DataFrame({"timestamp": stamps, "value": series.values}).to_csv(path, index=False)
    return path


def write_labels(
    path: str | Path, labelled: Mapping[str, LabelledSeries], kinds_path: str | Path | None = None
) -> list[Path]:
    """Write NAB ``combined_windows.json`` (``{name: [[start, end], ...]}``) and, when
    ``kinds_path`` is given, ``{name: [{start, end, kind}, ...]}`` with each window's type."""
    path = Path(path)
    windows = {name: s.nab_windows() for name, s in labelled.items()}
    path.write_text(json.dumps(windows, indent=2) + "\n", encoding="utf-8")
    written = [path]
    if kinds_path is not None:
        kinds = {
            name: [
                {"start": w[0], "end": w[1], "kind": a.kind}
                for w, a in zip(windows[name], s.anomalies, strict=True)
            ]
            for name, s in labelled.items()
        }
        Path(kinds_path).write_text(json.dumps(kinds, indent=2) + "\n", encoding="utf-8")
        written.append(Path(kinds_path))
    return written
