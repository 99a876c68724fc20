"""A served model's runtime and the windows that pass between the pipeline's steps.

:class:`ModelRuntime` is one loaded model with what scoring it needs (scaler, detection
rules, thresholds, time policy, NPLM stage). Ingesting records gives :class:`PendingRun`
values (a key's completed windows, waiting for their scores); deciding turns each window
into a :class:`Scored` value (see :mod:`stream_detector.core.pipeline`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from schemas.card import ModelCard
from schemas.events import AnomalyEvent, SourceRef
from stream_detector.core.batching import RowBlock, WindowRows, join_windows
from stream_detector.core.detection import Decision, DetectionParams
from stream_detector.core.hybrid import HybridStage, NPLMOutcome
from stream_detector.core.key_state import KeyState
from stream_detector.core.registry import LoadedModel
from stream_detector.core.scoring import ScaleTable, ScoreBatch
from stream_detector.core.thresholds import ResolvedThreshold
from stream_detector.core.timing import TimePolicy
from stream_detector.core.windows import Window, WindowRun

__all__ = ["ModelRuntime", "Pending", "PendingRun", "Scored", "by_model", "score_pending",
           "score_runs", "window_keys"]


@dataclass
class ModelRuntime:
    """One loaded model with what scoring it needs: scaler, detection rules, thresholds."""

    loaded: LoadedModel
    thresholds: Callable[[str], ResolvedThreshold]
    dead_letter_skew_s: float = 0.0  # skewed records further ahead are dead-lettered (0: never)
    scale: ScaleTable = field(init=False)
    params: DetectionParams = field(init=False)
    hybrid: HybridStage | None = field(init=False)  # the NPLM stage of a hybrid model
    provider: str = field(init=False)  # asking the session costs 2 us, at every alert
    time: TimePolicy = field(init=False)  # how record times are judged (timing.py)
    shape: tuple[int, int] = field(init=False)  # (window, features) of one model input
    rows: WindowRows = field(init=False)  # where ingest writes completed windows (batching)

    def __post_init__(self) -> None:
        card = self.loaded.card
        self.scale = ScaleTable(card.scaler, card.n_features)
        self.params = DetectionParams.from_card(card.detection)
        self.hybrid = HybridStage.from_card(card)
        self.provider = self.loaded.scorer.provider
        self.shape = (card.window, card.n_features)
        self.rows = WindowRows(card.window, card.n_features)
        t = card.time
        self.time = (TimePolicy.from_cadence(
            t.cadence_s, skew_steps=t.skew_steps, gap_steps=t.gap_steps, confirm=t.confirm,
            dead_letter_s=self.dead_letter_skew_s) if t is not None else TimePolicy())

    @property
    def card(self) -> ModelCard:
        return self.loaded.card

    @property
    def name(self) -> str:
        return self.loaded.card.name


@dataclass(frozen=True)
class Pending:
    """A completed window waiting for its score."""

    model: ModelRuntime
    key: str
    state: KeyState
    window: Window
    source: SourceRef
    imputed: bool = False


class PendingRun:
    """Completed windows of one key from one run of records, waiting for their scores.

    The run's records come from one message (``source``) or, with ``parts``, from several
    messages of the key in a row: ``(first, ends, sources)``, the key's record count before
    the run, each message's cumulative record count within the run and its source; a
    window belongs to the message holding its newest record.
    """

    __slots__ = ("model", "key", "state", "windows", "source", "imputed", "values", "block",
                 "slot", "parts")

    def __init__(self, model: ModelRuntime, key: str, state: KeyState, windows: WindowRun,
                 source: SourceRef, imputed: bool = False,
                 parts: tuple[int, list[int], Sequence[SourceRef]] | None = None) -> None:
        self.model, self.key, self.state = model, key, state
        self.windows, self.source, self.imputed = windows, source, imputed
        self.parts = parts
        self.values = windows.values  # (m, window, features): what scoring gathers
        self.block: RowBlock | None = None  # the rows ingest wrote them in, if it did
        self.slot = -1
        model.rows.place(self)

    def item(self, j: int) -> Pending:
        """Window ``j`` of the run as a :class:`Pending` item."""
        return Pending(self.model, self.key, self.state, self.windows.window(j),
                       self.source_of(j), self.imputed)

    def source_of(self, j: int) -> SourceRef:
        """The message that completed window ``j``."""
        if self.parts is None:
            return self.source
        first, ends, sources = self.parts
        return sources[bisect_left(ends, self.windows.window(j).seq - first)]

    @classmethod
    def of(cls, item: Pending) -> PendingRun:
        """A run of the one window of ``item``."""
        card = item.model.card
        return cls(item.model, item.key, item.state,
                   WindowRun.of([item.window], card.n_features, card.window), item.source,
                   item.imputed)


@dataclass(frozen=True)
class Scored:
    """One pending window with its decision (and its event when it alerted)."""

    pending: Pending
    raw_score: float
    decision: Decision
    threshold: ResolvedThreshold
    event: AnomalyEvent | None
    errors: npt.NDArray[np.float32]  # (window, features) squared errors
    nplm: NPLMOutcome | None = None  # the NPLM test this window triggered (hybrid models)


def _one_model(pending: Sequence[PendingRun]) -> bool:
    # a plain loop: 0.8 us for 64 runs, against 1.7 for all(...) and 3.8 for map/count
    first = pending[0].model
    for p in pending:
        if p.model is not first:
            return False
    return True


def by_model(pending: Sequence[PendingRun]) -> list[tuple[ModelRuntime, list[PendingRun]]]:
    """The pending runs grouped by model, each model once, in order of first appearance."""
    if pending and _one_model(pending):  # the usual case: no dict
        return [(pending[0].model, list(pending))]
    groups: dict[int, tuple[ModelRuntime, list[PendingRun]]] = {}
    for p in pending:
        groups.setdefault(id(p.model), (p.model, []))[1].append(p)
    return list(groups.values())


def score_pending(pending: Sequence[PendingRun]) -> list[ScoreBatch]:
    """The scoring stage: one :class:`ScoreBatch` per model, in :func:`by_model` order.

    Runs that ingest wrote back to back (one model's, :meth:`WindowRows.batch`) are scored
    as their slice without grouping them first; any others by :func:`score_runs` per model.
    Writes no shared state (the worker runs it in a thread).
    """
    if not pending:
        return []
    rows = WindowRows.batch(pending)
    if rows is not None:
        model = pending[0].model
        return [model.loaded.scorer.score_ready(
            model.scale.transform_new(rows, window_keys(model, pending)))]
    return [score_runs(model, runs) for model, runs in by_model(pending)]


def score_runs(model: ModelRuntime, runs: Sequence[PendingRun]) -> ScoreBatch:
    """The scoring stage for one model's runs: their windows as one ``(windows, window,
    features)`` float32 input (the slice of the rows ingest wrote them in,
    :meth:`WindowRows.batch`, scaled into a new array: the runs' windows stay in original
    units; else joined into a new array, :func:`join_windows`, and scaled in place),
    scored by one ONNX Runtime call (:meth:`Scorer.score_ready`)."""
    rows = WindowRows.batch(runs)  # written back to back by ingest: one slice, no copy
    if rows is not None:
        scaled = model.scale.transform_new(rows, window_keys(model, runs))
    else:
        windows = join_windows([r.values for r in runs], *model.shape)
        scaled = model.scale.transform_owned(windows, window_keys(model, runs))
    return model.loaded.scorer.score_ready(scaled)


def window_keys(model: ModelRuntime, runs: Sequence[PendingRun]) -> list[str]:
    """Each window's key, as the scaler needs them (an empty list when it does not)."""
    if model.scale.identity or not model.scale.per_key:
        return []  # not read (ScaleTable.transform broadcasts the one row)
    return [r.key for r in runs for _ in range(len(r.windows))]
