"""The scoring pipeline without Kafka: records -> windows -> scores -> decisions -> events.

The Faust worker and ``stream-detector score`` both drive this class, so a file replayed
through Kafka and the same file scored offline give the same windows, scores and alerts.
Three steps, so the caller decides where the slow one runs:

1. :meth:`Pipeline.ingest` (fast, in order): each record joins its key's window; every
   window that completes becomes a :class:`Pending` item.
2. :meth:`Pipeline.score` (slow, no shared state touched): ONNX Runtime scores a batch of
   pending windows; the worker runs it in a thread so the event loop keeps consuming.
3. :meth:`Pipeline.decide` (fast, in order): each score updates its key's detection history
   and, when it alerts, becomes an :class:`~schemas.events.AnomalyEvent`.

Per-key state (:class:`KeyState`) holds the window buffer, the detection history and the
position of the last record applied (offset and index in its message, with a tag of the
topic partition it counts in), so a record seen again after a crash (its offset was not
committed, but the state that includes it was) is recognised and skipped, while records of
another topic or partition never are. For hybrid
models it also holds the key's NPLM sample ring, and :meth:`Pipeline.decide` runs the NPLM
stage (:mod:`stream_detector.hybrid`) after the AE stage.
"""

from __future__ import annotations

import functools
import math
import struct
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from schemas.card import ModelCard
from schemas.events import AnomalyEvent, SourceRef
from schemas.records import MAX_RECORDS_PER_MESSAGE, Record
from stream_detector.detection import Decision, DetectionParams, DetectorState, decide, page
from stream_detector.events import build_event, quality_flags, top_cells_rows
from stream_detector.hybrid import HybridStage, NPLMOutcome, SampleRing
from stream_detector.registry import LoadedModel
from stream_detector.routing import Router
from stream_detector.scoring import ScaleTable, ScoreBatch
from stream_detector.thresholds import ResolvedThreshold
from stream_detector.timing import GAP, IMPUTED, TimePolicy, count_flags, observe
from stream_detector.windowing import Window, WindowState

__all__ = [
    "DictStore",
    "KeyState",
    "ModelRuntime",
    "Pending",
    "Pipeline",
    "StateStore",
    "Scored",
    "position_of",
    "source_tag",
]

_HEADER: Final = struct.Struct("<4sqHII")  # magic, last position, version len, window len, det len
_MAGIC: Final = b"SDK1"
# SDK2: SDK1's layout plus a trailing NPLM sample ring (hybrid models); states without a
# ring are still written as SDK1, so older workers keep reading non-hybrid states.
_HEADER2: Final = struct.Struct("<4sqHIII")  # ... and sample ring len
_MAGIC2: Final = b"SDK2"
# SDK3: SDK2's layout plus the source tag of ``last_position`` (which topic and partition
# it counts in). Written whenever the tag is known, i.e. by the worker: workers older than
# SDK3 cannot read those states, so upgrade every worker of an app id together.
_HEADER3: Final = struct.Struct("<4sqHIIII")  # ... and source tag
_MAGIC3: Final = b"SDK3"
_HEADERS: Final = {_MAGIC: _HEADER, _MAGIC2: _HEADER2, _MAGIC3: _HEADER3}
_NO_POSITION: Final = -1
_NO_TAG: Final = 0  # states from before SDK3 and offline sources: the position alone counts


def source_tag(source: SourceRef) -> int:
    """A nonzero 32-bit tag of the topic and partition that positions count in.

    Offsets of another topic (an app id reused with a new input topic) or of another
    partition (a topic repartitioned) are not comparable with the stored position.
    """
    if source.offset is None:
        return _NO_TAG
    return zlib.crc32(f"{source.topic}\x00{source.partition}".encode()) | 1


def position_of(offset: int | None, index: int) -> int:
    """Total order of records in a partition: message offset, then index in the message.

    >>> position_of(7, 2) > position_of(7, 1) > position_of(6, 9_999)
    True
    """
    return -1 if offset is None else offset * MAX_RECORDS_PER_MESSAGE + index


@dataclass
class KeyState:
    """Everything the pipeline remembers about one key for one model."""

    version: str
    window: WindowState
    detector: DetectorState = field(default_factory=DetectorState)
    last_position: int = _NO_POSITION
    sample: SampleRing | None = None  # hybrid models: the key's recent NPLM features
    last_source: int = _NO_TAG  # source_tag() of the topic partition last_position is in

    def to_bytes(self) -> bytes:
        version = self.version.encode()
        win, det = self.window.to_bytes(), self.detector.to_bytes()
        ring = self.sample.to_bytes() if self.sample is not None else b""
        sizes = (self.last_position, len(version), len(win), len(det))
        if self.last_source != _NO_TAG:
            header = _HEADER3.pack(_MAGIC3, *sizes, len(ring), self.last_source)
        elif self.sample is None:
            header = _HEADER.pack(_MAGIC, *sizes)
        else:
            header = _HEADER2.pack(_MAGIC2, *sizes, len(ring))
        return b"".join((header, version, win, det, ring))

    @classmethod
    def from_bytes(cls, data: bytes) -> KeyState:
        header = _HEADERS.get(data[:4])
        if header is None or len(data) < header.size:
            raise ValueError("not a stream-detector key state (corrupt or foreign changelog)")
        _, last, nv, nw, nd, *rest = header.unpack_from(data)
        ns = rest[0] if rest else 0
        tag = rest[1] if len(rest) > 1 else _NO_TAG
        if len(data) != header.size + nv + nw + nd + ns:
            raise ValueError("not a stream-detector key state (corrupt or foreign changelog)")
        at = header.size
        version = data[at : at + nv].decode()
        window = WindowState.from_bytes(data[at + nv : at + nv + nw])
        detector = DetectorState.from_bytes(data[at + nv + nw : at + nv + nw + nd])
        sample = SampleRing.from_bytes(data[at + nv + nw + nd :]) if ns else None
        return cls(version=version, window=window, detector=detector, last_position=last,
                   sample=sample, last_source=tag)


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

    Records no model serves (:mod:`stream_detector.routing`) are skipped here; the worker
    dead-letters them (reason ``unrouted``) before they reach :meth:`ingest`.

    Raises
    ------
    ConfigurationError
        Two models claim the same keys (see :class:`~stream_detector.routing.Router`).
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
        self, records: Iterable[Record], source: SourceRef, first_index: int = 0
    ) -> list[Pending]:
        """Append records (one message's worth) to their keys' windows, in order."""
        pending: list[Pending] = []
        tag = source_tag(source)
        route = self.router.route
        for index, record in enumerate(records, start=first_index):
            model = route(record.kind, record.key)
            if model is None:
                continue  # unrouted: the worker dead-letters it; offline it is not scored
            position = position_of(source.offset, index)
            state = self._state(model, record.key)
            if (position != _NO_POSITION and position <= state.last_position
                    and state.last_source in (tag, _NO_TAG)):
                continue  # already applied before a restart: its events went out then
            window = self._push(model, state, record, source, index)
            state.last_position, state.last_source = position, tag
            self.store.put(model.name, record.key, state, source)
            if window is not None:
                pending.append(Pending(model, record.key, state, window, source))
        return pending

    def _push(
        self, model: ModelRuntime, state: KeyState, record: Record, source: SourceRef, index: int
    ) -> Window | None:
        """Judge the record's time (timing.py), then add it to its key's window."""
        win, t = state.window, record.epoch_ns
        clock = win.clock
        ahead = t - clock.newest_ns
        if 0 < ahead <= model.time.plain_step_ns and not clock.ahead:
            clock.newest_ns, flags = t, 0  # the common case, without a call (timing.observe)
        else:
            flags = observe(clock, t, model.time)
        if record.imputed:
            flags |= IMPUTED
        if flags:
            count_flags(self.flag_counts, flags)
            if model.time.is_dead_letter(flags, ahead):
                self.refused.append((source, index, "clock_skew", model.time.refusal(
                    record.timestamp_text, ahead)))
                return None
        return win.push(record.values, t, record.timestamp_text, flags=flags)

    @staticmethod
    def score(pending: Sequence[Pending]) -> list[ScoreBatch]:
        """Score pending windows, one ONNX Runtime call per model (safe in a thread)."""
        batches: list[ScoreBatch] = []
        for model, items in _by_model(pending):
            windows = np.stack([p.window.values for p in items])
            scaled = model.scale.transform(windows, [p.key for p in items])
            batches.append(model.loaded.scorer.score(scaled))
        return batches

    def decide(
        self, pending: Sequence[Pending], batches: Sequence[ScoreBatch],
        detected_at: str | None = None,
    ) -> list[Scored]:
        """Turn scores into decisions in arrival order; build events for alerts."""
        results: dict[int, Scored] = {}
        for (model, items), scores in zip(_by_model(pending), batches, strict=True):
            batch = _ModelBatch(model, items, scores)
            if model.hybrid is None:
                scored = self._decide_plain(batch, detected_at)
            else:
                scored = [self._decide_one(batch, i, detected_at) for i in range(len(items))]
            results.update((id(item), s) for item, s in zip(items, scored, strict=True))
        # the detection history of a key must see its scores in arrival order
        return [results[id(p)] for p in pending]

    @staticmethod
    def _decision(batch: _ModelBatch, i: int) -> tuple[float, ResolvedThreshold, Decision]:
        item, model = batch.items[i], batch.model
        raw = float(batch.scores.scores[i])
        threshold = model.thresholds(item.key)
        params = model.params
        # the value and seasonal components follow the window's newest (first) feature
        value = float(item.window.values[-1, 0]) if params.uses_value else math.nan
        learn = not item.window.flags & GAP  # a window across a gap: judged, not learnt
        return raw, threshold, decide(item.state.detector, raw, threshold.value, params, value,
                                      learn)

    def _decide_plain(self, batch: _ModelBatch, detected_at: str | None) -> list[Scored]:
        """A model without an NPLM stage: every decision first, in order, then the events.

        Building an event touches no key state, so the alerts' top cells can be found in
        one vectorised pass (:func:`top_cells_rows`) instead of one per alert.
        """
        decided = [self._decision(batch, i) for i in range(len(batch.items))]
        alerts = [i for i, (_, _, decision) in enumerate(decided) if decision.alert]
        errors = batch.scores.errors
        cells = dict(zip(alerts, top_cells_rows(errors, alerts, batch.model.card.n_features),
                         strict=True))
        out: list[Scored] = []
        for i, (raw, threshold, decision) in enumerate(decided):
            event = None
            if decision.alert:
                event = self._event(batch, i, raw, decision, threshold, detected_at, cells[i])
            out.append(Scored(batch.items[i], raw, decision, threshold, event, errors[i]))
        return out

    def _decide_one(self, batch: _ModelBatch, i: int, detected_at: str | None) -> Scored:
        model, item, errors = batch.model, batch.items[i], batch.scores.errors[i]
        raw, threshold, decision = self._decision(batch, i)
        hybrid, ring, outcome = model.hybrid, item.state.sample, None
        if hybrid is not None and ring is not None:
            outcome = hybrid.observe(ring, raw, errors, item.window.start_text)
        event = None
        if decision.alert:
            event = self._event(batch, i, raw, decision, threshold, detected_at)
            if hybrid is not None and ring is not None:
                event = hybrid.annotate(event, ring, outcome)
        elif (hybrid is not None and ring is not None and outcome is not None and outcome.alert
              and page(item.state.detector, model.params)):  # the key's quiet period holds
            event = self._event(batch, i, raw, decision, hybrid.threshold, detected_at)
            event = hybrid.nplm_event(event, ring, outcome)
        return Scored(item, raw, decision, threshold, event, errors, outcome)

    @staticmethod
    def _event(
        batch: _ModelBatch, i: int, raw: float, decision: Decision,
        threshold: ResolvedThreshold, detected_at: str | None,
        cells: list[tuple[int, int, float]] | None = None,
    ) -> AnomalyEvent:
        model, item, expected = batch.model, batch.items[i], batch.expected
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
class _ModelBatch:
    """One model's pending windows with their scores, as :meth:`Pipeline.decide` walks them."""

    model: ModelRuntime
    items: list[Pending]
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
        return self.model.scale.inverse(recon[:, -1:], [p.key for p in self.items])[:, 0]


def _by_model(pending: Sequence[Pending]) -> list[tuple[ModelRuntime, list[Pending]]]:
    groups: dict[int, tuple[ModelRuntime, list[Pending]]] = {}
    for p in pending:
        groups.setdefault(id(p.model), (p.model, []))[1].append(p)
    return list(groups.values())

