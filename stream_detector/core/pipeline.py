"""The scoring pipeline without Kafka: records -> windows -> scores -> decisions -> events.

The Faust worker and ``stream-detector score`` both drive this class, so a file replayed
through Kafka and the same file scored offline give the same windows, scores and alerts.
Three steps, so the caller decides where the slow one runs:

1. :meth:`Pipeline.ingest_run` (in order): a run of one key's records (a message, parsed
   into columns by :mod:`stream_detector.core.record_runs`) joins the key's window in one numpy
   step; the windows it completes become one :class:`PendingRun`.
2. :meth:`Pipeline.score` (slow, no shared state touched): ONNX Runtime scores a batch of
   pending windows; the worker runs it in a thread so the event loop keeps consuming.
3. :meth:`Pipeline.decide` (in order): each score updates its key's detection history and,
   when it alerts, becomes an :class:`~schemas.events.AnomalyEvent`
   (:meth:`Pipeline.decide_events`: the same, keeping only the alerts).

Per-key state is a :class:`~stream_detector.core.key_state.KeyState`; records a restarted
worker sees again are recognised by position and skipped. Hybrid models' NPLM stage
(:mod:`stream_detector.core.hybrid`) runs after the AE stage.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from schemas.card import ModelCard
from schemas.events import AnomalyEvent, SourceRef
from schemas.records import Record
from stream_detector.core.detection import (
    Decision,
    DetectionParams,
    alerts_of,
    decide,
    page,
)
from stream_detector.core.events import build_event, quality_flags
from stream_detector.core.explanations import top_cells_rows
from stream_detector.core.hybrid import HybridStage, NPLMOutcome
from stream_detector.core.key_state import NO_POSITION, NO_TAG, KeyState, position_of, source_tag
from stream_detector.core.record_runs import RecordRun, runs_of
from stream_detector.core.registry import LoadedModel
from stream_detector.core.routing import Router
from stream_detector.core.scoring import ScaleTable, ScoreBatch
from stream_detector.core.thresholds import ResolvedThreshold
from stream_detector.core.timing import GAP, IMPUTED, TimePolicy, count_flags, observe
from stream_detector.core.windowing import WindowState
from stream_detector.core.windows import Window, WindowRun

__all__ = [
    "DictStore",
    "KeyState",
    "ModelRuntime",
    "Pending",
    "PendingRun",
    "Pipeline",
    "StateStore",
    "Scored",
    "position_of",
    "source_tag",
]

class StateStore(Protocol):
    """Where key states live: a dict offline, a changelog-backed table in the worker."""

    def get(self, model: str, key: str) -> KeyState | None: ...

    def put(self, model: str, key: str, state: KeyState, source: SourceRef) -> None: ...


class DictStore:
    """An in-memory :class:`StateStore` (offline scoring, tests)."""

    def __init__(self) -> None:
        self.states: dict[tuple[str, str], KeyState] = {}

    def get(self, model: str, key: str) -> KeyState | None:
        return self.states.get((model, key))

    def put(self, model: str, key: str, state: KeyState, source: SourceRef) -> None:
        self.states[(model, key)] = state


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

    def __post_init__(self) -> None:
        card = self.loaded.card
        self.scale = ScaleTable(card.scaler, card.n_features)
        self.params = DetectionParams.from_card(card.detection)
        self.hybrid = HybridStage.from_card(card)
        self.provider = self.loaded.scorer.provider
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
    """Completed windows of one key from one run of records, waiting for their scores."""

    __slots__ = ("model", "key", "state", "windows", "source", "imputed")

    def __init__(self, model: ModelRuntime, key: str, state: KeyState, windows: WindowRun,
                 source: SourceRef, imputed: bool = False) -> None:
        self.model, self.key, self.state = model, key, state
        self.windows, self.source, self.imputed = windows, source, imputed

    def item(self, j: int) -> Pending:
        """Window ``j`` of the run as a :class:`Pending` item."""
        return Pending(self.model, self.key, self.state, self.windows.window(j), self.source,
                       self.imputed)

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


class Pipeline:
    """Routes each record to the one model serving its key and turns windows into events.

    Records no model serves (:mod:`stream_detector.core.routing`) are skipped here; the worker
    dead-letters them (reason ``unrouted``) before they reach :meth:`ingest`.

    Raises
    ------
    ConfigurationError
        Two models claim the same keys (see :class:`~stream_detector.core.routing.Router`).
    """

    def __init__(self, models: Sequence[ModelRuntime], store: StateStore) -> None:
        self.models = list(models)
        self.router: Router[ModelRuntime] = Router(self.models)
        self.store = store
        # records flagged late, repeated, skewed, imputed, gap since last read (metrics)
        self.flag_counts: dict[int, int] = {}
        # records refused for their time: (source, index in message, reason, text)
        self.refused: list[tuple[SourceRef, int, str, str]] = []
        # per model name: versions whose key states must not carry over (other features)
        self._no_carry: dict[str, set[str]] = {}

    def set_models(self, models: Sequence[ModelRuntime]) -> None:
        """Swap in new model versions; keys keep their state across compatible versions.

        Compatible means the same window, stride and features (names and order): then a key
        keeps its window *and* its detection history (z-score statistics, warm-up count,
        quiet period), so a hot swap opens no blind period. Otherwise the key starts afresh.
        """
        router = Router(models)  # raises before anything changes
        old = {m.name: m for m in self.models}
        for m in models:
            before = old.get(m.name)
            if before is not None and before.card.version != m.card.version and (
                before.card.features != m.card.features
            ):
                self._no_carry.setdefault(m.name, set()).add(before.card.version)
        self.models, self.router = list(models), router

    def _state(self, model: ModelRuntime, key: str) -> KeyState:
        card = model.card
        state = self.store.get(model.name, key)
        if state is None or (state.window.window, state.window.features, state.window.stride) != (
            card.window, card.n_features, card.stride
        ) or state.version in self._no_carry.get(model.name, ()):
            state = KeyState(card.version, WindowState(card.window, card.n_features, card.stride))
        elif state.version != card.version:
            state.version = card.version  # same shape: window and history carry over
        if model.hybrid is None:
            state.sample = None
        elif not model.hybrid.fits(state.sample):
            state.sample = model.hybrid.new_ring()
        return state

    def ingest(
        self, records: Sequence[Record], source: SourceRef, first_index: int = 0
    ) -> list[PendingRun]:
        """Append records (one message's worth) to their keys' windows, in order."""
        pending: list[PendingRun] = []
        for run in runs_of(records):
            pending += self.ingest_run(run, source, first_index)
            first_index += len(run)
        return pending

    def ingest_run(
        self, run: RecordRun, source: SourceRef, first_index: int = 0
    ) -> list[PendingRun]:
        """Append a run of one key's records (record ``first_index`` on of the message at
        ``source``) to that key's window, in one step, for the model serving the key.

        Records whose position the key's state already holds (applied before a restart;
        their events went out then) are skipped: positions grow along a message, so they
        are a prefix of the run. Each record's time is judged in order (timing.py); a
        record refused for its time joins :attr:`refused` and no window.
        """
        n = len(run.texts)
        model = self.router.route(run.kind, run.key) if n else None
        if model is None:
            return []  # unrouted: the worker dead-letters it; offline it is not scored
        tag = source_tag(source)
        first = position_of(source.offset, first_index)
        state = self._state(model, run.key)
        skip = 0
        if first != NO_POSITION and state.last_source in (tag, NO_TAG):
            skip = max(0, state.last_position - first + 1)
            if skip >= n:
                return []
        part = run.tail(skip) if skip else run
        keep, flags = self._judge(model, state, part, source, first_index + skip)
        if keep is not None:
            part = part.take(keep)
        windows = state.window.extend_run(part.values, part.epoch_ns, part.texts, flags)
        state.last_position = position_of(source.offset, first_index + n - 1)
        state.last_source = tag
        self.store.put(model.name, run.key, state, source)
        if not windows.seq:
            return []
        return [PendingRun(model, run.key, state, windows, source)]

    def _judge(
        self, model: ModelRuntime, state: KeyState, run: RecordRun, source: SourceRef,
        first_index: int,
    ) -> tuple[list[int] | None, list[int]]:
        """Each record's timing flags, in order; the indices kept (None: all of them)."""
        clock, policy = state.window.clock, model.time
        flags: list[int] = []
        keep: list[int] | None = None
        imputed = run.imputed
        plain = policy.plain_step_ns
        for j, t in enumerate(run.epoch_ns):
            ahead = t - clock.newest_ns
            if 0 < ahead <= plain and not clock.ahead:
                clock.newest_ns, f = t, 0  # the common case, without a call (timing.observe)
            else:
                f = observe(clock, t, policy)
            if imputed is not None and imputed[j]:
                f |= IMPUTED
            if f:
                count_flags(self.flag_counts, f)
                if policy.is_dead_letter(f, ahead):
                    self.refused.append((source, first_index + j, "clock_skew",
                                         policy.refusal(run.texts[j], ahead)))
                    keep = list(range(j)) if keep is None else keep
                    continue
            if keep is not None:
                keep.append(j)
            flags.append(f)
        return keep, flags

    @staticmethod
    def score(pending: Sequence[PendingRun]) -> list[ScoreBatch]:
        """Score pending windows, one ONNX Runtime call per model (safe in a thread)."""
        batches: list[ScoreBatch] = []
        for model, runs in _by_model(pending):
            if len(runs) == 1:
                windows = runs[0].windows.values
            else:
                windows = np.concatenate([r.windows.values for r in runs])
            scaled = model.scale.transform(windows, _keys(model, runs))
            batches.append(model.loaded.scorer.score(scaled))
        return batches

    def decide(
        self, pending: Sequence[PendingRun], batches: Sequence[ScoreBatch],
        detected_at: str | None = None,
    ) -> list[Scored]:
        """Turn scores into decisions in arrival order; build events for alerts.

        One :class:`Scored` per window (offline scoring, calibration, tests); the worker
        uses :meth:`decide_events`, which takes the same decisions without them.
        """
        return self._decide(pending, batches, detected_at, keep=True).scored

    def decide_events(
        self, pending: Sequence[PendingRun], batches: Sequence[ScoreBatch],
        detected_at: str | None = None,
    ) -> list[tuple[Pending, AnomalyEvent]]:
        """The decisions of :meth:`decide` (same key histories, same events), keeping
        only the alerts: ``(window, event)`` in arrival order."""
        return self._decide(pending, batches, detected_at, keep=False).events

    def _decide(
        self, pending: Sequence[PendingRun], batches: Sequence[ScoreBatch],
        detected_at: str | None, keep: bool,
    ) -> _Decided:
        out = _Decided()
        by_run: dict[int, _Decided] = {}
        for (model, runs), scores in zip(_by_model(pending), batches, strict=True):
            batch = _ModelBatch(model, runs, scores)
            row = 0
            for run in runs:
                decided = _Decided()
                if model.hybrid is None:
                    self._decide_plain(batch, run, row, detected_at, keep, decided)
                else:
                    for j in range(len(run.windows.seq)):
                        s = self._decide_one(batch, run, row + j, j, detected_at)
                        decided.add(s, keep)
                by_run[id(run)] = decided
                row += len(run.windows.seq)
        # the detection history of a key must see its scores in arrival order
        for run in pending:
            out.extend(by_run[id(run)])
        return out

    @staticmethod
    def _decide_plain(batch: _ModelBatch, run: PendingRun, row: int, detected_at: str | None,
                      keep: bool, out: _Decided) -> None:
        """A model without an NPLM stage: the run's decisions first, in order, then its
        events, their top cells found in one vectorised pass (:func:`top_cells_rows`)."""
        model, n = batch.model, len(run.windows.seq)
        raws = batch.scores.scores[row : row + n].tolist()
        threshold = model.thresholds(run.key)
        detector = run.state.detector
        # a window across a gap: judged, not learnt
        learn = [not f & GAP for f in run.windows.flags] if any(run.windows.flags) else None
        # the value and seasonal components follow each window's newest (first) feature
        values = run.windows.values[:, -1, 0].tolist() if model.params.uses_value else None
        if keep:
            decisions = [decide(detector, raw, threshold.value, model.params,
                                math.nan if values is None else values[j],
                                learn is None or learn[j]) for j, raw in enumerate(raws)]
            alerts = [(j, d.detection_score) for j, d in enumerate(decisions) if d.alert]
        else:
            alerts = alerts_of(detector, raws, threshold.value, model.params, values, learn)
        errors = batch.scores.errors
        rows = [row + j for j, _ in alerts]
        cells = top_cells_rows(errors, rows, model.card.n_features) if alerts else []
        events: dict[int, AnomalyEvent] = {}
        for (j, z), top in zip(alerts, cells, strict=True):
            decision = Decision(alert=True, detection_score=z, warm_up=False, suppressed=False)
            item = run.item(j)
            events[j] = Pipeline._event(batch, item, row + j, raws[j], decision, threshold,
                                        detected_at, top)
            if not keep:
                out.events.append((item, events[j]))
        if keep:
            out.scored += [Scored(run.item(j), raws[j], d, threshold, events.get(j),
                                  errors[row + j]) for j, d in enumerate(decisions)]
            out.events += [(s.pending, s.event) for s in out.scored[-n:] if s.event is not None]

    def _decide_one(self, batch: _ModelBatch, run: PendingRun, i: int, j: int,
                    detected_at: str | None) -> Scored:
        model, item, errors = batch.model, run.item(j), batch.scores.errors[i]
        raw = float(batch.scores.scores[i])
        threshold = model.thresholds(item.key)
        params = model.params
        # the value and seasonal components follow the window's newest (first) feature
        value = float(item.window.values[-1, 0]) if params.uses_value else math.nan
        learn = not item.window.flags & GAP  # a window across a gap: judged, not learnt
        decision = decide(item.state.detector, raw, threshold.value, params, value, learn)
        hybrid, ring, outcome = model.hybrid, item.state.sample, None
        if hybrid is not None and ring is not None:
            outcome = hybrid.observe(ring, raw, errors, item.window.start_text)
        event = None
        if decision.alert:  # one window's event: no p-value (that belongs to a sample)
            event = self._event(batch, item, i, raw, decision, threshold, detected_at)
        elif (hybrid is not None and ring is not None and outcome is not None and outcome.alert
              and page(item.state.detector, model.params)):  # the key's quiet period holds
            event = self._event(batch, item, i, raw, decision, hybrid.threshold, detected_at)
            event = hybrid.nplm_event(event, ring, outcome)
        return Scored(item, raw, decision, threshold, event, errors, outcome)

    @staticmethod
    def _event(
        batch: _ModelBatch, item: Pending, i: int, raw: float, decision: Decision,
        threshold: ResolvedThreshold, detected_at: str | None,
        cells: list[tuple[int, int, float]] | None = None,
    ) -> AnomalyEvent:
        model, expected = batch.model, batch.expected
        return build_event(
            model.card,
            key=item.key,
            window_start=item.window.start_text,
            window_end=item.window.end_text,
            score=decision.detection_score,
            raw_score=raw,
            threshold=threshold,
            errors=batch.scores.errors[i],
            observed=item.window.values[-1],
            expected=None if expected is None else expected[i],
            provider=model.provider,
            source=item.source,
            quality=quality_flags(item.imputed, item.window.late, decision.warm_up,
                                  item.window.flags),
            detected_at=detected_at,
            cells=cells,
        )


@dataclass
class _Decided:
    """Decisions of pending runs: every window's (``keep``) or the alerts' only."""

    scored: list[Scored] = field(default_factory=list)
    events: list[tuple[Pending, AnomalyEvent]] = field(default_factory=list)

    def add(self, s: Scored, keep: bool) -> None:
        if keep:
            self.scored.append(s)
        if s.event is not None:
            self.events.append((s.pending, s.event))

    def extend(self, other: _Decided) -> None:
        self.scored += other.scored
        self.events += other.events


@dataclass
class _ModelBatch:
    """One model's pending windows with their scores, as :meth:`Pipeline.decide` walks them."""

    model: ModelRuntime
    runs: list[PendingRun]
    scores: ScoreBatch

    @functools.cached_property
    def expected(self) -> npt.NDArray[np.float32] | None:
        """Each window's last-step reconstruction in original units; None without one.

        One vectorised inverse per batch, at its first alert (per alert it cost 7 us); the
        scaler is elementwise, so these are the values inverting whole windows gives.
        """
        recon = self.scores.reconstructions
        if recon is None:
            return None
        return self.model.scale.inverse(recon[:, -1:], _keys(self.model, self.runs))[:, 0]


def _by_model(pending: Sequence[PendingRun]) -> list[tuple[ModelRuntime, list[PendingRun]]]:
    if pending and all(p.model is pending[0].model for p in pending):  # one model: no dict
        return [(pending[0].model, list(pending))]
    groups: dict[int, tuple[ModelRuntime, list[PendingRun]]] = {}
    for p in pending:
        groups.setdefault(id(p.model), (p.model, []))[1].append(p)
    return list(groups.values())


def _keys(model: ModelRuntime, runs: Sequence[PendingRun]) -> list[str]:
    """Each window's key, as the scaler needs them (an empty list when it does not)."""
    if model.scale.identity or not model.scale.per_key:
        return []  # not read (ScaleTable.transform broadcasts the one row)
    return [r.key for r in runs for _ in range(len(r.windows.seq))]
