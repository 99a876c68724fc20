"""The neural NPLM (torch, weight-clipped MLP) against the linear NPLM the worker runs.

NPLM (D'Agnolo & Wulzer, PRD 99 015014 (2019); D'Agnolo et al., EPJC 81 (2021) 89;
Grosso et al., arXiv:2501.01778) models the data density as ``n(x|w) = n(x|R) e^{f(x;w)}``
and fits ``f`` by minimising the extended-likelihood loss

    L(w) = sum_R w_R (e^{f(x)} - 1) - sum_D w_D f(x),   w_R = N_D / N_R (times event weights)

The test statistic is ``t = -2 min_w L``; under the null (D drawn like R) it is chi-square
with dof = number of trainable parameters, once the capacity of ``f`` is controlled.

The worker runs the linear form (:mod:`stream_detector.core.nplm`: f = c + w . phi(x) with a
fixed Legendre basis, a convex fit, Wilks' chi2 without a clip to tune). This module keeps
the paper's neural form as the reference it is checked against: f is a small MLP (default
1-4-1 sigmoid, as in the NPLM package), kernel weights clamped to ``[-W, W]`` after every
Adam step, full-batch training. Many independent fits (toys x clip candidates) run as one
batched tensor program (one Adam over stacked weights; Adam is element-wise, so each fit is
exactly its own), so calibrating W with :func:`tune_clip` costs about a CPU minute for 60
toy fits. Measured: 1-4-1, N_R=2000, N_D=100, 3000 epochs, W=30: toy mean 12.6 vs dof 12.

Normalisation: with ``n_expected`` given, N_D is treated as Poisson (the classic extended
test, dof includes the normalisation); without it (a fixed-size recent window, the
streaming case) ``w_R = N_D/N_R`` and only the shape is tested (dof = parameters - 1).

Run it to compare the two on the same reference (null toys: mean t against the dof and the
Kolmogorov-Smirnov distance to chi2(dof); an injected bump: p-values)::

    python -m benchmarks.nplm_neural [--full]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from scipy import stats
from torch import nn

from benchmarks.report import markdown_table, write_results
from stream_detector.core.nplm import NPLMResult, nplm_numpy_basis, nplm_numpy_test

__all__ = [
    "ClipTuning",
    "NPLMConfig",
    "empirical_p_value",
    "main",
    "n_parameters",
    "nplm_loss",
    "nplm_test",
    "null_toys",
    "run",
    "tune_clip",
]

FloatArray = np.ndarray


def empirical_p_value(t_obs: float, toys: FloatArray) -> float:
    """p = (1 + #toys with t >= t_obs) / (1 + n_toys): never 0, valid for any toy count."""
    toys = np.asarray(toys)
    return float((1 + np.count_nonzero(toys >= t_obs)) / (1 + toys.size))


# ========================================================================================
# torch, neural NPLM


@dataclass
class NPLMConfig:
    hidden: tuple[int, ...] = (4,)
    activation: Literal["sigmoid", "relu", "tanh"] = "sigmoid"
    clip: float = 9.0  # W: kernel weights clamped to [-W, W] after each step; tune_clip it
    epochs: int = 3000
    lr: float = 0.05
    tol: float = 1e-3  # stop when no fit's t moved more than this over `check_every` epochs
    check_every: int = 200
    seed: int = 0


def nplm_loss(f: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Per-fit NPLM loss; ``y`` 1 for D and 0 for R, ``w`` event weights (w_R already scaled).

    Shapes: f, y, w (fits, events) -> (fits,).
    """
    return ((1 - y) * w * (torch.exp(f) - 1) - y * w * f).sum(dim=-1)


def n_parameters(d: int, hidden: tuple[int, ...]) -> int:
    """Trainable parameters of a d -> hidden -> 1 MLP (e.g. 1-4-1: 13)."""
    sizes = [d, *hidden, 1]
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


class _BatchedMLP(nn.Module):
    """``fits`` independent MLPs in one pass: weights (fits, in, out), x (fits, events, d)."""

    def __init__(self, fits: int, d: int, config: NPLMConfig, gen: torch.Generator) -> None:
        super().__init__()
        sizes = [d, *config.hidden, 1]
        self.kernels = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            bound = (6.0 / (a + b)) ** 0.5  # Glorot uniform, as in the NPLM package
            k = (torch.rand(fits, a, b, generator=gen, dtype=torch.float64) * 2 - 1) * bound
            self.kernels.append(nn.Parameter(k))
            self.biases.append(nn.Parameter(torch.zeros(fits, 1, b, dtype=torch.float64)))
        self.act = {"sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}[
            config.activation
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x  # (fits, events, d)
        last = len(self.kernels) - 1
        for i, (k, b) in enumerate(zip(self.kernels, self.biases, strict=True)):
            h = torch.baddbmm(b, h, k)  # (fits, events, out)
            if i < last:
                h = self.act(h)
        return h.squeeze(-1)  # (fits, events)

    @torch.no_grad()
    def clip_(self, clip: torch.Tensor) -> None:
        c = clip.reshape(-1, 1, 1)  # one bound per fit
        for k in self.kernels:
            k.copy_(torch.maximum(torch.minimum(k, c), -c))


def _train_batched(
    x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, clip: torch.Tensor, config: NPLMConfig
) -> torch.Tensor:
    """Fit all ``fits`` at once (full batch, Adam, clipping); return each fit's t = -2 min L."""
    gen = torch.Generator().manual_seed(config.seed)
    model = _BatchedMLP(x.shape[0], x.shape[-1], config, gen)
    model.clip_(clip)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    best = torch.zeros(x.shape[0], dtype=torch.float64)  # L = 0 at f = 0 is always reachable
    checkpoint = best.clone()
    for epoch in range(1, config.epochs + 1):
        loss = nplm_loss(model(x), y, w)  # (fits,)
        best = torch.minimum(best, loss.detach())
        opt.zero_grad(set_to_none=True)
        # fits are independent: the gradient of the sum is each fit's own gradient
        loss.sum().backward()  # type: ignore[no-untyped-call]
        opt.step()
        model.clip_(clip)
        if epoch % config.check_every == 0:
            if float((checkpoint - best).abs().max()) * 2 < config.tol:
                break
            checkpoint = best.clone()
    return -2 * best


def _standardise(reference: FloatArray, *samples: FloatArray) -> list[torch.Tensor]:
    # Weight clipping only means the same thing across inputs on a common scale.
    ref = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    mu, sd = ref.mean(axis=0), ref.std(axis=0) + 1e-12
    out = [(ref - mu) / sd]
    out += [(np.asarray(s, dtype=np.float64).reshape(len(s), -1) - mu) / sd for s in samples]
    return [torch.from_numpy(a) for a in out]


def _stack_fits(
    ref: torch.Tensor,
    datas: list[torch.Tensor],
    n_expected: float | None,
    ref_weights: FloatArray | None = None,
    data_weights: FloatArray | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lay out one fit per data sample: [R | D padded], labels and weights (padding w=0).

    R's weights are normalised so they sum to N_D (observed, weighted) or ``n_expected``.
    """
    n_r, n_max = len(ref), max(len(d) for d in datas)
    fits, dim = len(datas), ref.shape[1]
    x = torch.zeros(fits, n_r + n_max, dim, dtype=torch.float64)
    y = torch.zeros(fits, n_r + n_max, dtype=torch.float64)
    w = torch.zeros(fits, n_r + n_max, dtype=torch.float64)
    wr = torch.ones(n_r, dtype=torch.float64) if ref_weights is None else torch.tensor(ref_weights)
    x[:, :n_r] = ref
    y[:, n_r:] = 1.0
    for i, d in enumerate(datas):
        wd = torch.ones(len(d), dtype=torch.float64)
        if data_weights is not None:
            wd = torch.as_tensor(data_weights, dtype=torch.float64)
        x[i, n_r : n_r + len(d)] = d
        w[i, n_r : n_r + len(d)] = wd
        w[i, :n_r] = wr * ((float(wd.sum()) if n_expected is None else n_expected) / wr.sum())
    return x, y, w


def _dof(d: int, hidden: tuple[int, ...], n_expected: float | None) -> int:
    # Without a Poisson N_D the output bias only restores the normalisation: no dof.
    return n_parameters(d, hidden) - (1 if n_expected is None else 0)


def nplm_test(
    reference: FloatArray,
    data: FloatArray,
    config: NPLMConfig | None = None,
    n_expected: float | None = None,
    ref_weights: FloatArray | None = None,
    data_weights: FloatArray | None = None,
) -> NPLMResult:
    """Neural NPLM test of ``data`` (N_D, d) against ``reference`` (N_R, d).

    Optional per-event weights (e.g. a reference reweighted to the data's conditions);
    without ``n_expected`` the reference weights are scaled to sum to the data's weight.
    """
    config = config or NPLMConfig()
    ref, dat = _standardise(reference, data)
    x, y, w = _stack_fits(ref, [dat], n_expected, ref_weights, data_weights)
    t = float(_train_batched(x, y, w, torch.tensor([config.clip]), config)[0])
    dof = _dof(ref.shape[1], config.hidden, n_expected)
    return NPLMResult(t=t, dof=dof, p_value=float(stats.chi2.sf(t, dof)))


def null_toys(
    reference: FloatArray,
    n_ref: int,
    n_data: int,
    n_toys: int,
    config: NPLMConfig | None = None,
    clips: tuple[float, ...] | None = None,
    poisson: bool = False,
) -> dict[float, FloatArray]:
    """t of reference-only toys for each clip: R = n_ref events, each D from the rest.

    ``reference`` is split once (seeded) into R and a disjoint pool; each toy draws D from the
    pool. With ``poisson`` the toy size is Poisson(n_data) and the test is the extended one.
    """
    config = config or NPLMConfig()
    clips = clips or (config.clip,)
    rng = np.random.default_rng(config.seed)
    ref_all = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    perm = rng.permutation(len(ref_all))
    r_idx, pool = perm[:n_ref], perm[n_ref:]
    if len(pool) < n_data:
        raise ValueError(f"reference too small: {len(ref_all)} < n_ref + n_data")
    sizes = rng.poisson(n_data, n_toys) if poisson else np.full(n_toys, n_data)
    draws = [ref_all[rng.choice(pool, min(int(s), len(pool)), replace=False)] for s in sizes]
    ref, *datas = _standardise(ref_all[r_idx], *draws)
    x, y, w = _stack_fits(ref, datas * len(clips), float(n_data) if poisson else None)
    clip = torch.tensor(np.repeat(clips, n_toys), dtype=torch.float64)
    t = _train_batched(x, y, w, clip, config).numpy()
    return {c: t[i * n_toys : (i + 1) * n_toys] for i, c in enumerate(clips)}


@dataclass
class ClipTuning:
    clip: float
    dof: int
    ks: dict[float, float] = field(default_factory=dict)  # KS statistic vs chi2(dof)
    mean: dict[float, float] = field(default_factory=dict)  # toy mean of t
    toys: dict[float, FloatArray] = field(default_factory=dict)


def tune_clip(
    reference: FloatArray,
    candidates: tuple[float, ...],
    n_toys: int,
    n_ref: int | None = None,
    n_data: int | None = None,
    config: NPLMConfig | None = None,
    poisson: bool = False,
) -> ClipTuning:
    """Pick the weight clip W whose null-toy t distribution is closest to chi2(dof) (KS).

    Defaults: R is half the reference, toys are a twentieth of R (N_D / N_R = 0.05).
    """
    config = config or NPLMConfig()
    n_ref = n_ref or len(reference) // 2
    n_data = n_data or max(n_ref // 20, 1)
    toys = null_toys(reference, n_ref, n_data, n_toys, config, candidates, poisson)
    d = np.asarray(reference).reshape(len(reference), -1).shape[1]
    dof = _dof(d, config.hidden, float(n_data) if poisson else None)
    ks = {c: float(stats.kstest(t, stats.chi2(dof).cdf).statistic) for c, t in toys.items()}
    mean = {c: float(np.mean(t)) for c, t in toys.items()}
    return ClipTuning(clip=min(ks, key=ks.__getitem__), dof=dof, ks=ks, mean=mean, toys=toys)


# ----------------------------------------------------------------------------------------
# the comparison


def _linear_toys(reference: FloatArray, n_ref: int, n_data: int, n_toys: int,
                 rng: np.random.Generator) -> tuple[FloatArray, int]:
    """Scaled t (finite-reference corrected, as its p-value uses) of the linear NPLM's toys."""
    basis = nplm_numpy_basis(reference[:n_ref], degree=4)
    phi_ref, pool = basis(reference[:n_ref]), reference[n_ref:]
    results = [nplm_numpy_test(basis, phi_ref, pool[rng.choice(len(pool), n_data, replace=False)],
                               phi_reference=True) for _ in range(n_toys)]
    return np.array([r.t / (1 + n_data / n_ref) for r in results]), results[0].dof


def run(full: bool = False, out: Path | None = None) -> list[dict[str, Any]]:
    """Null toys and an injected bump (15 events at 2.5 +- 0.2 over 90 exponential ones)
    for both NPLM forms on one exponential reference; writes ``nplm_neural.{json,md}``."""
    rng = np.random.default_rng(2)
    reference = rng.exponential(size=(4000, 1))
    n_toys, n_ref, n_data = (60 if full else 30), 2000, 100
    config = NPLMConfig(epochs=3000, lr=0.05, tol=1e-3)
    tuning = tune_clip(reference, (4.0, 30.0), n_toys=n_toys, n_ref=n_ref, n_data=n_data,
                       config=config)
    neural_toys = tuning.toys[tuning.clip]
    linear_toys, linear_dof = _linear_toys(reference, n_ref, n_data, n_toys, rng)
    bump = np.concatenate([rng.exponential(size=(90, 1)), rng.normal(2.5, 0.2, size=(15, 1))])
    neural = nplm_test(reference[:n_ref], bump, NPLMConfig(epochs=3000, lr=0.05,
                                                             clip=tuning.clip))
    basis = nplm_numpy_basis(reference[:n_ref], degree=4)
    linear = nplm_numpy_test(basis, reference[:n_ref], bump)
    rows = [
        {"NPLM": f"neural 1-4-1, clip {tuning.clip:g}", "dof": tuning.dof,
         "null mean t": float(neural_toys.mean()),
         "KS to chi2": float(stats.kstest(neural_toys, stats.chi2(tuning.dof).cdf).statistic),
         "bump p": neural.p_value, "bump p (toys)": empirical_p_value(neural.t, neural_toys)},
        {"NPLM": "linear, Legendre degree 4 (worker)", "dof": linear_dof,
         "null mean t": float(linear_toys.mean()),
         "KS to chi2": float(stats.kstest(linear_toys, stats.chi2(linear_dof).cdf).statistic),
         "bump p": linear.p_value, "bump p (toys)": empirical_p_value(
             linear.t / (1 + len(bump) / n_ref), linear_toys)},
    ]
    columns = ["NPLM", "dof", "null mean t", "KS to chi2", "bump p", "bump p (toys)"]
    table = markdown_table(rows, columns)
    print(table)
    write_results("nplm_neural", {"n_toys": n_toys, "n_ref": n_ref, "n_data": n_data,
                                  "rows": rows}, table, out)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="60 null toys instead of 30")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    args = parser.parse_args(argv)
    run(args.full, args.out)


if __name__ == "__main__":
    main()
