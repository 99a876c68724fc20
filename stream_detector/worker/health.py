"""The worker's ``/health`` document: one truthful view of its models, Redis and Kafka.

::

    {"status": "ok" | "degraded",
     "redis": "ok" | "unreachable" | "refused" | "starting",
              # unreachable: no answer within 1.5 s (crashed or frozen); refused: it
              # answered, refusing the credentials; starting: the threshold caches start
              # once the partitions are assigned and their key states restored
     "outputs": {"status": "ok" | "stalled",  # events and key states not delivered for
                 "undelivered_seconds": float},  # over 30 s: nothing is acked or consumed
     "kafka": {"status": ..., "connected": bool, "assigned_partitions": [int],
               "consumer_lag": int | null, "seconds_since_fetch": float | null},
     "models": [{"name", "version", "provider",
                 "thresholds": "redis" | "redis+card" | "card"}]}

``status`` is ``degraded`` while Redis does not answer (scoring goes on with the last known
thresholds), while Kafka is unreachable or not fetching (see :mod:`.kafka_health`), or while
the outputs of a state flush have waited over 30 s (a deleted output or changelog topic, a
broker refusing the writes: the worker consumes nothing until they are delivered).
``thresholds`` says where each model's thresholds come from: Redis, or the card's calibrated
values as a fallback (e.g. after Redis lost them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from stream_detector.core.model_runtime import ModelRuntime
from stream_detector.worker.kafka_health import KafkaStatus
from stream_detector.worker.threshold_cache import ThresholdCache

__all__ = ["DELIVERY_STALL_SECONDS", "health_document"]

DELIVERY_STALL_SECONDS: Final = 30.0
"""A flush's outputs undelivered for longer: /health says ``degraded`` (outputs stalled)."""


def health_document(
    runtimes: Sequence[ModelRuntime], caches: Sequence[ThresholdCache], kafka: KafkaStatus,
    undelivered_seconds: float = 0.0,
) -> dict[str, Any]:
    """The ``/health`` body for the served models, their threshold caches and Kafka;
    ``undelivered_seconds``: how long the state flush in flight has waited for its outputs
    (:meth:`~stream_detector.worker.acks.FlushThenAck.waiting_seconds`). Over
    :data:`DELIVERY_STALL_SECONDS` the worker is degraded: with its output topic deleted it
    processed nothing for minutes while /health said ok and the lag 0."""
    redis_down = any(c.degraded for c in caches)
    refused = any(c.degraded and c.refused for c in caches)  # answered, refused us
    stalled = undelivered_seconds > DELIVERY_STALL_SECONDS
    return {
        "status": "degraded" if redis_down or not kafka.healthy or stalled else "ok",
        "redis": "refused" if refused else "unreachable" if redis_down else (
            "starting" if not all(c.started for c in caches) else "ok"),
        "outputs": {"status": "stalled" if stalled else "ok",
                    "undelivered_seconds": round(undelivered_seconds, 1)},
        "kafka": kafka.as_dict(),
        "models": [
            {"name": r.name, "version": r.card.version, "provider": r.provider,
             "thresholds": c.source}
            for r, c in zip(runtimes, caches, strict=True)
        ],
    }
