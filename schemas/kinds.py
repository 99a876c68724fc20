"""The closed lists of the wire contracts, one home each.

Each list is a :data:`typing.Literal` (the type that pydantic validates, mypy checks and
typer turns into a command-line choice) and a tuple derived from it with
:func:`typing.get_args` (for run-time checks, loops and messages). Everything else reads
them from here; adding a member is one edit here plus its implementation:

- a record kind: its record model in :mod:`schemas.records` (a member of the ``Record``
  union) and its run parser in ``stream_detector.core.record_runs``;
- a model family (an autoencoder): its ``nn.Module`` and config in
  ``offline_training.models``;
- a threshold calibration method: its quantile in ``offline_training.calibration`` and the
  range of its argument in :class:`schemas.card.ThresholdCard`;
- a scaler method: its fit in ``offline_training.scaling``.

This module imports only :mod:`typing`, so the command line reads the lists without loading
pydantic (``stream-detector --help`` stays fast).

>>> RECORD_KINDS
('series', 'sales', 'events')
>>> THRESHOLD_METHODS[-1], set(CALIBRATION_METHODS) < set(THRESHOLD_METHODS)
('manual', True)
"""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = [
    "AUTOENCODER_FAMILIES",
    "CALIBRATION_METHODS",
    "MODEL_FAMILIES",
    "RECORD_KINDS",
    "SCALER_METHODS",
    "THRESHOLD_METHODS",
    "AutoencoderFamily",
    "CalibrationMethod",
    "ModelFamily",
    "RecordKind",
    "ScalerMethod",
    "ThresholdMethod",
]

RecordKind = Literal["series", "sales", "events"]
"""What one input record is: a series point, a sales row or a fixed-width feature event."""
RECORD_KINDS: Final[tuple[RecordKind, ...]] = get_args(RecordKind)

AutoencoderFamily = Literal["dense", "lstm", "conv1d", "events"]
"""The autoencoders ``offline_training.models`` builds and ONNX scores."""
AUTOENCODER_FAMILIES: Final[tuple[AutoencoderFamily, ...]] = get_args(AutoencoderFamily)

ModelFamily = Literal[AutoencoderFamily, "hybrid"]
"""A model's architecture, as its card and its events name it (``hybrid``: an autoencoder
plus the NPLM stage of ``stream_detector.core.hybrid``)."""
MODEL_FAMILIES: Final[tuple[ModelFamily, ...]] = get_args(ModelFamily)

CalibrationMethod = Literal["percentile", "contamination", "fpr", "sigma"]
"""How training turns calibration scores into a threshold (``offline_training.calibration``)."""
CALIBRATION_METHODS: Final[tuple[CalibrationMethod, ...]] = get_args(CalibrationMethod)

ThresholdMethod = Literal[CalibrationMethod, "manual"]
"""Where a threshold value came from: a calibration method, or set by hand (``manual``)."""
THRESHOLD_METHODS: Final[tuple[ThresholdMethod, ...]] = get_args(ThresholdMethod)

ScalerMethod = Literal["standard", "minmax", "robust", "none"]
"""How a model's inputs are scaled (``offline_training.scaling`` fits it, the card holds it,
``stream_detector.core.scoring.ScaleTable`` applies its center and scale)."""
SCALER_METHODS: Final[tuple[ScalerMethod, ...]] = get_args(ScalerMethod)
