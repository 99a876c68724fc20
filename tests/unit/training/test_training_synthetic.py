"""Synthetic generators: reproducible, labels where the injections are, loadable output."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offline_training import load_tables, loaders, nab
from offline_training.synthetic_events import (
    EVENT_FEATURES,
    EventsConfig,
    leading_pair_mass,
    make_events,
    write_events,
)
from offline_training.synthetic_sales import SalesConfig, make_sales, write_panel_csv
from offline_training.synthetic_series import (
    SERIES_ANOMALIES,
    SeriesConfig,
    make_series,
    write_labels,
    write_series_csv,
)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_series_is_reproducible_per_seed(seed: int) -> None:
    a, b = make_series(seed=seed), make_series(seed=seed)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.anomalies == b.anomalies
    assert not np.array_equal(a.values, make_series(seed=seed + 1).values)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_series_labels_mark_exactly_the_changed_rows(seed: int) -> None:
    series = make_series(seed=seed)
    assert sorted(a.kind for a in series.anomalies) == sorted(SERIES_ANOMALIES)
    marked = np.zeros_like(series.labels)
    probation = nab.probationary_length(len(series.values))
    for a in series.anomalies:
        marked[a.start : a.end + 1] = 1
        assert a.window_start <= a.start <= a.end <= a.window_end
        assert a.window_start >= probation
    np.testing.assert_array_equal(series.labels, marked)
    ends = [(a.window_start, a.window_end) for a in series.anomalies]
    assert all(prev[1] < nxt[0] for prev, nxt in zip(ends, ends[1:], strict=False))


def test_injected_anomalies_depart_from_the_clean_series() -> None:
    # Same seed: the noise is drawn before any injection, so the clean series shares it and
    # the difference is exactly what was injected.
    cfg = SeriesConfig()
    dirty = make_series(cfg, seed=3)
    clean = make_series(replace(cfg, anomalies=()), seed=3)
    sigma = 0.05 * cfg.level  # the noise level the magnitudes are defined in
    for a in dirty.anomalies:
        rows = slice(a.start, a.end + 1)
        diff = np.abs(dirty.values[rows] - clean.values[rows])
        assert diff.max() > 2 * sigma, a.kind
    outside = dirty.labels == 0
    np.testing.assert_array_equal(dirty.values[outside], clean.values[outside])


def test_contextual_anomaly_sits_in_normal_range_at_the_wrong_time() -> None:
    series = make_series(replace(SeriesConfig(), anomalies=("contextual",)), seed=5)
    (a,) = series.anomalies
    inside = series.values[a.start : a.end + 1]
    assert inside.max() < np.percentile(series.values, 99.9)
    hours = (series.timestamps[a.start : a.end + 1].astype("datetime64[h]").astype(int)) % 24
    assert set(hours.tolist()) <= {23, 0, 1, 2, 3, 4, 5}  # the daily trough is around 2:00


def test_series_round_trips_through_loader_and_nab_windows(tmp_path: Path) -> None:
    series = make_series(seed=9, key="synthetic_a")
    csv = write_series_csv(tmp_path / "synthetic_a.csv", series)
    labels, kinds = write_labels(tmp_path / "w.json", {"synth/a.csv": series}, tmp_path / "k.json")
    loaded = load_tables.load_series(csv)
    np.testing.assert_allclose(loaded.values[:, 0], series.values)
    np.testing.assert_array_equal(loaded.timestamps, series.timestamps)
    windows = nab.window_indices(loaded.timestamps, nab.load_windows(labels)["synth/a.csv"])
    assert windows == [(a.window_start, a.window_end) for a in series.anomalies]
    assert [k["kind"] for k in json.loads(kinds.read_text())["synth/a.csv"]] == [
        a.kind for a in series.anomalies
    ]


def test_too_short_series_is_refused_with_advice() -> None:
    with pytest.raises(ValueError, match="too few"):
        make_series(replace(SeriesConfig(), rows=100))


def test_sales_panel_labels_stockouts_and_errors_but_not_promotions(tmp_path: Path) -> None:
    cfg = SalesConfig(stores=2, items=2, days=400)
    panel = make_sales(cfg, seed=4)
    assert set(panel.series) == {"1/1", "1/2", "2/1", "2/2"}
    for key, s in panel.series.items():
        kinds = [a.kind for a in s.anomalies]
        assert kinds.count("stockout") == 1 and len(kinds) == 3
        for a in s.anomalies:
            rows = s.values[a.start : a.end + 1]
            if a.kind == "stockout":
                assert a.end - a.start + 1 >= 3 and np.all(rows == 0)
            elif a.kind == "negative":
                assert np.all(rows < 0)
            elif a.kind == "x10":
                assert np.all(rows >= 10) and rows[0] % 10 == 0
        assert np.all(s.values[s.labels == 0] >= 0)
        promo, normal = (
            panel.promotions[key] & (s.labels == 0),
            ~panel.promotions[key] & (s.labels == 0),
        )
        assert s.values[promo].mean() > s.values[normal].mean()  # uplift, yet labelled normal
    loaded = load_tables.load_panel(write_panel_csv(tmp_path / "sales.csv", panel))
    np.testing.assert_allclose(loaded.series["2/1"].values[:, 0], panel.series["2/1"].values)
    again = make_sales(cfg, seed=4)
    np.testing.assert_array_equal(again.series["1/2"].values, panel.series["1/2"].values)


def test_events_layout_padding_and_resonance(tmp_path: Path) -> None:
    events = make_events(EventsConfig(events=3000, signal_fraction=0.1), seed=2)
    assert events.features.shape == (3000, 57) and events.features.dtype == np.float32
    assert events.names == EVENT_FEATURES and events.names[:3] == ["met_pt", "met_eta", "met_phi"]
    assert np.all(events.features[:, 1] == 0.0)  # MET eta
    jets = events.features[:, EVENT_FEATURES.index("jet1_pt") :].reshape(-1, 10, 3)
    assert np.all(np.diff(jets[:, :, 0], axis=1) <= 0)  # pT ordered
    assert np.all(jets[jets[:, :, 0] == 0] == 0)  # absent objects fully zero
    assert 0.07 < events.labels.mean() < 0.13
    mass = leading_pair_mass(events.features)
    assert abs(np.median(mass[events.labels == 1]) - 500.0) < 15.0
    for suffix in ("csv", "h5"):
        loaded = loaders.load_events(write_events(tmp_path / f"ev.{suffix}", events))
        np.testing.assert_allclose(loaded.features, events.features, rtol=1e-6)
        np.testing.assert_array_equal(loaded.labels, events.labels)
        assert loaded.names == EVENT_FEATURES


def test_dimuon_channel_puts_the_resonance_in_muons() -> None:
    events = make_events(EventsConfig(events=2000, signal_fraction=0.5, channel="dimuon"), seed=1)
    mass = leading_pair_mass(events.features, "mu")
    assert abs(np.median(mass[events.labels == 1]) - 500.0) < 15.0
    with pytest.raises(ValueError, match="channel"):
        make_events(EventsConfig(channel="photon"))
