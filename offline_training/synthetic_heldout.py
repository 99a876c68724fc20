"""Seeded metric-like series of five families, a generated stand-in for held-out domains.

The detector's settings were chosen on tweet volumes and NAB's artificial files. These
families resemble other monitoring domains **in shape only** (written from general
knowledge, not from any data set), so that a change can be checked for generalisation
without reading held-out data:

================  =======  ==========================================  =========================
family            cadence  normal behaviour                            labelled anomalies
================  =======  ==========================================  =========================
``cpu``           5 min    bounded 0-100 %, AR(1) noise, small daily   step change (+1 day),
                  jitter   cycle, benign one-row bursts                saturation at ~100 %
``sensor``        1 min    slow smooth drift, a machine cycle, little   fault level drop, stuck-at
                  gaps     noise                                       value, vibration
``traffic``       5 min    speed with weekday rush-hour dips           incident dip, a weekday
                  drops                                                without rush hours
``price``         10 min   log-price AR(1), Student-t (df 3) noise     regime change, price spike
                  jitter+gaps
``demand``        10 min   counts, daily + weekly season, Poisson       holiday (weekday like a
                                                                       Sunday), storm, surge
================  =======  ==========================================  =========================

Irregular sampling: "jitter" moves each timestamp by up to a share of the cadence, "drops"
removes single rows, "gaps" removes short runs (some longer than three steps, which the
worker judges as gaps). Anomalies are kept out of the first 15% (NAB's probationary period,
where the model trains) and labelled as NAB windows: 10% of the rows shared among the file's
anomalies, centred on each (as :mod:`offline_training.synthetic_series`). Same family and
seed, same arrays, bit for bit.

>>> s = make_heldout("demand", seed=0)
>>> len(s.values), sorted(a.kind for a in s.anomalies)
(4032, ['holiday', 'storm', 'surge'])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from offline_training.synthetic_series import AnomalyWindow, LabelledSeries, anomaly_slots

__all__ = ["FAMILIES", "HELDOUT_ANOMALIES", "make_heldout"]

_ROWS = 4032
_START = "2016-03-01 00:00:00"
_PROBATION = 0.15
_WINDOW_FRACTION = 0.10

Rng = np.random.Generator
# base(rng, days since start, hour of day, day of week) -> values (n,)
_Base = Callable[[Rng, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class _Family:
    cadence_s: float
    jitter: float  # timestamps moved by up to this share of the cadence
    drop: float  # share of rows removed as single rows
    gap_runs: int  # runs of 2-6 rows removed
    kinds: dict[str, int]  # anomaly kind -> rows it lasts


# -- normal behaviour ------------------------------------------------------------------------


def _ar1(rng: Rng, n: int, phi: float, sd: float) -> np.ndarray:
    shocks = rng.normal(0.0, sd * np.sqrt(1 - phi * phi), n)
    out = np.empty(n)
    out[0] = rng.normal(0.0, sd)
    for i in range(1, n):
        out[i] = phi * out[i - 1] + shocks[i]
    return out


def _cpu(rng: Rng, days: np.ndarray, hour: np.ndarray, dow: np.ndarray) -> np.ndarray:
    n = days.size
    base = 25.0 + 8.0 * np.cos(2 * np.pi * (hour - 15.0) / 24.0)
    bursts = (rng.random(n) < 0.01) * rng.uniform(8.0, 20.0, n)  # benign cron-like bursts
    out: np.ndarray = np.clip(base + _ar1(rng, n, 0.7, 4.0) + bursts, 0.0, 100.0)
    return out


def _sensor(rng: Rng, days: np.ndarray, hour: np.ndarray, dow: np.ndarray) -> np.ndarray:
    n = days.size
    drift = np.convolve(np.cumsum(rng.normal(0.0, 0.05, n + 240)), np.ones(240) / 240, "valid")
    cycle = 1.5 * np.sin(2 * np.pi * hour / 6.0)  # a 6-hour machine cycle
    return 60.0 + drift[:n] + cycle + rng.normal(0.0, 0.4, n)


def _rush(hour: np.ndarray, dow: np.ndarray) -> np.ndarray:
    """Speed lost to congestion (0-1): weekday dips around 8:00 and 17:30."""
    dip = np.exp(-0.5 * ((hour - 8.0) / 1.0) ** 2) + np.exp(-0.5 * ((hour - 17.5) / 1.2) ** 2)
    return np.where(dow < 5, dip, 0.15 * dip)


def _traffic(rng: Rng, days: np.ndarray, hour: np.ndarray, dow: np.ndarray) -> np.ndarray:
    speed = 62.0 * (1.0 - 0.45 * _rush(hour, dow))
    return speed * (1.0 + rng.normal(0.0, 0.05, days.size))


def _price(rng: Rng, days: np.ndarray, hour: np.ndarray, dow: np.ndarray) -> np.ndarray:
    n = days.size
    log_price = np.log(1.2) + _ar1(rng, n, 0.9, 0.08) + 0.05 * rng.standard_t(3, n)
    out: np.ndarray = np.exp(log_price)
    return out


def _demand_profile(hour: np.ndarray, dow: np.ndarray, sunday: np.ndarray) -> np.ndarray:
    """Rides per 10 minutes: weekday commute peaks and an evening peak; weekend late."""
    weekday = (0.3 + 0.8 * np.exp(-0.5 * ((hour - 8.5) / 1.5) ** 2)
               + 1.0 * np.exp(-0.5 * ((hour - 19.0) / 2.5) ** 2))
    weekend = 0.35 + 0.9 * np.exp(-0.5 * ((hour - 14.0) / 4.0) ** 2) + 0.4 * (hour < 3)
    off = (dow >= 5) | sunday
    return 300.0 * np.where(off, weekend, weekday) * np.where(dow == 4, 1.1, 1.0)


def _demand(rng: Rng, days: np.ndarray, hour: np.ndarray, dow: np.ndarray) -> np.ndarray:
    return rng.poisson(_demand_profile(hour, dow, np.zeros(days.size, bool))).astype(float)


_BASES: dict[str, _Base] = {"cpu": _cpu, "sensor": _sensor, "traffic": _traffic,
                            "price": _price, "demand": _demand}
_FAMILIES: dict[str, _Family] = {
    "cpu": _Family(300.0, 0.1, 0.0, 0, {"step_change": 288, "saturation": 36}),
    "sensor": _Family(60.0, 0.05, 0.0, 8,
                      {"fault_level": 240, "stuck_at": 180, "vibration": 60}),
    "traffic": _Family(300.0, 0.0, 0.01, 0, {"incident_dip": 18, "no_rush_hour": 288}),
    "price": _Family(600.0, 0.3, 0.02, 6, {"regime_change": 300, "price_spike": 2}),
    "demand": _Family(600.0, 0.0, 0.0, 0, {"holiday": 144, "storm": 36, "surge": 12}),
}
FAMILIES = tuple(_FAMILIES)
HELDOUT_ANOMALIES = {name: tuple(f.kinds) for name, f in _FAMILIES.items()}


# -- anomalies -------------------------------------------------------------------------------


def _inject(kind: str, v: np.ndarray, s: slice, t: tuple[np.ndarray, ...], rng: Rng) -> None:
    """Change ``v[s]`` in place; ``t`` is (days, hour, day of week) of every row."""
    n = s.stop - s.start
    _, hour, dow = (a[s] for a in t)
    if kind == "step_change":
        v[s] = np.clip(v[s] + 22.0, 0.0, 100.0)
    elif kind == "saturation":
        v[s] = np.clip(100.0 - np.abs(rng.normal(0.0, 1.0, n)), 0.0, 100.0)
    elif kind == "fault_level":
        v[s] -= 4.0
    elif kind == "stuck_at":
        v[s] = v[s.start - 1]
    elif kind == "vibration":
        v[s] += rng.normal(0.0, 2.0, n)
    elif kind == "incident_dip":
        v[s] = 15.0 * (1.0 + rng.normal(0.0, 0.1, n))
    elif kind == "no_rush_hour":
        v[s] = v[s] / (1.0 - 0.45 * _rush(hour, dow)) * (1.0 - 0.45 * _rush(hour, dow + 5))
    elif kind == "regime_change":
        v[s] *= 1.8
    elif kind == "price_spike":
        v[s] *= 4.0
    elif kind == "holiday":
        v[s] = rng.poisson(0.8 * _demand_profile(hour, dow, np.ones(n, bool))).astype(float)
    elif kind == "storm":
        v[s] = np.round(v[s] * 0.3)
    elif kind == "surge":
        v[s] = np.round(v[s] * 1.6)
    else:
        raise ValueError(f"unknown anomaly {kind!r}; choose from {HELDOUT_ANOMALIES}")


def _times(f: _Family, rng: Rng) -> pd.DatetimeIndex:
    """``_ROWS`` increasing timestamps at ``f``'s cadence, jittered, with rows removed."""
    extra = int(2 * _ROWS * f.drop) + 8 * f.gap_runs + 64  # enough rows left after removal
    steps = np.arange(_ROWS + extra, dtype=float)
    keep = rng.random(steps.size) >= f.drop
    for start in rng.integers(10, steps.size - 10, f.gap_runs):
        keep[start : start + int(rng.integers(2, 7))] = False
    steps = steps[keep][:_ROWS] + rng.uniform(-f.jitter, f.jitter, _ROWS)
    seconds = np.round(steps * f.cadence_s).astype(np.int64)
    return pd.Timestamp(_START) + pd.to_timedelta(seconds, unit="s")


def _start_in(kind: str, lo: int, hi: int, t: tuple[np.ndarray, ...], rng: Rng) -> int:
    """A holiday or a day without rush hours starts at midnight of a weekday; an incident
    away from rush hours; a storm or surge in the day; everything else anywhere in its slot."""
    days, hour, dow = t
    rows = np.arange(lo, hi + 1)
    if kind in ("holiday", "no_rush_hour"):
        ok = rows[(dow[rows] < 4) & (np.diff(np.floor(days), prepend=-1)[rows] > 0)]
    elif kind == "incident_dip":
        ok = rows[(hour[rows] > 10.5) & (hour[rows] < 14.5)]
    elif kind in ("storm", "surge"):  # in the day's busy hours, where they show
        ok = rows[(hour[rows] > 8.0) & (hour[rows] < 18.0)]
    else:
        ok = rows
    return int(rng.choice(ok)) if ok.size else int(rng.integers(lo, hi + 1))


def make_heldout(family: str, seed: int = 0) -> LabelledSeries:
    """One labelled series of ``family`` (``FAMILIES``), its key ``family``.

    Raises
    ------
    ValueError
        For an unknown family.
    """
    if family not in _FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose from {FAMILIES}")
    f = _FAMILIES[family]
    rng = np.random.default_rng([seed, FAMILIES.index(family)])
    stamps = _times(f, rng)
    days = (stamps - pd.Timestamp(_START).normalize()).total_seconds().to_numpy() / 86400.0
    t = (days, (days % 1.0) * 24.0, stamps.day_of_week.to_numpy())
    values = _BASES[family](rng, *t)
    kinds = list(f.kinds)
    rng.shuffle(kinds)
    lengths = [f.kinds[k] for k in kinds]
    half = int(_WINDOW_FRACTION * _ROWS / len(kinds)) // 2
    labels = np.zeros(_ROWS, dtype=np.int8)
    found = []
    for kind, (lo, hi), length in zip(
            kinds, anomaly_slots(_ROWS, lengths, _PROBATION, half + 1), lengths, strict=True):
        start = _start_in(kind, lo, hi, t, rng)
        _inject(kind, values, slice(start, start + length), t, rng)
        labels[start : start + length] = 1
        centre = start + length // 2
        window = (max(0, min(start, centre - half)),
                  min(_ROWS - 1, max(start + length - 1, centre + half)))
        found.append(AnomalyWindow(start, start + length - 1, kind, *window))
    return LabelledSeries(family, stamps.to_numpy().astype("datetime64[ns]"), values, labels,
                          found)
