"""Scalers: per-method parameters, zero-scale guard, per-key fallback, card round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from offline_training.scaling import Scaler, fit_scaler, fit_scaler_per_key

RNG = np.random.default_rng(7)
TRAIN = RNG.normal([10.0, -3.0], [2.0, 0.5], size=(500, 2))


def test_standard_scaler_centres_and_normalises_training_data() -> None:
    scaler = fit_scaler(TRAIN, "standard")
    z = scaler.transform(TRAIN, dtype=np.float64)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=1e-12)


def test_minmax_scaler_maps_training_range_to_unit_interval() -> None:
    z = fit_scaler(TRAIN, "minmax").transform(TRAIN, dtype=np.float64)
    np.testing.assert_allclose(z.min(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.max(axis=0), 1.0, atol=1e-12)


def test_robust_scaler_uses_median_and_iqr_so_outliers_do_not_move_it() -> None:
    polluted = TRAIN.copy()
    polluted[:5] = 1e6
    clean, dirty = fit_scaler(TRAIN, "robust"), fit_scaler(polluted, "robust")
    np.testing.assert_allclose(dirty.params["*"].center, clean.params["*"].center, rtol=0.02)
    np.testing.assert_allclose(clean.params["*"].center, np.median(TRAIN, axis=0), rtol=1e-12)


def test_constant_feature_gets_scale_one_not_division_by_zero() -> None:
    data = np.column_stack([np.full(10, 4.0), np.arange(10.0)])
    for method in ("standard", "minmax", "robust"):
        scaler = fit_scaler(data, method)
        assert scaler.params["*"].scale[0] == 1.0
        assert np.isfinite(scaler.transform(data)).all()


def test_transform_works_on_windows_and_inverse_restores_values() -> None:
    scaler = fit_scaler(TRAIN, "standard")
    windows = TRAIN[:60].reshape(4, 15, 2)
    z = scaler.transform(windows)
    assert z.shape == (4, 15, 2)
    assert z.dtype == np.float32
    np.testing.assert_allclose(scaler.inverse_transform(z), windows, rtol=1e-5)


def test_card_round_trip_is_json_and_matches_contract_shape() -> None:
    scaler = fit_scaler_per_key({"1/7": TRAIN[:200], "2/7": TRAIN[200:] * 3}, "standard")
    card = json.loads(json.dumps(scaler.to_card()))
    assert card["method"] == "standard"
    assert card["per_key"] is True
    assert set(card["params"]) == {"1/7", "2/7", "*"}
    assert all(len(p["center"]) == len(p["scale"]) == 2 for p in card["params"].values())
    rebuilt = Scaler.from_card(card)
    np.testing.assert_array_equal(rebuilt.transform(TRAIN, "2/7"), scaler.transform(TRAIN, "2/7"))


def test_unknown_key_falls_back_to_global_parameters() -> None:
    scaler = fit_scaler_per_key({"a": TRAIN[:100], "b": TRAIN[100:] + 50})
    np.testing.assert_array_equal(scaler.transform(TRAIN, "new"), scaler.transform(TRAIN))
    assert not np.allclose(scaler.transform(TRAIN, "a"), scaler.transform(TRAIN, "b"))


def test_rejects_bad_method_and_non_finite_training_data() -> None:
    with pytest.raises(ValueError, match="method"):
        fit_scaler(TRAIN, "zscore")
    with pytest.raises(ValueError, match="NaN"):
        fit_scaler(np.array([[1.0], [np.nan]]))
    with pytest.raises(ValueError, match="non-empty"):
        fit_scaler(np.empty((0, 2)))
