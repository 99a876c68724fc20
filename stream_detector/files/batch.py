"""Offline scoring of a whole file through the worker's own pipeline (``stream-detector score``).

Records come from :func:`stream_detector.files.history.load_source`, the same builder ``replay``
uses to send them to Kafka, and pass through :class:`~stream_detector.core.pipeline.Pipeline`
exactly as in the worker: replaying the file gives the same windows, scores and alerts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from schemas.events import AnomalyEvent, SourceRef
from schemas.kinds import RecordKind
from schemas.records import Record
from stream_detector.core.explanations import top_contributors
from stream_detector.core.key_state import DictStore
from stream_detector.core.model_runtime import ModelRuntime, Scored
from stream_detector.core.pipeline import Pipeline
from stream_detector.core.registry import ModelRegistry
from stream_detector.core.routing import Router
from stream_detector.core.thresholds import CardThresholds
from stream_detector.core.timing import flag_names
from stream_detector.exceptions import DataError
from stream_detector.files.history import shown_key

__all__ = [
    "COLUMNS",
    "MAX_SCALED",
    "ScoreRow",
    "available_memory",
    "require_kind",
    "require_memory",
    "require_scorable",
    "require_served",
    "score_file",
    "score_records",
]

COLUMNS = ["timestamp", "key", "score", "raw_score", "threshold", "alert", "warm_up",
           "late", "top_contributors", "event_id", "p_value", "flags"]
_CHUNK = 4096


@dataclass(frozen=True)
class ScoreRow:
    """One scored window (the window's last record's timestamp)."""

    timestamp: str
    key: str
    score: float
    raw_score: float
    threshold: float
    alert: bool
    warm_up: bool
    late: bool
    top_contributors: str
    event_id: str
    # hybrid models: the p-value of the NPLM test of the sample this window completed
    # (the key's last sample_size windows); None on every other row
    p_value: float | None = None
    # the window's record flags (stream_detector.core.timing), e.g. "repeated;gap"; "" when none
    flags: str = ""

    def as_tuple(self) -> tuple[Any, ...]:
        return tuple(getattr(self, c) for c in COLUMNS)


def _row(s: Scored, names: Sequence[str]) -> ScoreRow:
    event: AnomalyEvent | None = s.event
    tops = event.top_contributors if event is not None else top_contributors(s.errors, names, 3)
    text = ";".join(f"{c.name}@-{c.time_offset}:{c.error:.4g}" for c in tops)
    p_value = s.nplm.p_value if s.nplm is not None else None
    return ScoreRow(s.pending.window.end_text, s.pending.key, s.decision.detection_score,
                    s.raw_score, s.threshold.value, s.event is not None, s.decision.warm_up,
                    s.pending.window.late, text, event.event_id if event else "", p_value,
                    ";".join(flag_names(s.pending.window.flags)))


# Memory one record costs while a file is scored (records, windows, the result rows):
# measured, `score` of 300,000 series records peaked 600 MB above its start (790 vs 190 MB).
RECORD_BYTES = 2_000


def available_memory() -> int | None:
    """Bytes this process may still use: MemAvailable (Linux), capped by a cgroup v2
    limit (containers); None where neither can be read."""
    known: list[int] = []
    try:
        found = re.search(r"^MemAvailable:\s+(\d+) kB", Path("/proc/meminfo").read_text(),
                          re.MULTILINE)
        if found:
            known.append(int(found.group(1)) * 1024)
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
            known.append(int(limit) - used)
    except (OSError, ValueError):
        pass
    return min(known) if known else None


def require_memory(total: int, name: str, available: int | None = None) -> None:
    """Refuse, before building them, more records than memory can hold (:data:`RECORD_BYTES`
    each against :func:`available_memory`): the kernel would kill the process instead,
    without a word.

    Raises
    ------
    DataError
        Naming the records, the memory they need and what is free.
    """
    free = available_memory() if available is None else available
    need = total * RECORD_BYTES
    if free is not None and need > free:
        raise DataError(f"{name}: {total:,} records need about {_amount(need)} of memory "
                        f"here and {_amount(free)} is free; split the file (e.g. by key or by "
                        "month) or run where more memory is free")


def _amount(n: int) -> str:
    """Bytes in GB or MB: ``_amount(15_400_000_000)`` is ``'15.4 GB'``."""
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


_KIND_WORDS = {"series": "series records (timestamp, value)",
               "sales": "sales rows (date, store, item, sales)",
               "events": "feature vectors (events)"}


def require_kind(model: ModelRuntime, data: Path, kind: RecordKind | None) -> RecordKind:
    """The record kind to read ``data`` as: the model's. A ``kind`` asked for that is not
    the model's, or a table whose columns make it another kind, is refused (its records
    would all be unrouted, or fail on the wrong columns).

    Raises
    ------
    DataError
        Naming the kinds and what to do.
    """
    wanted = model.card.record_kind
    if kind is not None and kind != wanted:
        raise DataError(f"--kind {kind}: model {model.name} reads {_KIND_WORDS[wanted]}; "
                        f"leave --kind out, or score with a model trained on {kind}")
    from offline_training.loaders import infer_kind  # lazily: the worker image lacks it

    found = infer_kind(data)
    if found == "events" and data.suffix.lower() not in {".h5", ".hdf5", ".hdf"}:
        return wanted  # a table without time columns: the loader names what is missing
    if found in _KIND_WORDS and found != wanted:
        raise DataError(f"{data}: holds {_KIND_WORDS[found]}; model {model.name} reads "
                        f"{_KIND_WORDS[wanted]}: score it with a model trained on such a file")
    return wanted


def require_served(model: ModelRuntime, records: Sequence[Record], name: str) -> None:
    """Refuse records of keys the model does not serve: the worker would dead-letter them
    as ``unrouted``, so scoring them offline would silently give no windows at all.

    Raises
    ------
    DataError
        Naming ``name`` (the file), the model's keys and up to five unserved keys.
    """
    router = Router([model])
    unserved = sorted({r.key for r in records if router.route(r.kind, r.key) is None})
    if unserved:
        raise DataError(
            f"{name}: model {model.name} serves {model.card.serves.describe()}, not "
            f"{', '.join(shown_key(k) for k in unserved[:5])}{' ...' if len(unserved) > 5 else ''}"
            "; a worker would dead-letter these records as unrouted. Pass --key to name the "
            "series as the model knows it, or train with --serves all"
        )


# Largest |scaled value| a model can score: autoencoders square their errors in float32
# (largest 3.4e38), so 1e18 leaves room for the sums over a window's cells.
MAX_SCALED = 1e18


def require_scorable(model: ModelRuntime, records: Sequence[Record], name: str) -> None:
    """Refuse records of another width than the model's features, and values the model
    cannot compute with: beyond float32, or so far from the
    training data's scale (``card.scaler``) that its squared errors overflow float32. The
    worker dead-letters such a record as ``unprocessable``; offline, the file is refused
    with the record named instead of ending in non-finite scores.

    Raises
    ------
    DataError
        The first such record: its number in ``name`` (1-based), key, time and value.
    """
    width = model.card.n_features
    at = next((i for i, r in enumerate(records) if len(r.values) != width), None)
    if at is not None:  # a worker dead-letters such a record as wrong_width
        names = ", ".join(model.card.features[:5]) + (", ..." if width > 5 else "")
        raise DataError(f"{name}: record {at + 1} has {len(records[at].values)} value(s); "
                        f"model {model.name} takes {width} ({names}): score a file with the "
                        "columns it was trained on")
    if not records:
        return
    values = np.array([r.values for r in records], dtype=np.float64)  # (n, features)
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = model.scale.transform(values[:, None, :], [r.key for r in records])
    bad = np.flatnonzero(~(np.abs(scaled.reshape(len(records), -1)) <= MAX_SCALED).all(axis=1))
    if bad.size:
        first = int(bad[0])
        record = records[first]
        shown = ", ".join(f"{v:.4g}" for v in record.values[:3])
        raise DataError(
            f"{name}: record {first + 1} ({shown_key(record.key)} at "
            f"{record.timestamp_text}): value {shown} is too large for model {model.name} "
            "(its float32 errors would overflow; a worker dead-letters such a record as "
            "unprocessable); check the value's unit, or drop the row"
        )


def score_records(
    model: ModelRuntime, records: Sequence[Record], progress: Callable[[int], None] | None = None,
    *, name: str = "records",
) -> Iterator[tuple[Scored, ScoreRow]]:
    """Score records in arrival order, in chunks (bounded memory); yield every window.

    Every record must be of a key the model serves (:func:`require_served`; ``name`` names
    the records' file in the errors), checked before the first window is yielded.

    Raises
    ------
    DataError
        A key the model does not serve, a value it cannot compute with
        (:func:`require_scorable`), or no key with enough records for one window
        (raised at the end, so nothing is silently "scored" into an empty result).
    """
    require_served(model, records, name)
    require_scorable(model, records, name)
    pipeline = Pipeline([model], DictStore())
    source = SourceRef(topic="offline")
    names = model.card.features
    windows = 0
    for start in range(0, len(records), _CHUNK):
        chunk = records[start : start + _CHUNK]
        pending = pipeline.ingest(chunk, source)
        for s in pipeline.decide(pending, Pipeline.score(pending),
                                 detected_at="1970-01-01T00:00:00Z"):
            windows += 1
            yield s, _row(s, names)
        if progress is not None:
            progress(len(chunk))
    if records and not windows:
        raise DataError(
            f"{name}: no window to score: {len(records):,} record(s), and the model "
            f"{model.name} needs {model.card.window} of one key for its first window; "
            "score a longer file"
        )


def load_runtime(model_dir: Path, provider: str = "auto") -> ModelRuntime:
    """The newest model under ``model_dir`` with its card's thresholds."""
    loaded = ModelRegistry(model_dir, preference=provider).load_latest()
    return ModelRuntime(loaded, CardThresholds(loaded.card).lookup)


def score_file(
    model_dir: Path, data: Path, *, kind: RecordKind | None = None, key: str | None = None,
    provider: str = "auto", progress: Callable[[int], None] | None = None,
) -> list[ScoreRow]:
    """Every window of ``data`` scored by the model at ``model_dir``."""
    from stream_detector.files.history import load_source

    runtime = load_runtime(model_dir, provider)
    source = load_source(data, kind=require_kind(runtime, data, kind), key=key,
                         features=runtime.card.features)
    require_memory(source.total, str(data))
    records = list(source.records)
    return [row for _, row in score_records(runtime, records, progress, name=str(data))]
