"""Confirmation by the window before (``confirm``, issue #11: on 5-minute tweet counts a
one-window blip of the AE paged as often as a real incident did)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from offline_training.durations import CONFIRM_STEP_S, detection_windows
from stream_detector.core.detection import DetectionParams, DetectorState, alerts_of, decide

ROWS = 96  # windows a day, short to keep the test quick
BLIP, RUN, SPIKE = 3 * ROWS + 10, 5 * ROWS + 20, 7 * ROWS + 30


def _params(confirm: float, values: bool = False) -> DetectionParams:
    extra = {"value_weight": 1.0} if values else {}
    return DetectionParams(halflife=ROWS, warmup=ROWS, suppress=ROWS, confirm=confirm, **extra)


def _key(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Values (a flat level, noise 1) and raw AE scores (log-normal, sd 0.3) with a blip of
    the AE score 10 sigmas out for one window (day 3), two such windows in a row (day 5) and
    a value spike of 20 noise sigmas the AE does not see (day 7)."""
    rng = np.random.default_rng(seed)
    n = 9 * ROWS
    values = 100 + rng.normal(0, 1, n)
    raw = np.exp(rng.normal(0, 0.3, n))
    raw[BLIP] = raw[RUN] = raw[RUN + 1] = np.exp(0.3 * 10)
    values[SPIKE] += 20
    return values, raw


def _alerts(values: np.ndarray, raw: np.ndarray, p: DetectionParams) -> list[int]:
    s = DetectorState()
    v = values if p.uses_value else np.full(values.size, np.nan)
    return [i for i, (x, r) in enumerate(zip(v, raw, strict=True))
            if decide(s, float(r), 5.5, p, float(x)).alert]


def test_a_one_window_blip_does_not_page_and_a_run_pages_at_its_second_window() -> None:
    for seed in range(4):
        values, raw = _key(seed)
        assert {BLIP, RUN} <= set(_alerts(values, raw, _params(0.0)))
        confirmed = _alerts(values, raw, _params(0.75))
        assert BLIP not in confirmed and RUN not in confirmed and RUN + 1 in confirmed
        # a blip is over the threshold but held back: suppressed, not paged
        s = DetectorState()
        decisions = [decide(s, float(r), 5.5, _params(0.75)) for r in raw[:BLIP + 1]]
        assert decisions[-1].detection_score > 5.5 and decisions[-1].suppressed


def test_a_spike_the_short_term_forecast_sees_pages_at_once() -> None:
    for seed in range(4):
        values, raw = _key(seed)
        assert SPIKE in _alerts(values, raw, _params(0.75, values=True))


def test_confirm_zero_changes_nothing() -> None:
    values, raw = _key(1)
    off = _params(0.0)
    assert _alerts(values, raw, off) == _alerts(values, raw, replace(off, confirm=0.0))
    assert DetectionParams().confirm == 0.0


def test_alerts_of_and_decide_agree_and_a_restart_mid_run_keeps_the_window_before() -> None:
    values, raw = _key(2)
    p = _params(0.75, values=True)
    want = _alerts(values, raw, p)
    many = DetectorState()
    first = alerts_of(many, list(raw[:RUN + 1]), 5.5, p, list(values[:RUN + 1]))
    restored = DetectorState.from_bytes(many.to_bytes())  # between the run's two windows
    assert restored == many and restored.last_z > 5.5
    rest = alerts_of(restored, list(raw[RUN + 1:]), 5.5, p, list(values[RUN + 1:]))
    got = [i for i, _ in first] + [RUN + 1 + i for i, _ in rest]
    assert got == want and RUN + 1 in got


def test_training_keeps_confirm_only_at_steps_of_up_to_15_minutes() -> None:
    section = {"confirm": 0.75}
    assert CONFIRM_STEP_S == 900.0
    assert detection_windows(section, 60.0)["confirm"] == 0.75
    assert detection_windows(section, 900.0)["confirm"] == 0.75
    assert detection_windows(section, 3600.0)["confirm"] == 0.0
    assert detection_windows(section, 86_400.0)["confirm"] == 0.0
    assert detection_windows(section, 300.0, stride=4)["confirm"] == 0.0  # 20-minute steps
    assert detection_windows({**section, "confirm_step_s": 86_400.0}, 3600.0)["confirm"] == 0.75
