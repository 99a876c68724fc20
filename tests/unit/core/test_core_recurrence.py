"""Recurrence (issue #11): a bursty key's routine excursion, seen paging before, does not
page again; a first incident, a larger one of the same shape and one of another shape do.

On NAB's tweet counts a third of the false positives were such repeats (UPS: an hour-long
plateau of about the same height every few days, paged ten times in seven weeks)."""

from __future__ import annotations

from array import array
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from offline_training.durations import detection_windows
from offline_training.train_card import detection_section
from offline_training.train_options import DEFAULTS, TrainOptions
from schemas.records import SeriesPoint
from stream_detector.core.components import trust_now
from stream_detector.core.detection import DetectionParams, DetectorState, alerts_of, decide
from stream_detector.core.recurrence import (
    RECUR_MAX,
    RECUR_MIN,
    keep,
    match_size,
    observe,
    recurs,
)
from stream_detector.exceptions import ModelCardError

ROWS = 96  # windows a day, short to keep the test quick
PLATEAUS = [int(d * ROWS + 40) for d in (2, 3.5, 5, 6.5, 8)]  # a bot's hour every 1.5 days


def _params(memory: int, horizon: int = 30 * ROWS) -> DetectionParams:
    """The AE component only, a day's quiet period and no other habituation: every repeat
    would page without recurrence. There is no trust without the ``value`` component, so
    ``recur_trust`` above 1 (every key)."""
    return DetectionParams(halflife=ROWS, warmup=ROWS, suppress=ROWS, recur=24,
                           recur_memory=memory, recur_horizon=horizon, recur_trust=2.0)


def _key(seed: int, last: str = "plateau") -> tuple[np.ndarray, np.ndarray]:
    """Counts around 100 (noise 5) with a plateau of +80 for 6 windows at each of
    :data:`PLATEAUS`; the last one is replaced by ``last``: another ``"plateau"``, a
    ``"larger"`` one (+300), a ``"longer"`` one (18 windows) or a ``"spike"`` (+400,
    decaying by half each window). The AE's raw score follows the excursion's size
    (log-normal noise otherwise)."""
    rng = np.random.default_rng(seed)
    n = 9 * ROWS
    values = 100 + rng.normal(0, 5, n)
    for at in PLATEAUS[:-1]:
        values[at:at + 6] += 80 + rng.normal(0, 3, 6)
    at = PLATEAUS[-1]
    if last in ("plateau", "larger", "longer"):
        span = 18 if last == "longer" else 6
        values[at:at + span] += (300 if last == "larger" else 80) + rng.normal(0, 3, span)
    else:
        values[at:at + 12] += 400 * 0.5 ** np.arange(12)
    raw = np.exp(rng.normal(0, 0.3, n) + np.maximum(values - 100, 0) / 20)
    return values, raw


def _pages(values: np.ndarray, raw: np.ndarray, p: DetectionParams) -> list[int]:
    """Which plateaus paged (their index in :data:`PLATEAUS`)."""
    s = DetectorState()
    alerts = [i for i, (v, r) in enumerate(zip(values, raw, strict=True))
              if decide(s, float(r), 5.5, p, float(v)).alert]
    return [k for k, at in enumerate(PLATEAUS) if any(at <= i < at + 24 for i in alerts)]


@pytest.mark.parametrize("seed", range(4))
def test_a_repeated_plateau_pages_once_while_without_recurrence_every_time(seed: int) -> None:
    values, raw = _key(seed)
    assert _pages(values, raw, _params(0)) == [0, 1, 2, 3, 4]
    assert _pages(values, raw, _params(8)) == [0]


@pytest.mark.parametrize("last", ["larger", "spike", "longer"])
def test_a_larger_longer_or_other_excursion_still_pages(last: str) -> None:
    """Larger: over ``recur_size``; longer: once it lasts past the shift allowed."""
    for seed in range(4):
        values, raw = _key(seed, last)
        assert _pages(values, raw, _params(8)) == [0, 4]


def test_a_shape_kept_longer_ago_than_the_horizon_pages_again() -> None:
    values, raw = _key(0)
    assert _pages(values, raw, _params(8, horizon=int(1.6 * ROWS))) == [0, 2, 4]
    assert _pages(values, raw, _params(8, horizon=int(1.4 * ROWS))) == [0, 1, 2, 3, 4]


def test_the_worker_and_the_batch_path_decide_the_same_and_a_restart_changes_nothing() -> None:
    values, raw = _key(1, "spike")
    p = _params(8)
    one = DetectorState()
    single = [i for i, (v, r) in enumerate(zip(values, raw, strict=True))
              if decide(one, float(r), 5.5, p, float(v)).alert]
    half = len(values) // 2 + 7  # between two plateaus, with one shape kept
    first = DetectorState()
    batch = [i for i, _ in alerts_of(first, raw[:half].tolist(), 5.5, p, values[:half].tolist())]
    assert len(first.shape_at) == 1 and len(first.recent) == 24
    restored = DetectorState.from_bytes(first.to_bytes())  # a restart: the changelog's bytes
    assert restored == first
    batch += [half + i for i, _ in alerts_of(restored, raw[half:].tolist(), 5.5, p,
                                              values[half:].tolist())]
    assert batch == single and restored == one


def test_a_model_without_recurrence_keeps_no_values() -> None:
    values, raw = _key(0)
    s = DetectorState()
    p = replace(_params(0), value_weight=1.0)
    alerts_of(s, raw.tolist(), 5.5, p, values.tolist())
    assert not s.recent and not s.shapes and not p.recurrent
    assert not DetectionParams(recur=24, recur_memory=8, normalise=False).recurrent


def test_kept_shapes_are_at_most_the_memory_and_drop_the_oldest() -> None:
    p = DetectionParams(recur=8, recur_memory=2)
    s = DetectorState()
    for page in range(3):
        for v in range(8):
            observe(s, float(10 * page + v), p)
        s.seen = 8 * (page + 1)
        keep(s, p)
    assert list(s.shape_at) == [15, 23]
    assert list(s.shapes) == [float(10 + v) for v in range(8)] + [float(20 + v) for v in range(8)]
    assert len(s.recent) == 8


def test_shapes_kept_at_another_length_are_not_compared_and_are_replaced() -> None:
    s = DetectorState(recent=array("f", range(8)), shapes=array("f", range(8)),
                      shape_at=array("q", [3]), seen=9)
    longer = DetectionParams(recur=6, recur_memory=4)
    assert not recurs(s, longer)  # the recent values are longer too: no comparison
    observe(s, 9.0, longer)
    assert len(s.recent) == 6
    keep(s, longer)
    assert len(s.shapes) == 6 and list(s.shape_at) == [8]


def test_a_flat_kept_shape_matches_nothing_and_size_is_measured_from_the_median() -> None:
    flat = np.full((1, 8), 5.0)
    assert match_size(np.full(8, 5.0), flat, 2, 0.8, 1.2) == 0.0
    step = np.array([[0, 0, 0, 0, 10, 10, 10, 10]], dtype=np.float64)
    assert match_size(step[0] * 1.2 + 50, step, 0, 0.8, 1.2) == 5.0  # offset: same size
    assert match_size(step[0] * 1.3, step, 0, 0.8, 1.2) == 0.0


def _records(n: int) -> list[SeriesPoint]:
    """``n`` points of one series, 5 minutes apart."""
    start = pd.Timestamp("2024-01-01", tz="UTC")
    return [SeriesPoint(kind="series", series="k", value=1.0,
                        timestamp=(start + pd.Timedelta(minutes=5 * i)).isoformat())
            for i in range(n)]


@pytest.mark.parametrize(("window", "stride", "recur"), [
    (24, 1, 24), (48, 4, 12), (4, 1, RECUR_MIN), (600, 1, RECUR_MAX)])
def test_training_keeps_a_page_shape_as_long_as_the_model_window(
        window: int, stride: int, recur: int, tmp_path: Path) -> None:
    opts = TrainOptions(data=tmp_path, out=tmp_path, window=window, stride=stride)
    section = detection_section(opts, "series", _records(50), window)
    assert section["recur"] == recur and section["recur_memory"] == 8
    assert section["recur_horizon"] == 30 * 288 // stride
    opts.detection = {"recur": 5}
    assert detection_section(opts, "series", _records(50), window)["recur"] == 5


def test_the_horizon_is_a_month_at_every_cadence() -> None:
    month = {"recur_horizon_s": DEFAULTS["detection"]["recur_horizon_s"]}
    assert [detection_windows(month, s)["recur_horizon"] for s in (60.0, 3600.0, 86_400.0)] == [
        43_200, 720, 30]


def test_only_a_bursty_key_holds_back_a_repeat() -> None:
    """The short-term forecast's trust must be under ``recur_trust``: on Gaussian-like
    residuals a repeated anomaly (a second holiday, a machine's second fault) is news."""
    p = DetectionParams(recur=8, recur_memory=2, value_gate=1.0)  # recur_trust 0.5
    burst = [0.0, 0.0, 0.0, 5.0, 9.0, 4.0, 1.0, 0.0]
    gaussian = DetectorState(seen=20, recent=array("f", burst), shapes=array("f", burst),
                             shape_at=array("q", [10]))
    assert trust_now(gaussian, p) == 1.0 and not recurs(gaussian, p)
    bursty = replace(gaussian, value_rate=0.05)  # 10 times the reference rate
    assert trust_now(bursty, p) < 0.5 and recurs(bursty, p)
    assert not recurs(bursty, replace(p, recur_trust=0.05))


@pytest.mark.parametrize(("name", "value"), [("recur_memory", 10**6), ("recur", 10**5)])
def test_a_card_whose_settings_would_blow_up_every_key_state_is_refused(
        name: str, value: int) -> None:
    """``train`` refuses such a config; a hand-edited card is refused when it is loaded."""
    with pytest.raises(ModelCardError, match=f"detection.{name} is {value}, over its limit"):
        DetectionParams.from_card({"recur": 24, "recur_memory": 8, name: value})
    assert DetectionParams.from_card({"recur": RECUR_MAX, "recur_memory": 64}).recurrent
    assert DetectionParams.from_card({"season": 4032}).season == 4032  # an older card loads


def test_values_kept_by_a_model_with_longer_shapes_are_cut_to_this_one() -> None:
    """A key's state outlives its model version: a window without a value (NaN) after a
    swap to shorter shapes left the longer recent values (found in review: the match
    raised a matmul shape error inside ``decide``)."""
    p = DetectionParams(recur=8, recur_memory=2, recur_lag=0.0, recur_trust=2.0)
    burst = [0.0, 0.0, 0.0, 5.0, 9.0, 4.0, 1.0, 0.0]
    s = DetectorState(seen=40, recent=array("f", [1.0] * 8 + burst), shapes=array("f", burst),
                      shape_at=array("q", [30]))
    observe(s, float("nan"), p)  # no value: nothing trimmed
    assert len(s.recent) == 16 and recurs(s, p)
    keep(s, p)
    assert list(s.shapes[8:]) == burst


def test_a_gap_window_value_alone_survives_the_bytes() -> None:
    """The key's first value came in a window across a gap (judged, not learnt): the value
    components were rolled back, the recent value was not, and ``to_bytes`` dropped it."""
    p = DetectionParams(recur=8, recur_memory=2, value_weight=1.0)
    s = DetectorState()
    decide(s, 1.0, 3.0, p)
    decide(s, 1.0, 3.0, p, 5.0, learn=False)
    assert list(s.recent) == [5.0]
    assert DetectorState.from_bytes(s.to_bytes()) == s
