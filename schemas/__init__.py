"""Wire contracts of stream-detector: input records, anomaly events and the model card.

Every shape that crosses a process boundary is defined here, typed and versioned
(``schema_version``); no other package defines a record shape. This package imports
none of the project's other packages.

The names below load their module (and pydantic) on first use, so importing a light module
of the package, such as :mod:`schemas.kinds` from the command line, loads nothing else.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schemas.card import DEFAULT_KEY, ModelCard, ScalerCard, ScalerParams, ThresholdCard
    from schemas.events import (
        AnomalyEvent,
        Contributor,
        DeadLetter,
        ModelRef,
        Quality,
        SourceRef,
        ThresholdSource,
        event_id_for,
    )
    from schemas.records import (
        MAX_FEATURES,
        MAX_WINDOW_LENGTH,
        REASONS,
        FeatureEvent,
        Record,
        RecordError,
        SalesRow,
        SeriesPoint,
        parse_message,
    )

__all__ = [
    "DEFAULT_KEY",
    "MAX_FEATURES",
    "MAX_WINDOW_LENGTH",
    "REASONS",
    "AnomalyEvent",
    "Contributor",
    "DeadLetter",
    "FeatureEvent",
    "ModelCard",
    "ModelRef",
    "Quality",
    "Record",
    "RecordError",
    "SalesRow",
    "ScalerCard",
    "ScalerParams",
    "SeriesPoint",
    "SourceRef",
    "ThresholdCard",
    "ThresholdSource",
    "event_id_for",
    "parse_message",
]

_HOME = {
    **dict.fromkeys(("DEFAULT_KEY", "ModelCard", "ScalerCard", "ScalerParams",
                     "ThresholdCard"), "schemas.card"),
    **dict.fromkeys(("AnomalyEvent", "Contributor", "DeadLetter", "ModelRef", "Quality",
                     "SourceRef", "ThresholdSource", "event_id_for"), "schemas.events"),
    **dict.fromkeys(("MAX_FEATURES", "MAX_WINDOW_LENGTH", "REASONS", "FeatureEvent", "Record",
                     "RecordError", "SalesRow", "SeriesPoint", "parse_message"),
                    "schemas.records"),
}


def __getattr__(name: str) -> Any:
    """``schemas.X``: the public name ``X`` from its module (PEP 562), loaded on first use.

    Raises
    ------
    AttributeError
        ``name`` is not one of :data:`__all__`.
    """
    if name not in _HOME:
        raise AttributeError(f"module 'schemas' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME[name]), name)
