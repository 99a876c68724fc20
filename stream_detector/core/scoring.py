"""Scoring with ONNX Runtime: sessions, batching, scaling.

Contract (every model family): ``windows`` float32 ``(batch, window, features)``, already
scaled, in; ``score`` float32 ``(batch,)`` (higher = more anomalous) and ``errors`` float32
``(batch, window, features)`` (squared reconstruction error) out. A model may add a third
output ``reconstruction`` (same shape as the input); events then carry expected values.

Sessions ask only for the execution providers that will work here
(:func:`~stream_detector.core.providers.select_providers`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from schemas.card import DEFAULT_KEY, ScalerCard
from stream_detector.constants import ProviderPreference
from stream_detector.core import ort_threads
from stream_detector.core.providers import CPU, QUIET, select_providers
from stream_detector.exceptions import ConfigurationError, ModelCardError

__all__ = [
    "BATCH_BYTES",
    "make_session",
    "ScaleTable",
    "ScoreBatch",
    "Scorer",
    "apply_scaler",
    "signed_expm1",
    "signed_log1p",
]

FloatArray = npt.NDArray[np.float32]
BATCH_BYTES: Final = 1 << 20  # float32 input one ONNX Runtime call takes, by default
_MIN_BATCH: Final = 64
_F32: Final = 4


@dataclass(frozen=True, slots=True)
class ScoreBatch:
    """Scores of a batch of windows; ``reconstructions`` only if the model exports them."""

    scores: FloatArray  # (batch,)
    errors: FloatArray  # (batch, window, features)
    reconstructions: FloatArray | None = None  # (batch, window, features)


class Scorer:
    """One ONNX Runtime session for one model, with input checks and batching.

    Parameters
    ----------
    model
        ONNX bytes, or a path to ``model.onnx``. Pass bytes when the caller has already
        verified their hash, so the bytes checked are the bytes run.
    window, features
        Expected input shape from the model card; inputs of another shape are rejected
        before they reach ONNX Runtime (whose errors name graph nodes, not the cause).
    preference, providers
        Provider preference (see :func:`select_providers`), or an explicit list.
    intra_op_threads
        Threads per operator; 0 lets ONNX Runtime use every core; ``-1``
        (:data:`~stream_detector.core.ort_threads.AUTO`) times 1 thread against one per core
        on this machine and keeps the faster (``threads`` says which).
    max_batch
        Larger batches are split, bounding memory (GPU memory in particular); default
        (None): as many windows as :data:`BATCH_BYTES` of float32 input holds (10,922
        windows of 24 x 1, 5,242 of 50 x 1, 64 at least). One call per batch matters:
        cutting 13,700 windows of 24 into calls of 1,024 and joining their outputs took
        2.45 ms against 1.43 in one call (2 cores; ONNX Runtime's own time is flat from a
        few hundred windows on).
    """

    def __init__(
        self,
        model: bytes | Path | str,
        *,
        window: int,
        features: int,
        preference: ProviderPreference | str = "auto",
        providers: Sequence[str] | None = None,
        intra_op_threads: int = 0,
        max_batch: int | None = None,
    ) -> None:
        if max_batch is None:
            max_batch = max(_MIN_BATCH, BATCH_BYTES // (_F32 * window * features))
        if max_batch < 1:
            raise ConfigurationError(f"max_batch must be >= 1, got {max_batch}")
        self.window = window
        self.features = features
        self.max_batch = max_batch
        chosen = list(providers) if providers is not None else select_providers(preference)
        source = str(model) if isinstance(model, Path | str) else model
        if intra_op_threads != ort_threads.AUTO:
            self._session = make_session(source, chosen, intra_op_threads)
            self._check_io()
        else:  # time the candidates here, keep the fastest
            sessions = {t: make_session(source, chosen, t) for t in ort_threads.candidates()}
            self._session = next(iter(sessions.values()))
            self._check_io()
            timings = ort_threads.time_sessions(
                sessions, lambda s, x: s.run(self._outputs, {"windows": x}), window, features)
            intra_op_threads = ort_threads.fastest(timings)
            self._session = sessions[intra_op_threads]
        self.threads = intra_op_threads  # what the session runs with (0: ORT's default)
        self._run_c = _c_run(self._session)

    def _check_io(self) -> None:
        inputs = self._session.get_inputs()
        outputs = [o.name for o in self._session.get_outputs()]
        if [i.name for i in inputs] != ["windows"] or outputs[:2] != ["score", "errors"]:
            raise ModelCardError(
                f"model has inputs {[i.name for i in inputs]} and outputs {outputs}; the "
                "scoring contract needs input 'windows' and outputs 'score', 'errors' "
                "(re-export the model with offline_training's exporter)"
            )
        shape = inputs[0].shape
        for axis, want in ((1, self.window), (2, self.features)):
            got = shape[axis] if len(shape) == 3 else None
            if isinstance(got, int) and got != want:
                raise ModelCardError(
                    f"model input axis {axis} is {got} but the card says {want}; the card "
                    "does not describe this model"
                )
        self._outputs = outputs[:3] if "reconstruction" in outputs[2:3] else outputs[:2]
        meta = {o.name: o for o in self._session.get_outputs()}
        # float32 outputs and a (batch,) score: ORT's arrays are the ScoreBatch as they are
        self._plain = all(meta[o].type == "tensor(float)" for o in self._outputs) and len(
            meta["score"].shape) == 1

    @property
    def outputs(self) -> tuple[str, ...]:
        """The outputs every call asks for: score, errors (and reconstruction if exported)."""
        return tuple(self._outputs)

    @property
    def session(self) -> ort.InferenceSession:
        """The ONNX Runtime session every call runs on (benchmarks time it bare)."""
        return self._session

    @property
    def c_level_run(self) -> bool:
        """True when calls go to ONNX Runtime's C-level ``run`` (a CPU-only session), False
        when they go through ``InferenceSession.run``."""
        return self._run_c is not None

    @property
    def provider(self) -> str:
        """The execution provider actually used (first of the session's providers)."""
        return str(self._session.get_providers()[0])

    def _run(self, chunk: FloatArray) -> list[Any]:
        if self._run_c is not None:
            return list(self._run_c(self._outputs, {"windows": chunk}, None))
        return list(self._session.run(self._outputs, {"windows": chunk}))

    def score(self, windows: npt.ArrayLike) -> ScoreBatch:
        """Score ``windows`` ``(batch, window, features)``; values must already be scaled.

        Raises
        ------
        ValueError
            ``windows`` is not ``(batch, window, features)`` with the card's sizes.
        """
        x = np.ascontiguousarray(windows, dtype=np.float32)
        if x.shape[1:] != (self.window, self.features) or x.ndim != 3:
            raise ValueError(
                f"windows must have shape (batch, {self.window}, {self.features}), got {x.shape}"
            )
        return self.score_ready(x)

    def score_ready(self, x: FloatArray) -> ScoreBatch:
        """:meth:`score` of an input the caller built for this model: C-contiguous float32
        ``(batch, window, features)``, scaled (the scoring stage's batches; not checked
        again). Results are the arrays ONNX Runtime returned, new for every call."""
        n = len(x)
        if 0 < n <= self.max_batch and self._plain:
            if self._run_c is not None:
                outs = self._run_c(self._outputs, {"windows": x}, None)
            else:
                outs = self._session.run(self._outputs, {"windows": x})
            return ScoreBatch(outs[0], outs[1], outs[2] if len(outs) > 2 else None)
        if n <= self.max_batch:
            outs = self._run(x) if n else self._empty(0)
            return self._batch(outs)
        parts = [self._run(x[i : i + self.max_batch]) for i in range(0, n, self.max_batch)]
        return self._batch([np.concatenate(cols) for cols in zip(*parts, strict=True)])

    def _empty(self, n: int) -> list[Any]:
        shape = (n, self.window, self.features)
        outs: list[Any] = [np.zeros(n, np.float32), np.zeros(shape, np.float32)]
        return outs + [np.zeros(shape, np.float32)] * (len(self._outputs) - 2)

    def _batch(self, outs: list[Any]) -> ScoreBatch:
        # ORT returns float32 arrays already; asarray only guards a model that does not
        scores = np.asarray(outs[0], dtype=np.float32).reshape(-1)
        errors = np.asarray(outs[1], dtype=np.float32)
        recon = np.asarray(outs[2], dtype=np.float32) if len(outs) > 2 else None
        return ScoreBatch(scores, errors, recon)


def _c_run(session: ort.InferenceSession) -> Any:
    """ONNX Runtime's C-level ``run(names, feed, options)`` when the session runs on the CPU
    alone, else None (use ``session.run``). The Python wrapper's ``run`` re-validates the
    input names and OrtValue ownership on every call (~2 us, a fiftieth of a dense model's
    batch of 64); its one other duty, falling back from a failing GPU provider, does not
    apply to a CPU-only session. None too if a later onnxruntime drops the attribute."""
    if session.get_providers() != [CPU]:
        return None
    inner = getattr(session, "_sess", None)
    return getattr(inner, "run", None)


def make_session(source: str | bytes, providers: list[str], threads: int) -> ort.InferenceSession:
    """An ONNX Runtime session as the scorer makes it: ``threads`` intra-op threads that do not
    spin, one inter-op thread, sequential execution, every graph optimisation; ``source`` is a
    model path or its bytes, ``providers`` in preference order."""
    options = ort.SessionOptions()
    options.log_severity_level = QUIET
    options.intra_op_num_threads = threads
    # idle ORT threads must not spin: they would steal the event loop's core
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(source, sess_options=options, providers=providers)


class ScaleTable:
    """A model card's scaler as arrays, for vectorised per-key scaling.

    Built once per model; ``transform`` costs one dict lookup per window plus two numpy
    operations per batch.
    """

    def __init__(self, scaler: ScalerCard | Mapping[str, Any], n_features: int) -> None:
        card = scaler if isinstance(scaler, ScalerCard) else ScalerCard.model_validate(scaler)
        self.log1p = card.transform == "log1p"
        self.identity = card.method == "none" or not card.params
        self.per_key = card.per_key
        self._rows: dict[str, int] = {}
        centers, scales = [np.zeros(n_features)], [np.ones(n_features)]
        for key, params in card.params.items():
            if len(params.center) != n_features or len(params.scale) != n_features:
                raise ModelCardError(
                    f"scaler params[{key!r}] do not have {n_features} values per feature"
                )
            self._rows[key] = len(centers)
            centers.append(np.asarray(params.center))
            scales.append(np.asarray(params.scale))
        self._default = self._rows.get(DEFAULT_KEY, 0)
        self.center = np.stack(centers).astype(np.float32)  # (entries, features)
        self.scale = np.stack(scales).astype(np.float32)
        # the one-row case's operands: (features,) rows, or float32 scalars for one feature
        # (numpy's scalar path skips broadcasting: 1.7 us for 64 windows of 50, not 2.9)
        row = self.center[self._default], self.scale[self._default]
        self._center_row, self._scale_row = (row if n_features != 1 else
                                             (row[0][0], row[1][0]))

    def rows(self, keys: Sequence[str]) -> npt.NDArray[np.intp]:
        """Row of each key's parameters: its own when per-key, else the ``*`` entry."""
        if not self.per_key:
            return np.full(len(keys), self._default, dtype=np.intp)
        get, default = self._rows.get, self._default
        return np.fromiter((get(k, default) for k in keys), dtype=np.intp, count=len(keys))

    def transform(self, windows: npt.ArrayLike, keys: Sequence[str]) -> FloatArray:
        """``(x - center) / scale`` for each window with its key's parameters."""
        x = np.asarray(windows, dtype=np.float32)
        if self.log1p:
            x = signed_log1p(x)
        if self.identity:
            return x
        if not self.per_key:  # one row for every window: broadcast it, same float32 math
            d = self._default
            return np.asarray((x - self.center[d]) / self.scale[d], dtype=np.float32)
        r = self.rows(keys)
        return ((x - self.center[r][:, None, :]) / self.scale[r][:, None, :]).astype(np.float32)

    def transform_owned(self, x: FloatArray, keys: Sequence[str]) -> FloatArray:
        """:meth:`transform` of a float32 array the caller owns and will not read again: the
        one-row case scales it in place (the same float32 operations, no new array)."""
        if self.log1p or self.identity or self.per_key:
            return self.transform(x, keys)
        x -= self._center_row
        x /= self._scale_row
        return x

    def transform_new(self, x: FloatArray, keys: Sequence[str]) -> FloatArray:
        """:meth:`transform` of a float32 array that must stay as it is (windows ingest
        wrote, still read by the decisions): a new array, in one pass less than
        :meth:`transform` in the one-row case (the same float32 operations); the identity
        returns ``x`` itself."""
        if self.log1p or self.identity or self.per_key:
            return self.transform(x, keys)
        y: FloatArray = np.subtract(x, self._center_row)
        y /= self._scale_row
        return y

    def inverse(self, scaled: npt.ArrayLike, keys: Sequence[str]) -> FloatArray:
        """Undo :meth:`transform` (model reconstructions back to original units)."""
        x = np.asarray(scaled, dtype=np.float32)
        if not self.identity and not self.per_key:
            d = self._default
            x = np.asarray(x * self.scale[d] + self.center[d], dtype=np.float32)
        elif not self.identity:
            r = self.rows(keys)
            x = (x * self.scale[r][:, None, :] + self.center[r][:, None, :]).astype(np.float32)
        return signed_expm1(x) if self.log1p else x


def signed_log1p(x: npt.ArrayLike) -> FloatArray:
    """``sign(x) * log(1 + |x|)``: compresses heavy tails, defined for every real.

    >>> [round(float(v), 4) for v in signed_log1p(np.array([-1.0, 0.0, np.e - 1]))]
    [-0.6931, 0.0, 1.0]
    """
    a = np.asarray(x, dtype=np.float32)
    return (np.sign(a) * np.log1p(np.abs(a))).astype(np.float32)


def signed_expm1(x: npt.ArrayLike) -> FloatArray:
    """Inverse of :func:`signed_log1p`."""
    a = np.asarray(x, dtype=np.float32)
    return (np.sign(a) * np.expm1(np.abs(a))).astype(np.float32)


def apply_scaler(
    windows: npt.ArrayLike, keys: Sequence[str], scaler: ScalerCard | Mapping[str, Any]
) -> FloatArray:
    """Scale a batch ``(batch, window, features)``, one key per window (``*`` fallback).

    Convenience for one-off use; workers keep a :class:`ScaleTable`.

    >>> sc = {"method": "standard", "per_key": True,
    ...       "params": {"*": {"center": [0.0], "scale": [1.0]},
    ...                  "a": {"center": [10.0], "scale": [2.0]}}}
    >>> apply_scaler(np.full((2, 1, 1), 12.0), ["a", "b"], sc).ravel().tolist()
    [1.0, 12.0]
    """
    x = np.asarray(windows, dtype=np.float32)
    if x.ndim != 3 or x.shape[0] != len(keys):
        raise ValueError(f"need (batch, window, features) and one key per window, got {x.shape}")
    return ScaleTable(scaler, x.shape[2]).transform(x, keys)
