"""Wire contracts of stream-detector: input records, anomaly events and the model card.

Every shape that crosses a process boundary is defined here, typed and versioned
(``schema_version``); no other package defines a record shape. This package imports
none of the project's other packages.
"""

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
