"""The models a worker serves: their registries (hot-swapped when a new version is
published), the pipeline runtimes over them, and each one's threshold cache.

A new version is checked (:meth:`ServedModels.refresh`: card, ONNX file, routes that do not
clash with the other served models) before it replaces the old one; the old cache stops
after the new one has started, so scoring never runs without thresholds. Scoring waits for
:attr:`ServedModels.started`: every model's thresholds read from Redis once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from schemas.card import ModelCard
from stream_detector.connectivity import redis_refusal
from stream_detector.core.model_runtime import ModelRuntime
from stream_detector.core.registry import ModelRegistry
from stream_detector.core.routing import check_routes
from stream_detector.core.thresholds import ThresholdEntry
from stream_detector.exceptions import ConfigurationError, ModelCardError
from stream_detector.logs import printable
from stream_detector.settings import Settings
from stream_detector.worker.metrics import WorkerMetrics
from stream_detector.worker.threshold_cache import ThresholdCache

__all__ = ["ServedModels", "left_behind", "shown_entries"]

log = logging.getLogger(__name__)


class ServedModels:
    """The served models: registries (hot-swap) and their threshold caches.

    Parameters
    ----------
    settings
        Provider preference, ORT threads, Redis URL and namespace of the threshold caches,
        the dead-letter skew.
    model_paths
        Model folders or registry roots (the latest valid version of each is loaded).
    metrics
        Where refused model versions are counted.

    Raises
    ------
    ModelCardError
        A model folder holds no valid model (from :class:`ModelRegistry`).
    """

    def __init__(
        self, settings: Settings, model_paths: Sequence[Path], metrics: WorkerMetrics
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.registries = [
            ModelRegistry(p, preference=settings.provider,
                          intra_op_threads=settings.intra_op_threads)
            for p in model_paths
        ]
        self.caches: list[ThresholdCache] = []
        self.runtimes: list[ModelRuntime] = []
        self._started: asyncio.Event | None = None
        for registry in self.registries:
            self._add(registry.load_latest())
            self._count_refused(registry)

    def _count_refused(self, registry: ModelRegistry) -> None:
        for version, _ in registry.refused:
            self.metrics.model_versions_refused.labels(version.name, version.version).inc()
        registry.refused.clear()

    def _add(self, loaded: Any, index: int | None = None) -> None:
        cache = ThresholdCache.from_url(
            loaded.card, self.settings.redis_url, redis_kwargs=self.settings.redis_kwargs(),
            namespace=self.settings.namespace,
            refusal=functools.partial(redis_refusal, self.settings),
        )
        runtime = ModelRuntime(loaded, cache.lookup, self.settings.dead_letter_skew)
        if index is None:
            self.caches.append(cache)
            self.runtimes.append(runtime)
        else:  # a hot-swap (start-up models are logged by start())
            self.caches[index], self.runtimes[index] = cache, runtime
            log.info("hot-swapped to model %s version %s on %s", loaded.card.name,
                     loaded.card.version, loaded.scorer.provider)

    async def refresh(self) -> bool:
        """Pick up new versions published into a registry; True when something changed.

        An error with one registry is logged and the others (and later polls) go on.
        """
        changed = False
        for i, registry in enumerate(self.registries):
            try:
                loaded = registry.refresh(functools.partial(self._check_routes, i))
                self._count_refused(registry)
                if loaded is not None:
                    old, old_card = self.caches[i], self.runtimes[i].card
                    self._add(loaded, i)
                    await self.caches[i].start()
                    await old.stop()
                    left = left_behind(old.entries, self.caches[i].entries)
                    if left:
                        log.warning(
                            "thresholds set by hand on %s v%s do not apply to v%s, which "
                            "uses %s: %s; set them for v%s with `stream-detector thresholds "
                            "set %s KEY VALUE --version %s`", old_card.name, old_card.version,
                            loaded.card.version,
                            "Redis' values" if self.caches[i].entries else "its card's",
                            printable(shown_entries(left)), loaded.card.version,
                            loaded.card.name, loaded.card.version)
                    changed = True
            except Exception:  # noqa: BLE001 - polling must survive anything
                log.exception("checking %s for new model versions failed; the current "
                              "version keeps serving and polling goes on", registry.root)
        return changed

    def _check_routes(self, index: int, card: ModelCard) -> None:
        cards = [r.card for r in self.runtimes]
        cards[index] = card
        try:
            check_routes(cards)
        except ConfigurationError as exc:
            raise ModelCardError(f"its keys clash with another served model: {exc}") from exc

    async def start(self) -> None:
        """Load every model's thresholds from Redis once, then let scoring begin."""
        for runtime, cache in zip(self.runtimes, self.caches, strict=True):
            card = runtime.card
            log.info("model %s version %s on %s, %s ORT threads (sha256 %s)", card.name,
                     card.version, runtime.loaded.scorer.provider,
                     runtime.loaded.scorer.threads or "default", card.onnx_sha256[:12],
                     extra={"model": card.name, "version": card.version,
                            "provider": runtime.loaded.scorer.provider})
            await cache.start()
        self.started.set()

    @property
    def started(self) -> asyncio.Event:
        if self._started is None:  # created inside the worker's event loop
            self._started = asyncio.Event()
        return self._started

    @property
    def degraded(self) -> bool:
        return any(c.degraded for c in self.caches)


def left_behind(old: dict[str, ThresholdEntry], new: dict[str, ThresholdEntry]
                ) -> dict[str, ThresholdEntry]:
    """The thresholds set by hand (``manual``) on the version a hot-swap replaced that the
    new version lacks: without a word they stopped applying.

    >>> hand = ThresholdEntry(value=3.0, set_by="operator")
    >>> card = ThresholdEntry(value=5.5, method="sigma", set_by="model-card")
    >>> sorted(left_behind({"*": hand, "a": card}, {}))
    ['*']
    >>> left_behind({"*": hand}, {"*": ThresholdEntry(value=4.0)})
    {}
    """
    return {k: e for k, e in old.items() if e.method == "manual" and k not in new}


def shown_entries(entries: dict[str, ThresholdEntry], most: int = 3) -> str:
    """``KEY VALUE (by WHO)``, the first ``most`` of them, then how many more."""
    shown = [f"{k} {e.value:g} (by {e.set_by or 'unknown'})"
             for k, e in sorted(entries.items())[:most]]
    more = f" and {len(entries) - most} more" if len(entries) > most else ""
    return "; ".join(shown) + more
