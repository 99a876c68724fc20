"""Autoencoder families and the scoring head that is exported to ONNX.

Every family maps a batch of already-scaled windows ``(batch, window, features)`` to a
reconstruction of the same shape. :class:`ScoringHead` turns any of them into the one
scoring contract of the project: ``windows -> (score, errors)`` where ``errors`` is the
squared reconstruction error per time step and feature and ``score`` its mean over features,
weighted over time steps by the ``time_weights`` buffer (sum 1, baked into the ONNX graph).
Higher score = more anomalous.

Read top to bottom: a ``@dataclass`` config next to each module, shapes in comments.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from schemas.kinds import AUTOENCODER_FAMILIES

__all__ = [
    "Activation",
    "DenseConfig",
    "DenseAE",
    "LSTMConfig",
    "LSTMAE",
    "Conv1DConfig",
    "Conv1DAE",
    "EventsConfig",
    "EventsAE",
    "ScoringHead",
    "build_model",
    "config_dict",
    "error_spread",
    "make_time_weights",
]

Activation = Literal["relu", "tanh", "gelu", "leaky_relu", "sigmoid"]


def _activation(name: str) -> nn.Module:
    table: dict[str, type[nn.Module]] = {
        "relu": nn.ReLU,
        "tanh": nn.Tanh,
        "gelu": nn.GELU,
        "leaky_relu": nn.LeakyReLU,
        "sigmoid": nn.Sigmoid,
    }
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(table)}")
    return table[name]()


# ----------------------------------------------------------------------------------------
# Dense autoencoder (seed 000: 50-64-32-64-50 with sigmoid output; seed 003/004: BN + dropout)


@dataclass
class DenseConfig:
    """Encoder sizes; the decoder mirrors them. The last entry is the bottleneck."""

    hidden: tuple[int, ...] = (64, 32)
    activation: Activation = "relu"
    batch_norm: bool = False
    dropout: float = 0.0
    output_activation: Literal["none", "sigmoid"] = "none"


class DenseAE(nn.Module):
    """Fully connected AE over the flattened window (window * features inputs)."""

    def __init__(self, window: int, features: int, config: DenseConfig | None = None) -> None:
        super().__init__()
        self.config = config or DenseConfig()
        self.window, self.features = window, features
        d_in = window * features
        sizes = [d_in, *self.config.hidden]
        self.encoder = self._stack(sizes)
        mirror = sizes[::-1]  # e.g. 32 -> 64 -> 50
        self.decoder = self._stack(mirror[:-1])  # hidden part of the decoder
        self.out = nn.Linear(mirror[-2], mirror[-1])
        self.out_act: nn.Module = (
            nn.Sigmoid() if self.config.output_activation == "sigmoid" else nn.Identity()
        )

    def _stack(self, sizes: list[int]) -> nn.Sequential:
        c = self.config
        layers: list[nn.Module] = []
        for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True):
            layers.append(nn.Linear(d_in, d_out))
            if c.batch_norm:
                layers.append(nn.BatchNorm1d(d_out))
            layers.append(_activation(c.activation))
            if c.dropout > 0:
                layers.append(nn.Dropout(c.dropout))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(-1, self.window * self.features)  # (batch, window*features)
        z = self.encoder(h)  # (batch, hidden[-1])
        y: torch.Tensor = self.out_act(self.out(self.decoder(z)))  # (batch, window*features)
        return y.reshape(-1, self.window, self.features)  # (batch, window, features)


# ----------------------------------------------------------------------------------------
# Events autoencoder (seed 002/004: 57 -> [32, 16, 8] -> latent 4 -> mirror, BN + dropout)


@dataclass
class EventsConfig(DenseConfig):
    """Seed 004's event AE; a dense AE whose defaults suit fixed-width feature events."""

    hidden: tuple[int, ...] = (32, 16, 8, 4)
    batch_norm: bool = True
    dropout: float = 0.2


class EventsAE(DenseAE):
    """Dense AE over one event per window, ``(batch, 1, 57)`` for the physics feed."""

    def __init__(self, window: int, features: int, config: EventsConfig | None = None) -> None:
        super().__init__(window, features, config or EventsConfig())


# ----------------------------------------------------------------------------------------
# LSTM autoencoder (seed 001): encode the sequence to a latent, repeat it, decode


@dataclass
class LSTMConfig:
    hidden: int = 32
    latent: int = 16
    num_layers: int = 1


class LSTMAE(nn.Module):
    """Encoder LSTM -> latent -> repeated over time -> decoder LSTM -> per-step linear."""

    def __init__(self, window: int, features: int, config: LSTMConfig | None = None) -> None:
        super().__init__()
        c = self.config = config or LSTMConfig()
        self.window, self.features = window, features
        self.encoder = nn.LSTM(features, c.hidden, c.num_layers, batch_first=True)
        self.to_latent = nn.Linear(c.hidden, c.latent)
        self.decoder = nn.LSTM(c.latent, c.hidden, c.num_layers, batch_first=True)
        self.out = nn.Linear(c.hidden, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.encoder(x)  # (batch, window, hidden)
        z = torch.tanh(self.to_latent(h[:, -1, :]))  # (batch, latent)
        z = z.unsqueeze(1).expand(-1, self.window, -1)  # (batch, window, latent)
        d, _ = self.decoder(z)  # (batch, window, hidden)
        y: torch.Tensor = self.out(d)  # (batch, window, features)
        return y


# ----------------------------------------------------------------------------------------
# Conv1D autoencoder (seed 001's best model): strided Conv1d down, ConvTranspose1d up


@dataclass
class Conv1DConfig:
    # Smaller than seed 001's (32, 16) x 7: the full-length decoder layers dominate the cost,
    # and (16, 8) x 5 trains ~4x faster on CPU with the same reconstruction on our series.
    channels: tuple[int, ...] = (16, 8)
    kernel_size: int = 5  # odd, so padding k // 2 keeps the centre aligned
    activation: Activation = "relu"
    dropout: float = 0.0


class Conv1DAE(nn.Module):
    """Each stride-2 conv halves the length (ceil); each transposed conv undoes one exactly.

    The transposed convs get ``output_padding`` computed from the recorded encoder lengths,
    so any window length (odd or even) is reconstructed to exactly ``window`` steps.
    """

    def __init__(self, window: int, features: int, config: Conv1DConfig | None = None) -> None:
        super().__init__()
        c = self.config = config or Conv1DConfig()
        if c.kernel_size % 2 == 0:
            raise ValueError("Conv1DConfig.kernel_size must be odd")
        self.window, self.features = window, features
        k, p = c.kernel_size, c.kernel_size // 2
        lengths = [window]
        for _ in c.channels:
            lengths.append((lengths[-1] + 2 * p - k) // 2 + 1)  # ceil(L / 2)
        enc: list[nn.Module] = []
        for c_in, c_out in zip((features, *c.channels[:-1]), c.channels, strict=True):
            enc += [nn.Conv1d(c_in, c_out, k, stride=2, padding=p), _activation(c.activation)]
            if c.dropout > 0:
                enc.append(nn.Dropout(c.dropout))
        dec: list[nn.Module] = []
        ups = list(zip(c.channels[::-1], (*c.channels[::-1][1:], c.channels[0]), strict=True))
        for i, (c_in, c_out) in enumerate(ups):
            l_in, l_out = lengths[-1 - i], lengths[-2 - i]
            pad_out = l_out - ((l_in - 1) * 2 - 2 * p + k)  # 0 or 1
            dec += [
                nn.ConvTranspose1d(c_in, c_out, k, 2, p, output_padding=pad_out),
                _activation(c.activation),
            ]
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)
        self.out = nn.Conv1d(c.channels[0], features, k, padding=p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.transpose(1, 2)  # (batch, features, window): channels first for Conv1d
        h = self.decoder(self.encoder(h))  # (batch, channels[0], window)
        y: torch.Tensor = self.out(h)  # (batch, features, window)
        return y.transpose(1, 2)  # (batch, window, features)


# ----------------------------------------------------------------------------------------
# Scoring head: the module that is exported to ONNX


def make_time_weights(
    window: int, last: int | None = None, emphasis: float | None = None
) -> torch.Tensor:
    """Per-time-step weights (sum 1) for the window score.

    ``last=None`` gives uniform weights. With ``last=k`` and no ``emphasis`` only the last k
    steps count (a window's newest points decide, useful for early alerts); with
    ``emphasis=e`` the last k steps weigh e times the others.

    >>> make_time_weights(4, last=1, emphasis=3.0).tolist()
    [0.1666666716337204, 0.1666666716337204, 0.1666666716337204, 0.5]
    """
    if window < 1:
        raise ValueError("window must be >= 1")
    w = torch.ones(window, dtype=torch.float32)
    if last is not None:
        if not 1 <= last <= window:
            raise ValueError(f"last must be in [1, {window}], got {last}")
        if emphasis is None:
            w[: window - last] = 0.0
        elif emphasis <= 0 or not math.isfinite(emphasis):
            raise ValueError("emphasis must be a positive finite number")
        else:
            w[window - last :] = emphasis
    return w / w.sum()


class ScoringHead(nn.Module):
    """``windows -> (score, errors)`` for any AE: the ONNX scoring contract.

    ``errors`` (batch, window, features) are the squared reconstruction errors. The score
    aggregates them over features per time step, then weighs the steps by ``time_weights``:

    - ``aggregate="mean"`` (default): the mean squared error over features;
    - ``feature_scale`` (features,), positive: each feature's error is divided by it first
      (its spread on held-out normal windows, :func:`error_spread`), so a feature the AE
      always reconstructs well counts as much as one it never can;
    - ``aggregate="rms"``: the root mean square of those scaled errors over features, so a
      few features far outside their spread outweigh many slightly raised ones.
    """

    time_weights: torch.Tensor
    feature_scale: torch.Tensor

    def __init__(
        self, ae: nn.Module, window: int, time_weights: torch.Tensor | None = None,
        feature_scale: torch.Tensor | np.ndarray | None = None,
        aggregate: Literal["mean", "rms"] = "mean",
    ):
        super().__init__()
        self.ae = ae
        tw = make_time_weights(window) if time_weights is None else time_weights
        tw = torch.as_tensor(tw, dtype=torch.float32).reshape(-1)
        if tw.numel() != window or bool((tw < 0).any()) or abs(float(tw.sum()) - 1.0) > 1e-5:
            raise ValueError(f"time_weights must be {window} non-negative numbers summing to 1")
        if aggregate not in ("mean", "rms"):
            raise ValueError(f"aggregate must be mean or rms, got {aggregate!r}")
        self.register_buffer("time_weights", tw)
        self.scaled = feature_scale is not None
        fs = torch.ones(1) if feature_scale is None else torch.as_tensor(
            np.asarray(feature_scale, dtype=np.float32)).reshape(-1)
        if not bool(torch.isfinite(fs).all()) or bool((fs <= 0).any()):
            raise ValueError("feature_scale must be positive and finite")
        self.register_buffer("feature_scale", fs)
        self.aggregate = aggregate

    def forward(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        score, errors, _ = self.parts(windows)
        return score, errors

    def parts(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(score, errors, reconstruction)``: what the exported ONNX graph outputs (the
        reconstruction becomes the expected values of anomaly events)."""
        recon = self.ae(windows)  # (batch, window, features)
        errors = (recon - windows) ** 2  # (batch, window, features)
        scaled = errors / self.feature_scale if self.scaled else errors
        if self.aggregate == "rms":
            per_step = torch.sqrt((scaled**2).mean(dim=2))  # (batch, window)
        else:
            per_step = scaled.mean(dim=2)  # (batch, window)
        score = per_step @ self.time_weights  # (batch,)
        return score, errors, recon

    def card_section(self) -> dict[str, Any]:
        """What the model card records of the scoring: aggregate and feature scale."""
        scale = [float(v) for v in self.feature_scale] if self.scaled else None
        return {"aggregate": self.aggregate, "feature_scale": scale}


def error_spread(errors: np.ndarray, floor: float = 0.1) -> np.ndarray:
    """Per-feature spread of squared errors ``(n, window, features)``: standard deviation
    over windows and steps, floored at ``floor`` x the median feature's spread.

    The floor keeps a feature that is (almost) constant in normal data, such as a padded
    slot, from weighing without bound: its errors are tiny until the slot is filled once.

    >>> e = np.array([[[0.0, 1.0, 5.0]], [[0.0, 3.0, 1.0]]])
    >>> error_spread(e).tolist()
    [0.1, 1.0, 2.0]
    """
    flat = np.asarray(errors, dtype=np.float64).reshape(-1, np.shape(errors)[-1])
    if flat.shape[0] < 2:
        raise ValueError("error_spread needs at least two windows")
    spread = flat.std(axis=0)
    limit = floor * float(np.median(spread))
    out: np.ndarray = np.maximum(spread, limit)
    out[out <= 0] = 1.0  # constant everywhere: nothing to scale by
    return out


class ExportHead(nn.Module):
    """A :class:`ScoringHead` whose forward returns all three ONNX outputs."""

    def __init__(self, head: ScoringHead):
        super().__init__()
        self.head = head

    def forward(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.head.parts(windows)


# ----------------------------------------------------------------------------------------
# Factory

_CONFIGS: dict[str, tuple[type[nn.Module], type[Any]]] = {
    "dense": (DenseAE, DenseConfig),
    "lstm": (LSTMAE, LSTMConfig),
    "conv1d": (Conv1DAE, Conv1DConfig),
    "events": (EventsAE, EventsConfig),
}


def build_model(
    family: str,
    window: int,
    features: int,
    config: dict[str, Any] | None = None,
    seed: int | None = None,
) -> nn.Module:
    """Build an AE of ``family`` from a plain dict (e.g. a model card's ``training.config``).

    Unknown keys raise, so a typo in a config file cannot silently fall back to a default.
    Lists are turned into tuples for the tuple-typed fields. ``seed`` fixes the initial
    weights.
    """
    if family not in _CONFIGS:
        raise ValueError(
            f"unknown model family {family!r}; choose one of {list(AUTOENCODER_FAMILIES)}")
    if window < 1 or features < 1:
        raise ValueError("window and features must be >= 1")
    module_cls, config_cls = _CONFIGS[family]
    names = {f.name for f in dataclasses.fields(config_cls)}
    given = dict(config or {})
    unknown = set(given) - names
    if unknown:
        raise ValueError(f"unknown {family} config keys {sorted(unknown)}; valid: {sorted(names)}")
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items()}
    if seed is not None:
        torch.manual_seed(seed)
    return module_cls(window, features, config_cls(**given))


def config_dict(model: nn.Module) -> dict[str, Any]:
    """The model's config as a JSON-ready dict (for the model card)."""
    cfg = getattr(model, "config", None)
    if cfg is None or not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        return {}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}
