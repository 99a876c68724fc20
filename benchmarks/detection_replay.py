"""Re-decide scored windows with other detection settings, without scoring them again.

A model's raw scores do not depend on the detection settings, so a file is scored once
through the worker's pipeline (:func:`~stream_detector.files.batch.score_records`) and the
inputs of every :func:`~stream_detector.core.detection.decide` call are kept: each window's
key, end time, raw score, newest value (first feature), threshold and whether it was learnt
(a window across a gap is judged, not learnt). :func:`replay` feeds them through ``decide``
with the card's detection section plus overrides, as the worker would decide them. It takes
milliseconds per thousand windows instead of an ONNX pass per setting, and
:func:`trace` checks that replaying the card's own settings gives the worker's alerts.

>>> t = Trace(["k"] * 3, ["a", "b", "c"], [.2, .2, 9.0], [1.0, 1.0, 9.0], [True] * 3,
...           [4.0] * 3, {"halflife": 8, "warmup": 2, "suppress": 3}, [False, False, True])
>>> replay(t, {}), replay(t, {"warmup": 3})
([False, False, True], [False, False, False])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offline_training.durations import CAPPED, detection_windows
from schemas.records import Record
from stream_detector.core.detection import DetectionParams, DetectorState, decide
from stream_detector.core.timing import GAP
from stream_detector.files.batch import load_runtime, score_records

__all__ = ["Trace", "replay", "trace"]


@dataclass(frozen=True)
class Trace:
    """The inputs of every ``decide`` call of one scoring pass, in arrival order (one entry
    per window), the card's detection section and the worker's alerts."""

    keys: list[str]
    stamps: list[str]  # the window's end (``ScoreRow.timestamp``)
    raw: list[float]
    values: list[float]  # the window's newest value, first feature
    learn: list[bool]
    thresholds: list[float]
    detection: dict[str, Any]
    alerts: list[bool]
    uncapped: dict[str, Any] = field(default_factory=dict)  # warm-up, quiet period uncapped


def trace(model_dir: Path, records: Sequence[Record]) -> Trace:
    """Score ``records`` with the newest model under ``model_dir`` (CPU), keeping what
    :func:`replay` needs.

    Raises
    ------
    ValueError
        For a hybrid model (its NPLM stage pages too, outside ``decide``), or when replaying
        the card's own settings does not give the worker's alerts (the replay would be wrong).
    """
    runtime = load_runtime(model_dir, "cpu")
    if runtime.hybrid is not None:
        raise ValueError("a hybrid model's NPLM stage also pages; replay plain models only")
    card = runtime.card
    out = Trace([], [], [], [], [], [], dict(card.detection), [])
    if card.time is not None:  # what ``max_windows`` 0 would have given the durations
        section = {k: v for k, v in card.detection.items() if k not in CAPPED}
        step = (card.time.cadence_s, card.stride, -(-card.window // card.stride))
        capped = detection_windows(section, step[0], step[1], span=step[2])
        every = detection_windows({**section, "max_windows": 0}, step[0], step[1],
                                  span=step[2])
        out.uncapped.update({k: every[k] for k in CAPPED if k in every  # not a count given
                             and card.detection.get(k) == capped.get(k)})  # explicitly
    for s, row in score_records(runtime, records):
        out.keys.append(row.key)
        out.stamps.append(row.timestamp)
        out.raw.append(s.raw_score)
        out.values.append(float(s.pending.window.values[-1, 0]))
        out.learn.append(not s.pending.window.flags & GAP)
        out.thresholds.append(row.threshold)
        out.alerts.append(row.alert)
    if replay(out, {}) != out.alerts:
        raise ValueError(f"replaying {model_dir}'s own settings differs from its scoring pass")
    return out


def replay(t: Trace, overrides: dict[str, Any]) -> list[bool]:
    """Whether each window of ``t`` alerts with the card's detection section plus
    ``overrides`` (:class:`DetectionParams` fields, or ``max_windows`` 0: the warm-up and
    quiet period its durations give without the cap), every key starting fresh."""
    if overrides.get("max_windows") == 0:
        overrides = {**t.uncapped, **overrides}
    params = DetectionParams.from_card({**t.detection, **overrides})
    states: dict[str, DetectorState] = {}
    nan = math.nan
    return [decide(states.setdefault(key, DetectorState()), raw, threshold, params,
                   value if params.uses_value else nan, learn).alert
            for key, raw, value, learn, threshold in zip(
                t.keys, t.raw, t.values, t.learn, t.thresholds, strict=True)]
