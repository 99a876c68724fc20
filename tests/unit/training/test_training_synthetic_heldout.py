"""The generated held-out families: labels inside the file and after the probationary
period, each anomaly really present where it is labelled, the same arrays per seed."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from offline_training.synthetic_heldout import FAMILIES, HELDOUT_ANOMALIES, make_heldout


@pytest.mark.parametrize("family", FAMILIES)
def test_labels_lie_inside_the_file_after_probation_and_apart(family: str) -> None:
    for seed in range(3):
        s = make_heldout(family, seed)
        n = s.values.size
        assert s.timestamps.size == n == s.labels.size
        assert np.all(np.diff(s.timestamps.astype(np.int64)) > 0), "timestamps increase"
        assert sorted(a.kind for a in s.anomalies) == sorted(HELDOUT_ANOMALIES[family])
        spans = sorted((a.window_start, a.window_end) for a in s.anomalies)
        assert spans[0][0] >= int(0.15 * n), "no label in the probationary (training) part"
        assert spans[-1][1] < n
        assert all(b[0] > a[1] for a, b in zip(spans, spans[1:], strict=False)), "apart"
        for a in s.anomalies:
            assert a.window_start <= a.start <= a.end <= a.window_end
            assert s.labels[a.start:a.end + 1].all()
        assert s.labels.sum() == sum(a.end - a.start + 1 for a in s.anomalies)
        widths = sum(a.window_end - a.window_start + 1 for a in s.anomalies)
        longest = sum(max(a.end - a.start + 1, int(0.1 * n / len(s.anomalies)))
                      for a in s.anomalies)
        assert 0.08 * n <= widths <= longest + len(s.anomalies), "about 10% of the rows"


def _before(values: np.ndarray, start: int, length: int) -> np.ndarray:
    """The stretch of ``length`` rows just before an anomaly starting at ``start``."""
    return values[start - length : start]


@pytest.mark.parametrize(("family", "kind", "check"), [
    ("cpu", "step_change", lambda inside, before: inside.mean() - before.mean() > 12),
    ("cpu", "saturation", lambda inside, before: inside.min() > 95 > before.max()),
    ("sensor", "fault_level", lambda inside, before: before[-60:].mean() - inside[:60].mean()
     > 2),
    ("sensor", "stuck_at", lambda inside, before: np.ptp(inside) == 0 < np.ptp(before)),
    ("sensor", "vibration", lambda inside, before: inside.std() > 1.5 * before.std()),
    ("traffic", "incident_dip", lambda inside, before: inside.mean() < 0.4 * before.mean()),
    ("price", "regime_change", lambda inside, before: np.median(inside)
     > 1.5 * np.median(before)),
    ("price", "price_spike", lambda inside, before: inside.min() > 2 * np.median(before)),
    ("demand", "storm", lambda inside, before: inside.mean() < 0.5 * before.mean()),
])
def test_each_anomaly_is_present_where_it_is_labelled(
    family: str, kind: str, check: Callable[[np.ndarray, np.ndarray], bool]
) -> None:
    for seed in range(3):
        s = make_heldout(family, seed)
        a = next(a for a in s.anomalies if a.kind == kind)
        inside = s.values[a.start:a.end + 1]
        before = _before(s.values, a.start, a.end - a.start + 1)
        if kind in ("incident_dip", "storm"):  # the same hours one day earlier
            day = int(round(86400e9 / np.median(np.diff(s.timestamps.astype(np.int64)))))
            before = s.values[a.start - day:a.end + 1 - day]
        assert check(inside, before), (family, seed, kind)


def test_contextual_kinds_change_the_day_they_are_labelled() -> None:
    """A holiday (weekday with a Sunday's profile) and a weekday without rush hours look
    different from the same weekday one week earlier."""
    for family, kind in (("demand", "holiday"), ("traffic", "no_rush_hour")):
        for seed in range(3):
            s = make_heldout(family, seed)
            a = next(a for a in s.anomalies if a.kind == kind)
            week = int(round(7 * 86400e9 / np.median(np.diff(s.timestamps.astype(np.int64)))))
            inside = s.values[a.start:a.end + 1]
            ref = s.values[a.start - week:a.end + 1 - week] if a.start >= week else \
                s.values[a.start + week:a.end + 1 + week]
            assert np.abs(inside - ref).mean() > 2 * np.abs(np.diff(ref)).mean(), (family, seed)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_same_seed_gives_the_same_series_and_another_seed_another(family: str) -> None:
    a, b, c = make_heldout(family, 1), make_heldout(family, 1), make_heldout(family, 2)
    assert np.array_equal(a.values, b.values) and np.array_equal(a.timestamps, b.timestamps)
    assert a.anomalies == b.anomalies
    assert not np.array_equal(a.values, c.values)


def test_irregular_families_have_jitter_and_gaps() -> None:
    steps = np.diff(make_heldout("price", 0).timestamps.astype(np.int64)) / 1e9
    assert steps.min() < 600 < steps.max()
    assert steps.max() > 3 * 600, "some runs of missing rows are gaps to the worker"
    assert np.all(np.diff(make_heldout("demand", 0).timestamps.astype(np.int64)) == 600e9)


def test_unknown_family_says_which_exist() -> None:
    with pytest.raises(ValueError, match="choose from"):
        make_heldout("weather")
