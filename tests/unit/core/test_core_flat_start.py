"""A key whose values start flat past its warm-up: its first change scored about 1e12 (the
value residual's spread was zero, and once winsorising starts no change can widen it) and
paged with that score; the value components now start at that change, with their own
warm-up (found by a new-user helper: a night-zero counter at 1-minute steps)."""

from __future__ import annotations

import numpy as np
from test_core_collapse import ROWS, _params, _sensor

from stream_detector.core.components import flat
from stream_detector.core.detection import DetectorState, decide


def _run(values: np.ndarray) -> tuple[list[int], float, DetectorState]:
    s, p = DetectorState(), _params()
    alerts, top = [], 0.0
    for i, v in enumerate(values):
        d = decide(s, 1.0, 5.5, p, float(v))
        top = max(top, d.detection_score)
        if d.alert:
            alerts.append(i)
    return alerts, top, s


def test_the_first_change_after_a_flat_start_is_not_scored_against_no_spread() -> None:
    for seed in range(4):
        for level in (0.0, 50.0):
            values = _sensor(seed)
            values[:400] = level  # flat (zeros, or a constant reading) past the warm-up
            alerts, top, s = _run(values)
            assert top < 100, (seed, level, top)
            assert alerts == [], (seed, level, alerts)
            assert s.value_start == 400  # the components started at the first change


def test_a_flat_start_that_ends_inside_the_warm_up_is_learnt_as_it_comes() -> None:
    values = _sensor(0)
    values[:ROWS // 2] = 0.0
    _, _, s = _run(values)
    assert s.value_start == 0
    _, _, s = _run(_sensor(0))  # variance from the start
    assert s.value_start == 0


def test_a_constant_series_stays_quiet_and_flat_means_no_spread_at_its_scale() -> None:
    alerts, top, _ = _run(np.full(4 * ROWS, 7.0))
    assert alerts == [] and top < 3.0
    assert flat(0.0, 0.0) and flat(1e-14, 50.0)
    assert not flat(0.01, 1e6) and not flat(1e-6, 1e-3)
