"""The worker's linear NPLM test: null calibration, power on an injected signal, weights."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from stream_detector.core.nplm import nplm_numpy_basis, nplm_numpy_fit, nplm_numpy_test


def _scores(rng: np.random.Generator, n: int, d: int = 2) -> np.ndarray:
    """AE-score-like features: log-normal, correlated columns."""
    z = rng.normal(size=(n, d))
    z[:, 1:] = 0.6 * z[:, :1] + 0.8 * z[:, 1:]
    return np.exp(0.5 * z - 3.0)


@pytest.mark.slow
def test_numpy_null_toys_follow_chi2() -> None:
    rng = np.random.default_rng(7)
    pool = _scores(rng, 40_000)
    ref, pool = pool[:10_000], pool[10_000:]
    basis = nplm_numpy_basis(ref, degree=4)
    phi_ref = basis(ref)
    results = [
        nplm_numpy_test(
            basis, phi_ref, pool[rng.choice(len(pool), 250, replace=False)], phi_reference=True
        )
        for _ in range(200)
    ]
    dof = results[0].dof
    t = np.array([r.t for r in results]) / (1 + 250 / 10_000)  # finite-reference correction
    ks = stats.kstest(t, stats.chi2(dof).cdf)
    print(f"numpy NPLM null: dof {dof} mean {t.mean():.2f} KS p {ks.pvalue:.3f}")
    assert dof == 8
    assert abs(t.mean() - dof) < 0.1 * dof
    assert ks.pvalue > 0.01
    p = np.array([r.p_value for r in results])
    assert 0.002 < np.mean(p < 0.05) < 0.12  # about 5% false positives at alpha 0.05


def test_numpy_detects_injected_signal() -> None:
    rng = np.random.default_rng(8)
    ref = _scores(rng, 10_000)
    data = _scores(rng, 250)
    data[:50] *= 2.5  # 20% of the sample with larger errors, most still below a p99 cut
    res = nplm_numpy_test(nplm_numpy_basis(ref), ref, data)
    assert res.p_value < 0.01


def test_event_weights_equal_repeated_events() -> None:
    rng = np.random.default_rng(12)
    ref, data = _scores(rng, 2000), _scores(rng, 100) * 1.2
    basis = nplm_numpy_basis(ref, degree=3)
    twice = np.concatenate([data, data])
    t_rep, _ = nplm_numpy_fit(basis, ref, twice)
    t_w, _ = nplm_numpy_fit(basis, ref, data, data_weights=np.full(100, 2.0))
    t_rw, _ = nplm_numpy_fit(basis, ref, twice, ref_weights=np.full(2000, 7.0))
    assert t_w == pytest.approx(t_rep, rel=1e-9)
    assert t_rw == pytest.approx(t_rep, rel=1e-9)  # only relative reference weights matter
