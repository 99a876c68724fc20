"""Output contracts: the anomaly event alerting systems consume, and the dead letter.

An :class:`AnomalyEvent` is self-describing: it says which model (name, version, ONNX
sha256) on which execution provider scored which window of which key, against which
threshold (and where that threshold came from), and which features and time steps drove
the score. ``event_id`` is a deterministic hash of model, key and window end, so
at-least-once delivery duplicates are recognisable downstream.

A :class:`DeadLetter` carries a rejected message's original bytes (base64) with the
machine-readable reason, so nothing a producer sent is lost silently.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from time import time_ns
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.kinds import ModelFamily, RecordKind, ThresholdMethod
from schemas.records import MAX_KEY_LENGTH

__all__ = [
    "AnomalyEvent",
    "Contributor",
    "DeadLetter",
    "MAX_DEAD_LETTER_KEY_AND_HEADERS",
    "MAX_DEAD_LETTER_ORIGINAL",
    "ModelRef",
    "Quality",
    "SampleTest",
    "SourceRef",
    "ThresholdSource",
    "event_id_for",
    "utc_now_iso",
]

ThresholdScope = Literal["key", "default", "card_key", "card_default"]

_SHA256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
_EVENT_ID_LENGTH: Final = 32
# A dead letter must fit in a Kafka message (1 MB by default) after base64 (4/3 larger):
# the value's first 512 KiB, and its key and headers within 64 KiB together.
MAX_DEAD_LETTER_ORIGINAL: Final = 512 * 1024
MAX_DEAD_LETTER_KEY_AND_HEADERS: Final = 64 * 1024
# ASCII unit separator: cannot occur in keys or ISO timestamps, so the joined text is
# unambiguous ("a/b"+"c" and "a"+"b/c" hash differently).
_SEP: Final = "\x1f"


def event_id_for(model_name: str, model_version: str, key: str, window_end: str) -> str:
    """Deterministic id of an anomaly: sha256 of model, version, key and window end.

    The same window scored by the same model version always gets the same id, online or
    offline, on any worker, so consumers can drop duplicates of at-least-once delivery.

    >>> event_id_for("nab", "1", "AAPL", "2015-02-26T21:42:53")
    'cb19ed62cbbe6e4bfdfcfb7321393cce'
    """
    text = _SEP.join((model_name, model_version, key, window_end))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_EVENT_ID_LENGTH]


# (epoch second, its "YYYY-MM-DDTHH:MM:SS" text): formatting a datetime per event cost
# 2.5 us, more than hashing the event id; every event of one second shares the prefix.
_second_text: tuple[int, str] = (-1, "")


def utc_now_iso() -> str:
    """Current time as ISO 8601 UTC with a ``Z`` suffix and milliseconds.

    The same text as ``datetime.now(UTC).isoformat(timespec="milliseconds")`` with ``Z``
    for ``+00:00`` (same clock, milliseconds truncated), the date part formatted once per
    second.
    """
    global _second_text
    second, milli = divmod(time_ns() // 1_000_000, 1000)
    cached = _second_text
    if cached[0] != second:
        text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        cached = _second_text = (second, text)
    return f"{cached[1]}.{milli:03d}Z"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class ThresholdSource(_Frozen):
    """Where the threshold an event was compared with came from."""

    method: ThresholdMethod
    version: str = Field(description="model version the threshold belongs to")
    scope: ThresholdScope = Field(
        description="key / default: Redis per-key or model default; card_*: the model card"
    )
    set_by: str = ""
    set_at: str = ""


class Contributor(_Frozen):
    """One (feature, time step) cell of the window with a large reconstruction error."""

    name: str
    index: int = Field(ge=0, description="feature index")
    time_offset: int = Field(ge=0, description="steps before the window end (0 = newest)")
    error: float = Field(ge=0.0)


class ModelRef(_Frozen):
    """The exact model that produced a score."""

    name: str
    version: str
    onnx_sha256: _SHA256
    family: ModelFamily


class SourceRef(_Frozen):
    """Where the window's last record was read from (None offline)."""

    topic: str
    partition: int | None = None
    offset: int | None = None


class Quality(_Frozen):
    """Caveats a consumer should weigh before paging anyone."""

    imputed: bool = Field(default=False, description="the window holds filled-in values")
    late: bool = Field(
        default=False, description="the window holds a record that arrived out of order"
    )
    warm_up: bool = Field(default=False, description="the key's history is shorter than advised")
    repeated: bool = Field(
        default=False, description="the window holds a record whose time repeats the one before"
    )
    skewed: bool = Field(
        default=False,
        description="the window holds a record stamped further ahead than the allowed skew",
    )
    gap: bool = Field(
        default=False, description="the window spans a gap longer than the card's gap_steps"
    )


class SampleTest(_Frozen):
    """A test of a key's recent *sample* of windows against a reference (the hybrid's NPLM
    stage): its p-value belongs to the sample, ``window_start``..``window_end`` of the event."""

    test: Literal["nplm"] = "nplm"
    size: int = Field(ge=1, description="windows in the sample (N_D)")
    reference_size: int = Field(ge=1, description="windows in the reference sample (N_R)")
    t: float = Field(description="test statistic t = -2 min L")
    dof: int = Field(ge=1, description="degrees of freedom of its chi-square null")
    p_value: float = Field(ge=0.0, le=1.0, description="the sample's (p_shape and p_count "
                           "combined by Fisher's method when the model has a flag rate)")
    alpha: float = Field(gt=0.0, lt=1.0, description="p-value below which the sample alerts")
    p_shape: float = Field(ge=0.0, le=1.0, description="NPLM test of the kept windows")
    flagged: int = Field(0, ge=0, description="windows of the span the AE stage took (over "
                         "its threshold: they are in no sample)")
    p_count: float | None = Field(None, ge=0.0, le=1.0, description="chance of at least "
                                  "`flagged` such windows at the reference's flag rate")


class AnomalyEvent(_Frozen):
    """A window whose score exceeded its threshold or, with ``sample`` set, a key's recent
    sample of windows whose test p-value fell below ``sample.alpha``."""

    schema_version: Literal[1] = 1
    event_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    key: Annotated[str, Field(min_length=1, max_length=MAX_KEY_LENGTH)]
    record_kind: RecordKind
    window_start: str = Field(description="ISO 8601 timestamp of the first record, as sent")
    window_end: str = Field(description="ISO 8601 timestamp of the last record, as sent")
    detected_at: str = Field(description="ISO 8601 UTC time the worker scored the window")
    score: float = Field(description="detection score compared with the threshold")
    raw_score: float | None = Field(
        None, description="the model's own score (reconstruction error) before normalisation"
    )
    threshold: float
    threshold_source: ThresholdSource
    severity: float = Field(ge=0.0, le=100.0, description="0 at the threshold, towards 100")
    p_value: float | None = Field(
        default=None, ge=0.0, le=1.0,
        description="sample events only: the p-value of the sample's test (see sample)")
    observed: list[float] = Field(description="the last record's values, original units")
    expected: list[float] | None = Field(
        None, description="the model's reconstruction of them, when the model exports one"
    )
    top_contributors: list[Contributor]
    model: ModelRef
    provider: str = Field(description="ONNX Runtime execution provider that scored it")
    source: SourceRef
    quality: Quality = Quality()
    # A window's event is written without ``sample``: its bytes stay those of schema
    # version 1 before sample tests existed, so consumers built on that schema (which
    # forbids unknown fields) keep reading every window's event. ``exclude_if`` keeps
    # pydantic's serializer in Rust; a wrap model_serializer built a Python dict of the
    # whole event first (~15 us an event).
    sample: SampleTest | None = Field(
        None, description="set when the event is a sample's (NPLM) test, not one window's",
        exclude_if=lambda value: value is None)


class DeadLetter(_Frozen):
    """A message the worker could not use, kept whole for inspection and replay: its value,
    and its Kafka key and headers when it had them (``original_key`` and ``headers`` are
    left out of the JSON when it had none, so such letters keep their earlier bytes)."""

    schema_version: Literal[1] = 1
    reason: str = Field(description="machine-readable code, e.g. malformed_json, non_finite")
    message: str
    original: str = Field(
        description="the message value, base64-encoded (its first MAX_DEAD_LETTER_ORIGINAL "
        "bytes when it was larger)"
    )
    original_size: int = Field(0, ge=0, description="size of the message value in bytes")
    truncated: bool = Field(
        False, description="original holds only the value's first bytes, or the key's first "
        "bytes, or not every header (beyond MAX_DEAD_LETTER_KEY_AND_HEADERS together)")
    original_key: str | None = Field(
        None, description="the message's Kafka key, base64-encoded; absent when it had none",
        exclude_if=lambda value: value is None)
    headers: list[tuple[str, str]] = Field(
        default_factory=list, description="the message's Kafka headers in order, each "
        "[name, base64-encoded value]; absent when it had none",
        exclude_if=lambda value: not value)
    topic: str
    partition: int | None = None
    offset: int | None = None
    at: str = Field(default_factory=utc_now_iso, description="ISO 8601 UTC rejection time")

    @classmethod
    def for_message(
        cls,
        raw: bytes,
        reason: str,
        message: str,
        source: SourceRef,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes | None]] = (),
    ) -> DeadLetter:
        """Wrap a rejected message (value, Kafka key and headers) with why it was rejected.

        The value keeps its first :data:`MAX_DEAD_LETTER_ORIGINAL` bytes; the key and then
        the headers, in order, share :data:`MAX_DEAD_LETTER_KEY_AND_HEADERS` (a key longer
        than that keeps its first bytes; headers beyond it are left out); ``truncated``
        says when anything was cut. A header without a value is kept with an empty one.
        """
        kept = raw[:MAX_DEAD_LETTER_ORIGINAL]
        room = MAX_DEAD_LETTER_KEY_AND_HEADERS
        kept_key = None if key is None else key[:room]
        cut = len(kept) < len(raw) or (key is not None and len(key) > room)
        room -= 0 if kept_key is None else len(kept_key)
        pairs: list[tuple[str, str]] = []
        for name, value in headers:
            size = len(name.encode()) + len(value or b"")
            if size > room:
                cut = True
                break
            room -= size
            pairs.append((name, _b64(value or b"")))
        return cls(
            reason=reason,
            message=message,
            original=_b64(kept),
            original_size=len(raw),
            truncated=cut,
            original_key=None if kept_key is None else _b64(kept_key),
            headers=pairs,
            topic=source.topic,
            partition=source.partition,
            offset=source.offset,
        )

    def key_bytes(self) -> bytes | None:
        """The rejected message's Kafka key as received (None: it had none)."""
        if self.original_key is None:
            return None
        return base64.b64decode(self.original_key, validate=True)

    def header_bytes(self) -> list[tuple[str, bytes]]:
        """The rejected message's Kafka headers as received, in order."""
        return [(name, base64.b64decode(value, validate=True)) for name, value in self.headers]

    def original_bytes(self) -> bytes:
        """The rejected message value exactly as received."""
        return base64.b64decode(self.original, validate=True)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
