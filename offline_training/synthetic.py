"""Seeded generators of every record kind, with the anomalies they inject labelled.

Same seed and config, same arrays, bit for bit (one ``numpy.random.Generator`` per call).
Anomalies are kept out of the first ``probation`` fraction of each series (NAB scores no
detection there) and spaced so their label windows never overlap. Point labels mark exactly
the rows an injection changed; NAB-style windows are wider (``window_fraction`` of the rows,
shared among the anomalies, centred on each, as NAB's labelling does).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

__all__ = [
    "EVENT_FEATURES",
    "SERIES_ANOMALIES",
    "AnomalyWindow",
    "EventsConfig",
    "LabelledEvents",
    "LabelledPanel",
    "LabelledSeries",
    "SalesConfig",
    "SeriesConfig",
    "leading_pair_mass",
    "make_events",
    "make_sales",
    "make_series",
    "write_events",
    "write_labels",
    "write_panel_csv",
    "write_series_csv",
]

SERIES_ANOMALIES = ("spike", "dip", "level_shift", "trend_change", "variance_burst", "contextual")
# Rows each anomaly lasts; at 5-minute rows a level shift holds for 3 h, a trend change
# ramps up and back over 4 h, a variance burst or an out-of-season stretch lasts 2 h.
_SERIES_ROWS = {"spike": 1, "dip": 3, "level_shift": 36, "trend_change": 48}
_SERIES_ROWS |= {"variance_burst": 24, "contextual": 24}
_PARTICLES = (("met", 1), ("e", 4), ("mu", 4), ("jet", 10))
EVENT_FEATURES = [
    f"{name}{i + 1 if count > 1 else ''}_{var}"
    for name, count in _PARTICLES
    for i in range(count)
    for var in ("pt", "eta", "phi")
]
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


def _slots(rows: int, lengths: Sequence[int], probation: float, pad: int) -> list[tuple[int, int]]:
    """Allowed start rows ``(lo, hi)`` for each anomaly: one equal slot each after probation,
    with ``pad`` rows kept free on both sides so label windows cannot overlap."""
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
    bounds = _slots(cfg.rows, lengths, cfg.probation, half + 1)
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
        kinds, _slots(cfg.days, lengths, cfg.probation, 2), lengths, strict=True
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


@dataclass(frozen=True)
class EventsConfig:
    """Collision-like events: Standard-Model-ish background plus a narrow resonance."""

    events: int = 10_000
    signal_fraction: float = 0.01
    mass: float = 500.0  # GeV, resonance mass
    width: float = 25.0  # GeV, Gaussian width of the peak
    channel: str = "dijet"  # "dijet", "dielectron" or "dimuon"
    jet_rate: float = 3.0  # Poisson mean multiplicities
    electron_rate: float = 0.3
    muon_rate: float = 0.3
    jet_pt: tuple[float, float] = (20.0, 40.0)  # threshold, exponential slope (GeV)
    lepton_pt: tuple[float, float] = (10.0, 25.0)
    met_pt: float = 30.0


@dataclass(frozen=True)
class LabelledEvents:
    """``features`` float32 (n, 57) in :data:`EVENT_FEATURES` order; ``labels`` 1 = signal."""

    features: np.ndarray
    labels: np.ndarray
    names: list[str] = field(default_factory=lambda: list(EVENT_FEATURES))


def _objects(
    rng: np.random.Generator, n: int, slots: int, rate: float, pt: tuple[float, float], eta: float
) -> np.ndarray:
    """(n, slots, 3) of (pt, eta, phi), pT-ordered, zero padded past the multiplicity."""
    count = np.minimum(rng.poisson(rate, n), slots)
    present = np.arange(slots) < count[:, None]
    pts = np.where(present, pt[0] + rng.exponential(pt[1], (n, slots)), 0.0)
    pts = -np.sort(-pts, axis=1)
    kept = pts > 0
    etas = np.where(kept, np.clip(rng.normal(0.0, eta / 2, (n, slots)), -eta, eta), 0.0)
    phis = np.where(kept, rng.uniform(-np.pi, np.pi, (n, slots)), 0.0)
    return np.stack([pts, etas, phis], axis=-1)


def _resonance(
    rng: np.random.Generator, n: int, mass: float, width: float, eta: float
) -> np.ndarray:
    """(n, 2, 3) back-to-back pairs whose invariant mass is drawn around ``mass``."""
    m = np.abs(rng.normal(mass, width, n))
    eta1 = np.clip(rng.normal(0.0, 0.8, n), -eta, eta)
    eta2 = np.clip(rng.normal(0.0, 0.8, n), -eta, eta)
    phi1 = rng.uniform(-np.pi, np.pi, n)
    phi2 = np.angle(np.exp(1j * (phi1 + np.pi)))
    # m^2 = 2 pt^2 (cosh(d_eta) - cos(d_phi)) with equal pt and d_phi = pi
    pt = m / np.sqrt(2.0 * (np.cosh(eta1 - eta2) + 1.0))
    return np.stack([np.stack([pt, eta1, phi1], -1), np.stack([pt, eta2, phi2], -1)], axis=1)


def make_events(config: EventsConfig | None = None, seed: int = 0) -> LabelledEvents:
    """Events with 57 features (MET + 4 e + 4 mu + 10 jets, each pt/eta/phi; MET eta = 0)."""
    cfg = config or EventsConfig()
    rng = np.random.default_rng(seed)
    n = cfg.events
    parts = {
        "e": _objects(rng, n, 4, cfg.electron_rate, cfg.lepton_pt, 2.5),
        "mu": _objects(rng, n, 4, cfg.muon_rate, cfg.lepton_pt, 2.4),
        "jet": _objects(rng, n, 10, cfg.jet_rate, cfg.jet_pt, 4.5),
    }
    target = {"dijet": "jet", "dielectron": "e", "dimuon": "mu"}.get(cfg.channel)
    if target is None:
        raise ValueError(f"channel must be dijet, dielectron or dimuon, got {cfg.channel!r}")
    labels = (rng.random(n) < cfg.signal_fraction).astype(np.int64)
    sig = np.flatnonzero(labels)
    merged = np.concatenate(
        [_resonance(rng, sig.size, cfg.mass, cfg.width, 2.4), parts[target][sig]], 1
    )
    order = np.argsort(-merged[:, :, 0], axis=1, kind="stable")[:, : parts[target].shape[1]]
    parts[target][sig] = np.take_along_axis(merged, order[:, :, None], axis=1)
    met = np.zeros((n, 1, 3))
    met[:, 0, 0] = rng.exponential(cfg.met_pt, n)
    met[:, 0, 2] = rng.uniform(-np.pi, np.pi, n)
    blocks = [met, parts["e"], parts["mu"], parts["jet"]]
    features = np.concatenate([b.reshape(n, -1) for b in blocks], axis=1).astype(np.float32)
    return LabelledEvents(features, labels)


def leading_pair_mass(features: np.ndarray, particle: str = "jet") -> np.ndarray:
    """Invariant mass of the two leading ``particle`` objects (massless), 0 if fewer than two.

    >>> x = make_events(EventsConfig(events=2000, signal_fraction=0.5), seed=1)
    >>> m = leading_pair_mass(x.features)[x.labels == 1]
    >>> bool(abs(np.median(m) - 500.0) < 25.0)
    True
    """
    first = EVENT_FEATURES.index(f"{particle}1_pt")
    a = features[:, first : first + 3].astype(np.float64)
    b = features[:, first + 3 : first + 6].astype(np.float64)
    m2 = 2 * a[:, 0] * b[:, 0] * (np.cosh(a[:, 1] - b[:, 1]) - np.cos(a[:, 2] - b[:, 2]))
    mass: np.ndarray = np.sqrt(np.maximum(m2, 0.0))
    return mass


def write_series_csv(path: str | Path, series: LabelledSeries) -> Path:
    """Write ``timestamp,value`` in NAB's layout (``2015-02-26 21:42:53``)."""
    path = Path(path)
    stamps = pd.DatetimeIndex(series.timestamps).strftime("%Y-%m-%d %H:%M:%S")
    pd.DataFrame({"timestamp": stamps, "value": series.values}).to_csv(path, index=False)
    return path


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


def write_events(path: str | Path, events: LabelledEvents) -> Path:
    """Write events as CSV (feature columns + ``label``) or, for ``.h5``/``.hdf5``, HDF5
    datasets ``features`` (with a ``feature_names`` attribute) and ``labels``."""
    path = Path(path)
    if path.suffix.lower() in {".h5", ".hdf5"}:
        with h5py.File(path, "w") as handle:
            data = handle.create_dataset("features", data=events.features, compression="gzip")
            data.attrs["feature_names"] = events.names
            handle.create_dataset("labels", data=events.labels)
        return path
    frame = pd.DataFrame(events.features, columns=events.names)
    frame["label"] = events.labels
    frame.to_csv(path, index=False)
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
