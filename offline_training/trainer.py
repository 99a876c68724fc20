"""Train an autoencoder on windows of normal history.

The validation split is the chronologically *last* fraction of the windows, never a random
subset: windows overlap in time, so a shuffled split would leak training points into
validation and make early stopping stop too late. Only the training part is shuffled.

Training is seeded (torch, numpy and the batch order) and uses deterministic algorithms
on CPU, so the same seed gives the same weights. The whole array is put on the device once
and indexed per batch; a DataLoader adds more overhead than these small models cost.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import nn

from offline_training.models import ScoringHead
from stream_detector.exceptions import ConfigurationError

__all__ = [
    "TrainConfig",
    "TrainResult",
    "fit",
    "reconstruction_scores",
    "resolve_device",
    "seed_everything",
]


@dataclass
class TrainConfig:
    max_epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-5
    grad_clip: float | None = 1.0  # max global grad norm; None disables
    val_fraction: float = 0.1  # the chronologically last part of the windows
    patience: int = 3  # epochs without val improvement before stopping
    min_delta: float = 1e-3  # relative val improvement below this does not count
    deterministic: bool = True  # torch deterministic algorithms (CPU only)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_threads: int | None = None  # None: keep torch's current setting
    progress: bool = True  # rich progress bar


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)  # {epoch, loss, val_loss}
    best_epoch: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
    device: str = "cpu"


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)  # third-party code may still use the global RNG
    torch.manual_seed(seed)


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when available; asking for ``cuda`` without one is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' requested but CUDA is not available; use 'auto' or 'cpu'")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    return torch.device(device)


@contextmanager
def _deterministic(enabled: bool) -> Iterator[None]:
    # Global torch switch: restore whatever the caller had.
    before = torch.are_deterministic_algorithms_enabled()
    before_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=before_warn)


def _check(train_windows: np.ndarray, config: TrainConfig) -> None:
    if train_windows.ndim != 3:
        raise ValueError(f"train_windows must be (n, window, features), got {train_windows.shape}")
    if not 0.0 < config.val_fraction < 1.0:
        raise ValueError("val_fraction must be in (0, 1)")
    n_val = int(math.ceil(len(train_windows) * config.val_fraction))
    if len(train_windows) - n_val < 2:
        raise ValueError(f"need at least {n_val + 2} windows to train, got {len(train_windows)}")
    if not np.isfinite(train_windows).all():
        raise ValueError("train_windows contains NaN or inf; impute or drop before training")


@torch.no_grad()
def _mean_loss(model: nn.Module, x: torch.Tensor, batch_size: int) -> float:
    model.eval()
    total = 0.0
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size]
        total += float(((model(xb) - xb) ** 2).sum())
    return total / x.numel()


def _epoch(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    config: TrainConfig,
    gen: torch.Generator,
) -> float:
    model.train()
    order = torch.randperm(len(x), generator=gen).to(x.device)
    total, count = 0.0, 0
    for i in range(0, len(x), config.batch_size):
        idx = order[i : i + config.batch_size]
        if len(idx) < 2:  # BatchNorm cannot train on a single sample
            continue
        xb = x[idx]  # (batch, window, features)
        loss = ((model(xb) - xb) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        total += loss.item() * len(idx)
        count += len(idx)
    return total / max(count, 1)


def validation_size(n: int, config: TrainConfig) -> int:
    """How many of ``n`` training windows (the most recent) :func:`fit` holds out to validate."""
    return int(math.ceil(n * config.val_fraction))


def fit(model: nn.Module, train_windows: np.ndarray, config: TrainConfig) -> TrainResult:
    """Train ``model`` to reconstruct ``train_windows`` (n, window, features), float32.

    Returns the loss history; the model ends on the best validation weights, on CPU or
    the training device (whichever it was trained on).

    Raises
    ------
    ConfigurationError
        A loss became NaN or infinite (the learning rate too high for the data): before,
        the card refused the NaN history after the export, in a 60-line traceback.
    """
    _check(train_windows, config)
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    device = resolve_device(config.device)
    seed_everything(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    data = torch.as_tensor(np.ascontiguousarray(train_windows, dtype=np.float32), device=device)
    n_val = validation_size(len(data), config)
    x_train, x_val = data[:-n_val], data[-n_val:]  # validation = the most recent windows
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    result = TrainResult(device=str(device))
    best, best_state, stale = math.inf, copy.deepcopy(model.state_dict()), 0
    start = time.perf_counter()
    with (
        _deterministic(config.deterministic and device.type == "cpu"),
        _progress(config) as advance,
    ):
        for epoch in range(1, config.max_epochs + 1):
            loss = _epoch(model, opt, x_train, config, gen)
            val = _mean_loss(model, x_val, config.batch_size * 4)
            if not (math.isfinite(loss) and math.isfinite(val)):
                raise ConfigurationError(
                    f"training diverged at epoch {epoch}: the loss is {loss:g} (training) and "
                    f"{val:g} (validation); lower the learning rate (train.lr, now "
                    f"{config.lr:g}), or check the data for values far larger than the rest")
            result.history.append({"epoch": epoch, "loss": loss, "val_loss": val})
            advance(epoch, loss, val)
            if val < best * (1.0 - config.min_delta):
                best, best_state, stale = val, copy.deepcopy(model.state_dict()), 0
                result.best_epoch = epoch
            else:
                stale += 1
                if stale >= config.patience:
                    result.stopped_early = True
                    break
    model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - start
    return result


class _Advance:
    def __init__(self, progress: object | None, task: object | None) -> None:
        self.progress, self.task = progress, task

    def __call__(self, epoch: int, loss: float, val: float) -> None:
        if self.progress is not None:
            desc = f"epoch {epoch} loss {loss:.4g} val {val:.4g}"
            self.progress.update(self.task, advance=1, description=desc)  # type: ignore[attr-defined]


@contextmanager
def _progress(config: TrainConfig) -> Iterator[_Advance]:
    if not config.progress:
        yield _Advance(None, None)
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("training", total=config.max_epochs)
        yield _Advance(progress, task)


@torch.no_grad()
def reconstruction_scores(
    model: nn.Module,
    windows: np.ndarray,
    time_weights: torch.Tensor | None = None,
    batch_size: int = 4096,
) -> tuple[np.ndarray, np.ndarray]:
    """Score windows in torch exactly as the exported graph does: ``(score, errors)``.

    For parity tests and for evaluation before export; the serving path uses ONNX Runtime.
    """
    window = windows.shape[1]
    head = model if isinstance(model, ScoringHead) else ScoringHead(model, window, time_weights)
    was_training = model.training
    head.eval()
    device = next(head.parameters()).device
    scores, errors = [], []
    x_all = np.ascontiguousarray(windows, dtype=np.float32)
    for i in range(0, len(x_all), batch_size):
        s, e = head(torch.as_tensor(x_all[i : i + batch_size], device=device))
        scores.append(s.cpu().numpy())
        errors.append(e.cpu().numpy())
    head.train(was_training)
    return np.concatenate(scores), np.concatenate(errors)
