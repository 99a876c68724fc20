"""The ``burst`` component's collapse side: a sensor stuck at one reading pages (issue #11:
no component measured a collapse of the noise; the generated held-out sensors' stuck-at
values scored 0.0-1.5 and none was found)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from offline_training.train_options import DEFAULTS
from stream_detector.core.detection import DetectionParams, DetectorState, decide

ROWS = 288  # windows per season and the warm-up / quiet period (a day of 5-minute windows)


def _params(**changes: float) -> DetectionParams:
    """The trained defaults' component settings at 288 windows a day."""
    section = {k: v for k, v in DEFAULTS["detection"].items()
               if k in DetectionParams.__dataclass_fields__}
    p = DetectionParams.from_card({**section, "halflife": ROWS, "warmup": ROWS,
                                   "suppress": ROWS, "season": ROWS})
    return replace(p, **changes)


def _alerts(values: np.ndarray, p: DetectionParams) -> list[int]:
    s = DetectorState()
    return [i for i, v in enumerate(values) if decide(s, 1.0, 5.5, p, float(v)).alert]


def _sensor(seed: int, days: int = 6) -> np.ndarray:
    """A machine's reading: a daily cycle, a faster machine cycle, slow drift, little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * ROWS)
    return (50 + 5 * np.sin(2 * np.pi * t / ROWS) + 2 * np.sin(2 * np.pi * t / 37)
            + np.cumsum(rng.normal(0, 0.05, t.size)) + rng.normal(0, 0.3, t.size))


def _stuck_found(collapse: float) -> int:
    """Of 8 seeds, how many page inside a 120-window stuck stretch; nothing pages elsewhere."""
    found = 0
    for seed in range(8):
        values, at = _sensor(seed), 3 * ROWS + 50 * seed
        values[at:at + 120] = values[at - 1]
        alerts = _alerts(values, _params(collapse=collapse))
        assert all(at <= i < at + 150 for i in alerts)
        found += any(at <= i < at + 120 for i in alerts)
    return found


def test_a_stuck_reading_pages_with_the_collapse_side_and_not_without() -> None:
    assert DEFAULTS["detection"]["collapse"] == 1.0
    assert _stuck_found(1.0) == 8
    assert _stuck_found(0.0) == 0


@pytest.mark.parametrize(("name", "make"), [
    ("gaussian", lambda r, n: 100 + r.normal(0, 5, n)),
    ("flat line", lambda r, n: np.full(n, 7.0)),
    ("counts of 2", lambda r, n: r.poisson(2, n).astype(float)),
    ("mostly zeros", lambda r, n: r.poisson(0.3, n).astype(float)),
    ("coarse readings", lambda r, n: np.round(20 + r.normal(0, 0.6, n))),
])
def test_series_that_repeat_values_anyway_do_not_page(
        name: str, make: Callable[[np.random.Generator, int], np.ndarray]) -> None:
    for seed in range(4):
        assert _alerts(make(np.random.default_rng(seed), 6 * ROWS), _params()) == [], name
