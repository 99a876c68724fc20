"""The scoring pipeline without Kafka: records -> windows -> scores -> decisions -> events.

The Faust worker and ``stream-detector score`` both drive this class, so a file replayed
through Kafka and the same file scored offline give the same windows, scores and alerts.
Three steps, so the caller decides where the slow one runs:

1. :meth:`Pipeline.ingest_run` (in order): a run of one key's records (a message, parsed
   into columns by :mod:`stream_detector.core.record_runs`) joins the key's window in one numpy
   step; the windows it completes become one
   :class:`~stream_detector.core.model_runtime.PendingRun`.
2. :meth:`Pipeline.score` (slow, no shared state touched): ONNX Runtime scores a batch of
   pending windows; the worker runs it in a thread so the event loop keeps consuming.
3. :meth:`Pipeline.decide` (in order): each score updates its key's detection history and,
   when it alerts, becomes an :class:`~schemas.events.AnomalyEvent`
   (:meth:`Pipeline.decide_events`: the same, keeping only the alerts;
   :mod:`stream_detector.core.decisions` holds the step).

Per-key state is a :class:`~stream_detector.core.key_state.KeyState` in a
:class:`~stream_detector.core.key_state.StateStore`; records a restarted worker sees again
are recognised by position (:meth:`~stream_detector.core.key_state.KeyState.applied`) and
skipped. Hybrid models' NPLM stage
(:mod:`stream_detector.core.hybrid`) runs after the AE stage.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from schemas.events import AnomalyEvent, SourceRef
from schemas.records import Record
from stream_detector.core.decisions import decide_runs
from stream_detector.core.key_state import KeyState, StateStore, position_of, source_tag
from stream_detector.core.model_runtime import (
    ModelRuntime,
    Pending,
    PendingRun,
    Scored,
    score_pending,
)
from stream_detector.core.record_runs import RecordRun, runs_of
from stream_detector.core.routing import Router
from stream_detector.core.scoring import ScoreBatch
from stream_detector.core.timing import FEW_STEPS, IMPUTED, count_flags, observe, plain_steps
from stream_detector.core.windowing import WindowState

__all__ = ["Pipeline"]


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
        state = self._state(model, run.key)
        skip = state.applied(position_of(source.offset, first_index), tag)
        if skip >= n:
            return []
        part = run.tail(skip) if skip else run
        keep, flags = self._judge(model, state, part, source, first_index + skip)
        if keep is not None:
            part = part.take(keep)
        windows = state.window.extend_run(part.values, part.epoch_ns, part.texts, flags,
                                          rows=model.rows)
        state.last_position = position_of(source.offset, first_index + n - 1)
        state.last_source = tag
        self.store.put(model.name, run.key, state, source)
        if not len(windows):
            return []
        return [PendingRun(model, run.key, state, windows, source)]

    def ingest_group(
        self, runs: Sequence[RecordRun], sources: Sequence[SourceRef]
    ) -> list[PendingRun] | None:
        """:meth:`ingest_run` of several whole messages of one key, in order (``runs[i]``
        is all of the message at ``sources[i]``; one topic partition), in one step.

        Only the plain case is taken: no record applied before, none imputed, every time a
        plain step (:func:`~stream_detector.core.timing.plain_steps`). Otherwise None, with
        nothing changed: the caller then ingests the messages one by one. Either way the
        key's windows, state and events are the same; a window's event names the message
        holding its newest record (:meth:`PendingRun.source_of`).
        """
        head, last = runs[0], sources[-1]
        model = self.router.route(head.kind, head.key)
        if model is None or any(r.imputed is not None for r in runs):
            return None
        tag = source_tag(last)
        state = self._state(model, head.key)
        if state.applied(position_of(sources[0].offset, 0), tag):
            return None  # a replay: its applied prefix is skipped message by message
        # the runs' columns joined by list concatenation (a C copy; a comprehension over
        # the records cost ~5% of the batch step at 100 records a message, py-spy)
        ns: list[int] = []
        texts: list[str] = []
        ends: list[int] = []
        for r in runs:
            ns += r.epoch_ns
            texts += r.texts
            ends.append(len(texts))
        times: Sequence[int] | npt.NDArray[np.int64] = ns  # a few times: the list
        if len(ns) > FEW_STEPS:  # many: the runs' int64 arrays joined, when each has one
            arrays = [a for r in runs if (a := r.ns_array) is not None]
            if len(arrays) == len(runs):
                times = np.concatenate(arrays)
        if not plain_steps(state.window.clock, times, model.time, min_run=1):
            return None
        first = state.window.count
        windows = state.window.extend_run(
            np.concatenate([r.values for r in runs]), ns, texts, [0] * len(texts),
            rows=model.rows)
        state.last_position = position_of(last.offset, len(runs[-1].texts) - 1)
        state.last_source = tag
        self.store.put(model.name, head.key, state, last)
        if not len(windows):
            return []
        return [PendingRun(model, head.key, state, windows, last,
                           parts=(first, ends, sources))]

    def _judge(
        self, model: ModelRuntime, state: KeyState, run: RecordRun, source: SourceRef,
        first_index: int,
    ) -> tuple[list[int] | None, list[int]]:
        """Each record's timing flags, in order; the indices kept (None: all of them)."""
        clock, policy = state.window.clock, model.time
        times = run.epoch_ns if run.ns_array is None else run.ns_array
        if run.imputed is None and plain_steps(clock, times, policy):
            return None, [0] * len(run.epoch_ns)  # no record flagged, none refused
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
        return score_pending(pending)

    def decide(
        self, pending: Sequence[PendingRun], batches: Sequence[ScoreBatch],
        detected_at: str | None = None,
    ) -> list[Scored]:
        """Turn scores into decisions in arrival order; build events for alerts.

        One :class:`Scored` per window (offline scoring, calibration, tests); the worker
        uses :meth:`decide_events`, which takes the same decisions without them.
        """
        return decide_runs(pending, batches, detected_at, keep=True).scored

    def decide_events(
        self, pending: Sequence[PendingRun], batches: Sequence[ScoreBatch],
        detected_at: str | None = None,
    ) -> list[tuple[Pending, AnomalyEvent]]:
        """The decisions of :meth:`decide` (same key histories, same events), keeping
        only the alerts: ``(window, event)`` in arrival order."""
        return decide_runs(pending, batches, detected_at, keep=False).events
