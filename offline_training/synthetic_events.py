"""Seeded collision-like feature events: a Standard-Model-ish background plus a narrow
resonance, labelled 1 for signal.

Same seed and config, same arrays, bit for bit (one ``numpy.random.Generator`` per call).
Each event is 57 features (:data:`EVENT_FEATURES`): MET, 4 electrons, 4 muons and 10 jets,
each as (pt, eta, phi), pT-ordered and zero padded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

__all__ = [
    "EVENT_FEATURES",
    "EventsConfig",
    "LabelledEvents",
    "leading_pair_mass",
    "make_events",
    "write_events",
]

_PARTICLES = (("met", 1), ("e", 4), ("mu", 4), ("jet", 10))
EVENT_FEATURES = [
    f"{name}{i + 1 if count > 1 else ''}_{var}"
    for name, count in _PARTICLES
    for i in range(count)
    for var in ("pt", "eta", "phi")
]


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
