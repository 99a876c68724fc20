"""Seeded series of other shapes than tweet volumes, with NAB-style label windows: a check
that detection settings chosen on NAB realTweets and the artificial groups generalise.

Each *family* imitates a kind of feed an operator watches, with the anomaly that matters
there; none is seasonal in the same way as tweets, several are not seasonal at all::

    family    cadence  shape of the normal series           anomaly (each one labelled)
    cpu       5 min    AR(1) utilisation, no season         level shift up or down, 2-17 h
    leak      5 min    flat memory use with noise           a ramp over 5-17 h (a leak)
    sensor    5 min    slow random wander + weak daily      a drop over 2-7 h and back
    traffic   5 min    speed with two rush-hour dips        an incident: slow for 0.5-2 h
    price     1 h      lognormal, weakly daily              a run of 1-5 hours at 3-6x
    taxi      30 min   strong daily + weekend, Gaussian     a holiday-like day at 45-65%
    requests  5 min    daily Poisson counts, 2% bursts      an outage (zeros) or a 4x surge
    stuck     5 min    daily sensor with noise              flat (stuck) for 2.5-10 h

``magnitude`` scales every injected change (1: as listed, 0.5: half as large); each series
holds 1-3 anomalies after its first 15% (NAB's probationary period), and its label windows
are NAB's: 10% of the rows shared among the anomalies, each centred on an anomaly's start.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from offline_training.synthetic_series import AnomalyWindow, LabelledSeries

__all__ = ["METRIC_FAMILIES", "make_metric"]

# family: (minutes per row, rows)
METRIC_FAMILIES: Final[dict[str, tuple[int, int]]] = {
    "cpu": (5, 4032), "leak": (5, 4032), "sensor": (5, 4032), "traffic": (5, 2500),
    "price": (60, 1700), "taxi": (30, 4000), "requests": (5, 4032), "stuck": (5, 4032)}


def _normal(family: str, hours: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The series without anomalies; ``hours`` since the start, one per row."""
    n, day = hours.size, 2 * np.pi * hours / 24.0
    if family == "cpu":
        ar, shocks = np.zeros(n), rng.normal(0.0, 1.0, n)
        for i in range(1, n):
            ar[i] = 0.8 * ar[i - 1] + shocks[i]
        return 30.0 + 2.0 * ar
    if family == "leak":
        return 40.0 + rng.normal(0.0, 0.8, n)
    if family == "sensor":
        wander = 0.3 * np.cumsum(rng.normal(0.0, 0.15, n))
        daily = 1.5 * np.cos(day - 14 / 24 * 2 * np.pi)
        return np.asarray(80.0 + wander + daily + rng.normal(0, 0.5, n))
    if family == "traffic":
        clock = hours % 24
        dips = 15 * np.exp(-((clock - 8) ** 2) / 2) + 15 * np.exp(-((clock - 17.5) ** 2) / 2)
        return np.asarray(60.0 - dips + rng.normal(0.0, 3.0, n))
    if family == "price":
        return np.asarray(np.exp(np.log(0.5) + 0.2 * np.cos(day) + rng.normal(0.0, 0.25, n)))
    if family == "taxi":
        weekend = ((hours // 24) % 7 >= 5).astype(float)
        return (15000 * (1 + 0.6 * np.cos(day - 19 / 24 * 2 * np.pi)) * (1 + 0.1 * weekend)
                + rng.normal(0.0, 600.0, n))
    if family == "requests":
        counts = rng.poisson(50 * (1 + 0.5 * np.cos(day - 14 / 24 * 2 * np.pi))).astype(float)
        burst = rng.random(n) < 0.02
        counts[burst] *= rng.uniform(1.5, 3.0, int(burst.sum()))
        return counts
    if family == "stuck":
        return 50.0 + 5.0 * np.cos(day - 14 / 24 * 2 * np.pi) + rng.normal(0.0, 1.0, n)
    raise ValueError(f"unknown family {family!r}; choose from {sorted(METRIC_FAMILIES)}")


def _inject(family: str, v: np.ndarray, s: int, rng: np.random.Generator) -> int:
    """Change ``v`` from row ``s`` on, in place; return the rows changed."""
    if family == "cpu":
        rows = int(rng.integers(24, 200))
        v[s : s + rows] += rng.choice([1.0, -1.0]) * rng.uniform(10, 25)
    elif family == "leak":
        rows = int(rng.integers(60, 200))
        v[s : s + rows] += np.linspace(0.0, rng.uniform(8, 20), rows)
    elif family == "sensor":
        rows = int(rng.integers(20, 80))
        v[s : s + rows] -= np.sin(np.linspace(0, np.pi, rows)) * rng.uniform(8, 20)
    elif family == "traffic":
        rows = int(rng.integers(6, 24))
        v[s : s + rows] -= rng.uniform(15, 30)
    elif family == "price":
        rows = int(rng.integers(1, 6))
        v[s : s + rows] *= rng.uniform(3, 6)
    elif family == "taxi":
        rows = 48
        v[s : s + rows] *= rng.uniform(0.45, 0.65)
    elif family == "requests":
        rows = int(rng.integers(6, 30))
        v[s : s + rows] = 0.0 if rng.random() < 0.5 else 4.0 * v[s : s + rows]
    else:  # stuck
        rows = int(rng.integers(30, 120))
        v[s : s + rows] = v[s]
    return rows


def make_metric(family: str, seed: int = 0, magnitude: float = 1.0) -> LabelledSeries:
    """One labelled series of ``family`` (:data:`METRIC_FAMILIES`).

    Same family, seed and magnitude, same arrays. ``magnitude`` scales each injected change
    (the series with anomalies minus the one without). Raises ``ValueError`` for an unknown
    family.

    >>> s = make_metric("cpu", seed=0)
    >>> s.values.shape, len(s.anomalies) >= 1, s.anomalies[0].start >= 0.15 * s.values.size
    ((4032,), True, True)
    """
    if family not in METRIC_FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose from {sorted(METRIC_FAMILIES)}")
    minutes, n = METRIC_FAMILIES[family]
    rng = np.random.default_rng([seed, list(METRIC_FAMILIES).index(family)])
    hours = np.arange(n) * minutes / 60.0
    clean = _normal(family, hours, rng)
    values = clean.copy()
    count = int(rng.integers(1, 4))
    first = int(0.15 * n) + 50
    slot = (n - first) // count
    half = int(0.10 * n / count) // 2
    labels = np.zeros(n, dtype=np.int8)
    found = []
    for j in range(count):
        start = first + j * slot + int(rng.integers(slot // 5, slot // 2))
        rows = min(_inject(family, values, start, rng), n - start)
        labels[start : start + rows] = 1
        found.append(AnomalyWindow(start, start + rows - 1, family, max(0, start - half),
                                   min(n - 1, start + half)))
    values = clean + magnitude * (values - clean)
    stamps = pd.date_range("2015-03-01", periods=n, freq=f"{minutes}min")
    return LabelledSeries(family, stamps.to_numpy().astype("datetime64[ns]"), values, labels,
                          found)
