"""Generated series of other shapes (offline_training.synthetic_metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from offline_training.synthetic_metrics import METRIC_FAMILIES, make_metric


@pytest.mark.parametrize("family", sorted(METRIC_FAMILIES))
def test_each_family_is_reproducible_and_labels_its_anomalies_after_probation(
    family: str,
) -> None:
    one, again = make_metric(family, seed=3), make_metric(family, seed=3)
    assert np.array_equal(one.values, again.values) and np.isfinite(one.values).all()
    minutes, rows = METRIC_FAMILIES[family]
    assert one.values.size == rows
    assert np.all(np.diff(one.timestamps).astype("timedelta64[m]").astype(int) == minutes)
    assert 1 <= len(one.anomalies) <= 3
    for a in one.anomalies:
        assert a.start >= 0.15 * rows  # none inside NAB's probationary period
        assert a.window_start <= a.start <= a.window_end
        assert one.labels[a.start : a.end + 1].all()
    ends = [(a.window_start, a.window_end) for a in one.anomalies]
    assert all(e1 < s2 for (_, e1), (s2, _) in zip(ends, ends[1:], strict=False))


@pytest.mark.parametrize("family", sorted(METRIC_FAMILIES))
def test_magnitude_scales_the_injected_change_and_nothing_else(family: str) -> None:
    full, half = make_metric(family, seed=1), make_metric(family, seed=1, magnitude=0.5)
    outside = full.labels == 0
    assert np.allclose(full.values[outside], half.values[outside])
    changed = ~outside
    if family != "stuck":  # a stuck sensor's flat run may equal its first value
        assert np.abs(full.values[changed] - half.values[changed]).max() > 0


def test_an_unknown_family_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="choose from"):
        make_metric("disk")
