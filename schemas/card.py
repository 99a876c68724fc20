"""The model card: the validated sidecar (``card.json``) of every ``model.onnx``.

A worker trusts nothing about a model it has not read here: window length, stride,
feature names, how to scale inputs, the thresholds calibrated at training time, and the
sha256 of the ONNX file (checked before any session is created). Training writes it with
``card.model_dump_json(indent=2)``; the worker reads it with ``ModelCard.model_validate_json``.

The ``serves`` section says which keys of its record kind a model scores: the keys it was
trained on (``keys``), a regular expression a key must match in full (``pattern``), or,
with neither, every key of its kind. A worker routes each record to exactly one model.

Hybrid models (``family: "hybrid"``) carry an ``nplm`` section, validated as
:class:`NPLMCard`: the reference sample and settings of the NPLM stage that tests each key's
recent windows against normal history (see :mod:`stream_detector.core.hybrid`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.kinds import CalibrationMethod, ModelFamily, RecordKind, ScalerMethod
from schemas.records import (
    MAX_FEATURES,
    MAX_KEY_LENGTH,
    MAX_WINDOW_LENGTH,
    parse_iso8601,
)

__all__ = [
    "ModelCard",
    "NPLMCard",
    "MAX_NPLM_REFERENCE",
    "NAME_PATTERN",
    "ScalerCard",
    "ScalerParams",
    "ServesCard",
    "ThresholdCard",
    "TimeCard",
    "DEFAULT_KEY",
]

DEFAULT_KEY = "*"
"""Scaler and threshold entry used for keys without their own."""

MAX_NPLM_REFERENCE = 5000
"""Largest NPLM reference sample a card may hold (it is read into every worker)."""

# Names and versions become directory names and Redis key parts: keep them boring.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
"""What a model name or version may be (``train`` checks ``--version`` against it first)."""
_NAME = Annotated[str, Field(pattern=NAME_PATTERN)]
_SHA256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
_FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class ScalerParams(_Frozen):
    """``transform(x) = (x - center) / scale``, one entry per feature."""

    center: list[float]
    scale: list[float]

    @field_validator("scale")
    @classmethod
    def _nonzero(cls, v: list[float]) -> list[float]:
        if any(s == 0.0 for s in v):
            raise ValueError("scale contains 0; use 1.0 for constant features")
        return v


class ScalerCard(_Frozen):
    """How raw record values are scaled before they reach the model."""

    method: ScalerMethod
    transform: Literal["none", "log1p"] = Field(
        "none",
        description="applied before centring: log1p is sign(x)*log(1+|x|), for counts and "
        "other heavy-tailed values",
    )
    per_key: bool = False
    params: dict[str, ScalerParams] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_default(self) -> ScalerCard:
        if self.method != "none" and DEFAULT_KEY not in self.params:
            raise ValueError(
                f"scaler params need a {DEFAULT_KEY!r} entry (the fallback for unseen keys)"
            )
        return self


MAX_SERVED_KEYS = 100_000
"""Most keys a card may list in ``serves.keys`` (it is read into every worker)."""


class ServesCard(_Frozen):
    """Which keys of its record kind a model scores.

    ``keys`` (exact keys, e.g. the ones it was trained on) or ``pattern`` (a regular
    expression a key must match in full); with neither, every key of its kind.
    """

    keys: list[Annotated[str, Field(min_length=1, max_length=MAX_KEY_LENGTH)]] = Field(
        default_factory=list, max_length=MAX_SERVED_KEYS)
    pattern: str | None = Field(None, min_length=1, max_length=512)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"serves.pattern is not a regular expression: {exc}") from None
        return v

    @property
    def all_keys(self) -> bool:
        """True when the model serves every key of its kind."""
        return not self.keys and self.pattern is None

    def describe(self) -> str:
        """Human-readable summary for messages, e.g. ``keys AAPL, GOOG``."""
        if self.keys:
            shown = ", ".join(self.keys[:5]) + (" ..." if len(self.keys) > 5 else "")
            return f"keys {shown}"
        return f"keys matching {self.pattern!r}" if self.pattern else "every key"


class ThresholdCard(_Frozen):
    """Thresholds calibrated at training time; Redis entries override them."""

    method: CalibrationMethod
    value_param: _FiniteFloat = Field(
        description="e.g. 95.0 (percentile), 0.01 (fpr) or 5.0 (sigma)")
    default: _FiniteFloat
    per_key: dict[str, _FiniteFloat] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _param_in_range(self) -> ThresholdCard:
        if self.method == "percentile" and not 0.0 < self.value_param < 100.0:
            raise ValueError("a percentile value_param must lie in (0, 100)")
        if self.method in {"contamination", "fpr"} and not 0.0 < self.value_param < 1.0:
            raise ValueError(f"a {self.method} value_param must lie in (0, 1)")
        if self.method == "sigma" and not self.value_param > 0.0:
            raise ValueError("a sigma value_param must be positive")
        return self


class NPLMCard(_Frozen):
    """The NPLM stage of a hybrid detector: what a key's recent windows are tested against.

    Each window's NPLM features are the log of its AE score and, for windows longer than
    one step, the log of its peak time-step error (``stream_detector.core.nplm
    .nplm_numpy_features``). Windows whose raw AE score exceeds ``ae_threshold`` are the AE
    stage's business and enter neither the reference nor a key's sample. Once a key holds
    ``sample_size`` unflagged windows, every ``every`` new ones the sample is tested against
    ``reference``; ``p < alpha`` is an anomaly. The AE's own detection threshold is not
    here: it stays in ``thresholds`` (and Redis).
    """

    reference: list[list[_FiniteFloat]] = Field(
        min_length=10, max_length=MAX_NPLM_REFERENCE,
        description="NPLM features of normal held-out windows the AE does not flag (N_R rows)",
    )
    degree: int = Field(4, ge=1, le=12, description="Legendre polynomials per input")
    ridge: _FiniteFloat = Field(1e-2, ge=0.0, description="L2 penalty on the fit's weights")
    alpha: _FiniteFloat = Field(0.01, gt=0.0, lt=1.0, description="p-value that alerts")
    sample_size: int = Field(250, ge=10, le=MAX_NPLM_REFERENCE, description="N_D per key")
    every: int = Field(50, ge=1, le=MAX_NPLM_REFERENCE, description="windows between tests")
    ae_threshold: _FiniteFloat = Field(description="raw AE score above which a window is "
                                       "left to the AE stage (not tested by NPLM)")
    flag_rate: _FiniteFloat | None = Field(
        None, ge=0.0, lt=1.0, description="share of the held-out reference windows over "
        "ae_threshold: a sample's count of such windows is tested against it (None: not)")

    @model_validator(mode="after")
    def _rectangular(self) -> NPLMCard:
        widths = {len(row) for row in self.reference}
        if len(widths) != 1 or not widths <= {1, 2}:
            raise ValueError("nplm.reference rows must all have 1 or 2 values")
        return self

    @property
    def width(self) -> int:
        """NPLM features per window."""
        return len(self.reference[0])


class TimeCard(_Frozen):
    """The event time of the training data: how the worker judges gaps and clock skew.

    Learned at training (the median step between a key's consecutive timestamps); see
    ``stream_detector.core.timing`` for the policy these numbers feed.
    """

    cadence_s: _FiniteFloat = Field(gt=0.0, description="expected seconds between records")
    gap_steps: _FiniteFloat = Field(
        3.0, ge=1.0, description="a step longer than this many cadences is a gap"
    )
    skew_steps: _FiniteFloat = Field(
        12.0, ge=1.0, description="records further ahead of the watermark are skewed"
    )
    confirm: int = Field(
        3, ge=1, le=1000, description="ahead records in a row that make a real jump, not skew"
    )


class ModelCard(_Frozen):
    """Everything a worker must know about a model, validated before the model is used."""

    schema_version: Literal[1] = 1
    name: _NAME
    version: _NAME
    family: ModelFamily
    created_at: str
    onnx_sha256: _SHA256
    record_kind: RecordKind
    window: int = Field(ge=1, le=MAX_WINDOW_LENGTH)
    stride: int = Field(default=1, ge=1, le=MAX_WINDOW_LENGTH)
    features: list[str] = Field(min_length=1, max_length=MAX_FEATURES)
    scaler: ScalerCard
    thresholds: ThresholdCard
    serves: ServesCard = Field(default_factory=ServesCard)
    detection: dict[str, Any] = Field(default_factory=dict)
    time: TimeCard | None = None  # None (older cards): no gap or skew judgement
    nplm: dict[str, Any] | None = None
    # None marks a metric that is undefined for this run (e.g. AUC without anomalies).
    metrics: dict[str, float | None] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    data_sha256: _SHA256
    library_versions: dict[str, str] = Field(default_factory=dict)
    input_name: Literal["windows"] = "windows"
    output_names: list[str] = Field(default_factory=lambda: ["score", "errors"])

    @field_validator("created_at")
    @classmethod
    def _iso(cls, v: str) -> str:
        parse_iso8601(v)
        return v

    @field_validator("features")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("feature names must be unique")
        return v

    @field_validator("output_names")
    @classmethod
    def _outputs(cls, v: list[str]) -> list[str]:
        if v[:2] != ["score", "errors"]:
            raise ValueError("output_names must start with ['score', 'errors']")
        return v

    @model_validator(mode="after")
    def _scaler_widths(self) -> ModelCard:
        width = len(self.features)
        for key, p in self.scaler.params.items():
            if len(p.center) != width or len(p.scale) != width:
                raise ValueError(
                    f"scaler params[{key!r}] have {len(p.center)} centers and {len(p.scale)} "
                    f"scales but the card lists {width} features"
                )
        return self

    @model_validator(mode="after")
    def _hybrid_nplm(self) -> ModelCard:
        section = self.nplm_card()
        if section is not None and section.width != (1 if self.window == 1 else 2):
            raise ValueError(
                f"nplm.reference has {section.width} columns; a window of {self.window} "
                f"needs {1 if self.window == 1 else 2} (log score, and peak step error)"
            )
        return self

    def nplm_card(self) -> NPLMCard | None:
        """The validated NPLM section of a hybrid model; None for other families."""
        if self.family != "hybrid" or self.nplm is None:
            return None
        return NPLMCard.model_validate(self.nplm)

    def threshold_for(self, key: str) -> float:
        """The calibrated threshold for ``key``, falling back to the default."""
        return self.thresholds.per_key.get(key, self.thresholds.default)

    @property
    def n_features(self) -> int:
        """Width of one record's feature vector."""
        return len(self.features)
