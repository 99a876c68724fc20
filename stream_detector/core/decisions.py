"""The decide step of the pipeline: scores -> detection decisions -> anomaly events (pure).

Each score updates its key's detection history (:mod:`stream_detector.core.detection`) in
arrival order and, when it alerts, becomes an :class:`~schemas.events.AnomalyEvent`. A model
without an NPLM stage decides a run's windows first and then builds their events, their top
cells found in one vectorised pass; a hybrid model's windows go one by one through the NPLM
stage (:mod:`stream_detector.core.hybrid`) too.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from schemas.events import AnomalyEvent
from stream_detector.core.detection import Decision, alerts_of, decide, page
from stream_detector.core.events import build_event, quality_flags
from stream_detector.core.explanations import top_cells_rows
from stream_detector.core.model_runtime import (
    ModelRuntime,
    Pending,
    PendingRun,
    Scored,
    by_model,
    window_keys,
)
from stream_detector.core.scoring import ScoreBatch
from stream_detector.core.thresholds import ResolvedThreshold
from stream_detector.core.timing import GAP

__all__ = ["Decided", "decide_runs"]


def decide_runs(
    pending: Sequence[PendingRun], batches: Sequence[ScoreBatch], detected_at: str | None,
    keep: bool,
) -> Decided:
    """Decide every window of ``pending`` (scored in ``batches``, one per model, in the order
    of :func:`~stream_detector.core.model_runtime.by_model`), in arrival order.

    Parameters
    ----------
    detected_at
        The events' detection time; None: now (UTC).
    keep
        Keep a :class:`Scored` per window; otherwise only the alerts' events.
    """
    out = Decided()
    by_run: dict[int, Decided] = {}
    for (model, runs), scores in zip(by_model(pending), batches, strict=True):
        batch = _ModelBatch(model, runs, scores)
        row = 0
        for run in runs:
            decided = Decided()
            if model.hybrid is None:
                _decide_plain(batch, run, row, detected_at, keep, decided)
            else:
                for j in range(len(run.windows)):
                    s = _decide_one(batch, run, row + j, j, detected_at)
                    decided.add(s, keep)
            by_run[id(run)] = decided
            row += len(run.windows)
    # the detection history of a key must see its scores in arrival order
    for run in pending:
        out.extend(by_run[id(run)])
    return out


def _decide_plain(batch: _ModelBatch, run: PendingRun, row: int, detected_at: str | None,
                  keep: bool, out: Decided) -> None:
    """A model without an NPLM stage: the run's decisions first, in order, then its
    events, their top cells found in one vectorised pass (:func:`top_cells_rows`)."""
    model, n = batch.model, len(run.windows)
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
        events[j] = _event(batch, item, row + j, raws[j], decision, threshold,
                                    detected_at, top)
        if not keep:
            out.events.append((item, events[j]))
    if keep:
        out.scored += [Scored(run.item(j), raws[j], d, threshold, events.get(j),
                              errors[row + j]) for j, d in enumerate(decisions)]
        out.events += [(s.pending, s.event) for s in out.scored[-n:] if s.event is not None]


def _decide_one(batch: _ModelBatch, run: PendingRun, i: int, j: int,
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
        event = _event(batch, item, i, raw, decision, threshold, detected_at)
    elif (hybrid is not None and ring is not None and outcome is not None and outcome.alert
          and page(item.state.detector, model.params)):  # the key's quiet period holds
        event = _event(batch, item, i, raw, decision, hybrid.threshold, detected_at)
        event = hybrid.nplm_event(event, ring, outcome)
    return Scored(item, raw, decision, threshold, event, errors, outcome)


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
class Decided:
    """Decisions of pending runs: every window's (``keep``) or the alerts' only.

    ``events`` holds ``(window, event)`` of the alerts in arrival order either way.
    """

    scored: list[Scored] = field(default_factory=list)
    events: list[tuple[Pending, AnomalyEvent]] = field(default_factory=list)

    def add(self, s: Scored, keep: bool) -> None:
        if keep:
            self.scored.append(s)
        if s.event is not None:
            self.events.append((s.pending, s.event))

    def extend(self, other: Decided) -> None:
        self.scored += other.scored
        self.events += other.events


@dataclass
class _ModelBatch:
    """One model's pending windows with their scores, as :func:`decide_runs` walks them."""

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
        return self.model.scale.inverse(recon[:, -1:], window_keys(self.model, self.runs))[:, 0]
