"""Seeded daily store x item sales panels with labelled stock-outs and data errors.

Same seed and config, same arrays, bit for bit (one ``numpy.random.Generator`` per call).
Each key is a :class:`~offline_training.synthetic_series.LabelledSeries` whose anomalies
are placed as the series generator places them (after probation, never overlapping: see
:func:`~offline_training.synthetic_series.anomaly_slots`); promotions are normal uplifts,
not anomalies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from offline_training.synthetic_series import AnomalyWindow, LabelledSeries, anomaly_slots

__all__ = ["LabelledPanel", "SalesConfig", "make_sales", "write_panel_csv"]


@dataclass(frozen=True)
class SalesConfig:
    """Daily store x item unit sales, two years by default (the Kaggle demand data's shape)."""

    stores: int = 3
    items: int = 4
    days: int = 730
    start: str = "2016-01-01"
    weekly_amplitude: float = 0.25
    yearly_amplitude: float = 0.2
    promotion_rate: float = 0.03  # chance that a promotion starts on a given day
    promotion_uplift: float = 0.6  # +60% during a promotion: normal, not an anomaly
    stockouts: int = 1  # per key: zero sales for 3-7 days
    errors: int = 2  # per key: one day of x10, negated, or spiked sales
    probation: float = 0.15


_ERRORS = ("x10", "negative", "spike")


@dataclass(frozen=True)
class LabelledPanel:
    """One :class:`LabelledSeries` per ``"store/item"`` key and each key's promotion days."""

    series: dict[str, LabelledSeries]
    promotions: dict[str, np.ndarray]


def _sales_key(
    cfg: SalesConfig, rng: np.random.Generator, key: str
) -> tuple[LabelledSeries, np.ndarray]:
    stamps = pd.date_range(cfg.start, periods=cfg.days, freq="D")
    weekly = cfg.weekly_amplitude * np.cos(2 * np.pi * (stamps.day_of_week.to_numpy() - 5) / 7)
    yearly = cfg.yearly_amplitude * np.cos(
        2 * np.pi * (stamps.day_of_year.to_numpy() - 180) / 365.25
    )
    starts = rng.random(cfg.days) < cfg.promotion_rate
    promo = np.convolve(starts, np.ones(5), mode="full")[: cfg.days] > 0  # 5-day promotions
    mean = rng.uniform(10.0, 60.0) * (1 + weekly + yearly) * (1 + cfg.promotion_uplift * promo)
    sales = rng.poisson(np.maximum(mean, 0.1)).astype(np.float64)
    kinds = ["stockout"] * cfg.stockouts + [str(k) for k in rng.choice(_ERRORS, cfg.errors)]
    rng.shuffle(kinds)
    lengths = [int(rng.integers(3, 8)) if k == "stockout" else 1 for k in kinds]
    labels = np.zeros(cfg.days, dtype=np.int8)
    found = []
    for kind, (lo, hi), length in zip(
        kinds, anomaly_slots(cfg.days, lengths, cfg.probation, 2), lengths, strict=True
    ):
        start = int(rng.integers(lo, hi + 1))
        span = slice(start, start + length)
        # max(., 1): a day that happened to sell nothing must still change when corrupted
        if kind == "stockout":
            sales[span] = 0.0
        elif kind == "x10":
            sales[span] = 10.0 * np.maximum(sales[span], 1.0)
        elif kind == "negative":
            sales[span] = -np.maximum(sales[span], 1.0)
        else:
            sales[span] += 8.0 * np.sqrt(mean[span]) + 5.0 * mean[span]
        labels[span] = 1
        found.append(AnomalyWindow(start, start + length - 1, kind, start, start + length - 1))
    series = LabelledSeries(key, stamps.to_numpy().astype("datetime64[ns]"), sales, labels, found)
    return series, promo


def make_sales(config: SalesConfig | None = None, seed: int = 0) -> LabelledPanel:
    """Sales panel with weekly and yearly seasonality; promotions are normal uplifts, while
    stock-outs (several zero days) and data errors (x10, negative, spike) are labelled."""
    cfg = config or SalesConfig()
    rng = np.random.default_rng(seed)
    series: dict[str, LabelledSeries] = {}
    promotions: dict[str, np.ndarray] = {}
    for store in range(1, cfg.stores + 1):
        for item in range(1, cfg.items + 1):
            key = f"{store}/{item}"
            series[key], promotions[key] = _sales_key(cfg, rng, key)
    return LabelledPanel(series, promotions)


def write_panel_csv(path: str | Path, panel: LabelledPanel) -> Path:
    """Write ``date,store,item,sales`` rows, key by key, each in date order."""
    path = Path(path)
    frames = []
    for key, s in panel.series.items():
        store, item = key.split("/")
        dates = pd.DatetimeIndex(s.timestamps).strftime("%Y-%m-%d")
        frames.append(
            pd.DataFrame({"date": dates, "store": store, "item": item, "sales": s.values})
        )
    pd.concat(frames).to_csv(path, index=False)
    return path
