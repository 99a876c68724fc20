"""What the loaders return: one series, a panel of keyed series, or feature vectors.

Kept apart from the format modules so that each of them, and :mod:`offline_training.loaders`,
can name these types without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from schemas.kinds import RecordKind

__all__ = [
    "EventData",
    "Kind",
    "LoadedData",
    "MissingPolicy",
    "PanelData",
    "SeriesData",
]

MissingPolicy = Literal["reject", "impute"]
Kind = Literal[RecordKind, "seed_json", "records_json"]


@dataclass(frozen=True)
class SeriesData:
    """One univariate series: ``timestamps`` datetime64[ns] (n,), ``values`` float64 (n, 1)."""

    key: str
    timestamps: np.ndarray
    values: np.ndarray
    source: Path | None = None
    imputed_mask: np.ndarray | None = None  # bool (n, 1); True where a value was filled in
    names: list[str] = field(default_factory=lambda: ["value"])
    ignored: tuple[str, ...] = ()  # the file's columns not read (e.g. "host")

    @property
    def imputed(self) -> int:
        """How many values the ``impute`` policy filled in."""
        return 0 if self.imputed_mask is None else int(self.imputed_mask.sum())


@dataclass(frozen=True)
class PanelData:
    """Many series keyed ``"store/item"`` (or by series id), each sorted by time."""

    series: dict[str, SeriesData]
    source: Path | None = None
    ignored: tuple[str, ...] = ()  # the file's columns not read

    @property
    def imputed(self) -> int:
        """Values filled in over all keys."""
        return sum(s.imputed for s in self.series.values())


@dataclass(frozen=True)
class EventData:
    """Fixed-width feature vectors: ``features`` float32 (n, d), optional int64 ``labels`` (n,)."""

    features: np.ndarray
    names: list[str]
    labels: np.ndarray | None = None
    source: Path | None = None
    imputed_mask: np.ndarray | None = None  # bool (n, d)

    @property
    def imputed(self) -> int:
        """How many values the ``impute`` policy filled in."""
        return 0 if self.imputed_mask is None else int(self.imputed_mask.sum())


LoadedData = SeriesData | PanelData | EventData
