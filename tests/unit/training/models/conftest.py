"""Inline synthetic data for the model tests (the data helpers live on another branch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

WINDOW = 32


@dataclass
class Split:
    train: np.ndarray  # (n, window, features) normal history only
    test: np.ndarray  # (m, window, features)
    labels: np.ndarray  # (m,) 1 where the window touches an injected anomaly


def _windows(x: np.ndarray, window: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(x, window, axis=0).transpose(0, 2, 1).copy()


def make_series(seed: int = 0, n_train: int = 1600, n_test: int = 1200) -> Split:
    """Seasonal series with noise; the test part gets spikes and level shifts."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_train + n_test)
    x = np.sin(2 * np.pi * t / 48) + 0.5 * np.sin(2 * np.pi * t / 7) + 0.1 * rng.normal(size=t.size)
    anomalous = np.zeros(t.size, dtype=bool)
    for start in rng.choice(np.arange(n_train + 50, t.size - 50, 60), 8, replace=False):
        if rng.random() < 0.5:  # spike
            x[start] += rng.choice([-1, 1]) * rng.uniform(3, 5)
            anomalous[start] = True
        else:  # level shift for a few steps
            x[start : start + 8] += rng.choice([-1, 1]) * rng.uniform(2, 3)
            anomalous[start : start + 8] = True
    w = _windows(x[:, None].astype(np.float32), WINDOW)
    labels = np.asarray(_windows(anomalous[:, None], WINDOW).any(axis=(1, 2)))
    n_train_w = n_train - WINDOW + 1
    return Split(w[:n_train_w], w[n_train_w:], labels[n_train_w:].astype(int))


def make_events(seed: int = 0, n_train: int = 3000, n_test: int = 1000) -> Split:
    """57-wide events on a 4-dim latent manifold; signal events leave it."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(4, 57)) / 2

    def normal(n: int) -> np.ndarray:
        return rng.normal(size=(n, 4)) @ mix + 0.1 * rng.normal(size=(n, 57))

    n_sig = n_test // 10
    signal = normal(n_sig)
    signal[:, rng.choice(57, 10, replace=False)] += rng.normal(3.0, 0.5, size=(n_sig, 10))
    test = np.concatenate([normal(n_test - n_sig), signal])
    labels = np.r_[np.zeros(n_test - n_sig, int), np.ones(n_sig, int)]

    def to3d(a: np.ndarray) -> np.ndarray:
        return a[:, None, :].astype(np.float32)  # (n, 1, 57)

    return Split(to3d(normal(n_train)), to3d(test), labels)


@pytest.fixture(scope="session")
def series() -> Split:
    return make_series()


@pytest.fixture(scope="session")
def events() -> Split:
    return make_events()


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    # Shared CI machines: one intra-op thread is faster than two fighting other jobs.
    torch.set_num_threads(1)
