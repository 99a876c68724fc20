"""The worker's ``/health`` document: one truthful view of its models, Redis and Kafka.

::

    {"status": "ok" | "degraded",
     "redis": "ok" | "unreachable",          # no answer within 1.5 s (crashed or frozen)
     "kafka": {"status": ..., "connected": bool, "assigned_partitions": [int],
               "consumer_lag": int | null, "seconds_since_fetch": float | null},
     "models": [{"name", "version", "provider",
                 "thresholds": "redis" | "redis+card" | "card"}]}

``status`` is ``degraded`` while Redis does not answer (scoring goes on with the last known
thresholds) or while Kafka is unreachable or not fetching (see :mod:`.kafka_health`).
``thresholds`` says where each model's thresholds come from: Redis, or the card's calibrated
values as a fallback (e.g. after Redis lost them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stream_detector.core.model_runtime import ModelRuntime
from stream_detector.worker.kafka_health import KafkaStatus
from stream_detector.worker.threshold_cache import ThresholdCache

__all__ = ["health_document"]


def health_document(
    runtimes: Sequence[ModelRuntime], caches: Sequence[ThresholdCache], kafka: KafkaStatus
) -> dict[str, Any]:
    """The ``/health`` body for the served models, their threshold caches and Kafka."""
    redis_down = any(c.degraded for c in caches)
    return {
        "status": "degraded" if redis_down or not kafka.healthy else "ok",
        "redis": "unreachable" if redis_down else "ok",
        "kafka": kafka.as_dict(),
        "models": [
            {"name": r.name, "version": r.card.version, "provider": r.provider,
             "thresholds": c.source}
            for r, c in zip(runtimes, caches, strict=True)
        ],
    }
