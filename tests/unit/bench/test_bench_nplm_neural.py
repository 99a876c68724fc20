"""The neural NPLM reference (benchmarks/nplm_neural.py): dof, clipping, calibration,
detection, event weights, and the worker's linear fit as the minimum of the shared loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from benchmarks.nplm_neural import (
    NPLMConfig,
    empirical_p_value,
    n_parameters,
    nplm_loss,
    nplm_test,
    null_toys,
    tune_clip,
)
from stream_detector.core.nplm import nplm_numpy_basis, nplm_numpy_fit


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    # Shared CI machines: one intra-op thread is faster than two fighting other jobs.
    torch.set_num_threads(1)


def _scores(rng: np.random.Generator, n: int, d: int = 2) -> np.ndarray:
    """AE-score-like features: log-normal, correlated columns."""
    z = rng.normal(size=(n, d))
    z[:, 1:] = 0.6 * z[:, :1] + 0.8 * z[:, 1:]
    return np.exp(0.5 * z - 3.0)


def test_numpy_fit_is_the_minimum_of_the_torch_loss() -> None:
    rng = np.random.default_rng(9)
    ref, data = _scores(rng, 3000), _scores(rng, 300) * 1.3
    basis = nplm_numpy_basis(ref, degree=3)
    ridge = 1e-2
    t_np, beta = nplm_numpy_fit(basis, ref, data, ridge=ridge)
    # same model optimised by torch L-BFGS on the shared loss: the minima must agree
    phi = torch.from_numpy(np.vstack([basis(ref), basis(data)]))
    y = torch.cat([torch.zeros(3000), torch.ones(300)]).double()
    w = torch.cat([torch.full((3000,), 300 / 3000), torch.ones(300)]).double()
    params = torch.zeros(1 + phi.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [params], max_iter=500, tolerance_grad=1e-12, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        f = params[0] + phi @ params[1:]
        loss = nplm_loss(f, y, w) + 0.5 * ridge * (params[1:] ** 2).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    loss = opt.step(closure)  # type: ignore[no-untyped-call]
    t_torch = -2 * float(closure().detach())
    print(f"numpy t {t_np:.4f} torch t {t_torch:.4f} (first loss {float(loss.detach()):.3g})")
    assert t_np > 5  # a real signal, not a trivial zero
    assert t_np == pytest.approx(t_torch, rel=1e-3)
    np.testing.assert_allclose(beta, params.detach().numpy(), atol=1e-3)


def test_empirical_p_value() -> None:
    toys = np.arange(99.0)
    assert empirical_p_value(1000.0, toys) == pytest.approx(1 / 100)
    assert empirical_p_value(-1.0, toys) == 1.0


def test_neural_dof_and_clipping() -> None:
    assert n_parameters(1, (4,)) == 13  # the NPLM package's 1-4-1
    rng = np.random.default_rng(1)
    ref = rng.exponential(size=(400, 1))
    toys = null_toys(ref, 200, 50, 4, NPLMConfig(epochs=50, clip=0.1), clips=(0.1, 5.0))
    assert set(toys) == {0.1, 5.0}
    assert all(len(t) == 4 and (t >= 0).all() for t in toys.values())
    assert toys[0.1].mean() < toys[5.0].mean()  # a tighter clip is a smaller capacity


@pytest.mark.slow
def test_neural_nplm_calibrates_and_detects() -> None:
    """Tuned clip: null toys near chi2(dof); an injected bump is far beyond the toys."""
    rng = np.random.default_rng(2)
    ref = rng.exponential(size=(4000, 1))
    cfg = NPLMConfig(epochs=3000, lr=0.05, tol=1e-3)
    tuning = tune_clip(ref, (4.0, 30.0), n_toys=30, n_ref=2000, n_data=100, config=cfg)
    print(f"neural tune_clip: dof {tuning.dof} mean {tuning.mean} KS {tuning.ks}")
    assert tuning.clip == 30.0 and tuning.dof == 12
    toys = tuning.toys[tuning.clip]
    assert abs(toys.mean() - tuning.dof) < 0.2 * tuning.dof
    assert stats.kstest(toys, stats.chi2(tuning.dof).cdf).pvalue > 0.01
    data = np.concatenate([rng.exponential(size=(90, 1)), rng.normal(2.5, 0.2, size=(15, 1))])
    res = nplm_test(ref[:2000], data, NPLMConfig(epochs=3000, lr=0.05, clip=tuning.clip))
    assert empirical_p_value(res.t, toys) < 0.05 and res.p_value < 0.01


def test_neural_event_weights_equal_relative_reference_weights() -> None:
    rng = np.random.default_rng(12)
    ref, data = _scores(rng, 2000), _scores(rng, 100) * 1.2
    cfg = NPLMConfig(epochs=100)
    plain = nplm_test(ref[:500, :1], data[:, :1], cfg)
    weighted = nplm_test(ref[:500, :1], data[:, :1], cfg, ref_weights=np.full(500, 3.0))
    assert weighted.t == pytest.approx(plain.t, rel=1e-6)
    assert plain.dof == 12 and plain.t > 0
