"""What the worker's Kafka consumer is doing, for ``/health`` and ``/metrics``.

Faust exposes no health view of its consumer, so this module reads aiokafka's own
bookkeeping: the assignment, each input partition's high watermark and the time of its last
fetch response, and whether any broker connection is open. Reading them costs a few
attribute look-ups (no request to the broker), so ``/health`` can be polled freely.

Consumer lag is per input partition ``high watermark - (last offset read + 1)`` (the next
offset the worker wants), summed; partitions not fetched yet count as unknown (no lag). It is
the one source of the figure for ``/health``, ``/metrics`` and the console summary; while
the consumer is not healthy (no broker connection, or no fetch response for
:data:`STALE_FETCH_SECONDS`) the high watermarks are stale, so the lag is None (unknown).
``seconds_since_fetch`` is ``now - newest fetch response`` over assigned input partitions;
the consumer fetches at least every ``fetch_max_wait`` (a setting, 0.02 s by default; Faust's
own 1.5 s without the start-up patch) even when idle, so a value well above that means the
broker is not answering.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Final

__all__ = ["KafkaStatus", "STALE_FETCH_SECONDS", "coordination_failed", "group_membership",
           "kafka_status", "topic_partitions"]

STALE_FETCH_SECONDS: Final = 10.0
"""Without a fetch response for this long, an assigned worker reports itself degraded."""


@dataclass(frozen=True)
class KafkaStatus:
    """The consumer's view of Kafka at one moment.

    Attributes
    ----------
    connected
        Whether any broker connection is open.
    assigned_partitions
        Input topic partitions assigned to this worker (sorted).
    consumer_lag
        Records behind the high watermarks, summed over assigned input partitions; None
        (unknown) while the consumer is not :attr:`healthy`.
    seconds_since_fetch
        Seconds since the newest fetch response of an assigned input partition; None
        before the first one.
    coordination_failed
        Why aiokafka's group coordination task ended, when it has: the consumer then never
        joins the group or consumes again (None while it runs, or before it starts).
    """

    connected: bool
    assigned_partitions: list[int]
    consumer_lag: int | None
    seconds_since_fetch: float | None
    coordination_failed: str | None = None

    @property
    def healthy(self) -> bool:
        """Connected, coordinating, and (when partitions are assigned) fetching recently."""
        if not self.connected or self.coordination_failed is not None:
            return False
        if self.assigned_partitions and self.seconds_since_fetch is not None:
            return self.seconds_since_fetch <= STALE_FETCH_SECONDS
        return True

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, with ``status`` (``ok`` or ``degraded``)."""
        return {"status": "ok" if self.healthy else "degraded", **asdict(self)}


UNKNOWN: Final = KafkaStatus(connected=False, assigned_partitions=[], consumer_lag=None,
                             seconds_since_fetch=None)


def kafka_status(app: Any, input_topic: str, now: float | None = None) -> KafkaStatus:
    """Read the status of ``app``'s consumer (a started Faust app); never raises.

    Before the consumer has started (or if Faust's internals change shape) the answer is
    "not connected, nothing assigned".
    """
    client = _aiokafka_consumer(app)
    if client is None:  # not started yet: report that, do not fail /health
        return UNKNOWN
    consumer = app.consumer
    now = time.time() if now is None else now
    try:
        connected = any(c.connected() for c in client._client._conns.values())
        assigned = sorted((tp for tp in client.assignment() if tp.topic == input_topic),
                          key=lambda tp: tp.partition)
        lag, last_fetch = 0, None
        for tp in assigned:
            high = client.highwater(tp)
            read = consumer._read_offset.get(tp)
            if high is not None and read is not None:
                lag += max(0, high - (read + 1))
            polled = client.last_poll_timestamp(tp)
            if polled:
                last_fetch = max(last_fetch or 0.0, polled / 1000.0)
    except Exception:  # noqa: BLE001 - a rebalance mid-read: report what is safe
        return UNKNOWN
    since = None if last_fetch is None else max(0.0, now - last_fetch)
    status = KafkaStatus(connected, [tp.partition for tp in assigned], lag, since,
                         _coordination_failed(client))
    return status if status.healthy else replace(status, consumer_lag=None)


def _aiokafka_consumer(app: Any) -> Any | None:
    """The aiokafka consumer behind ``app``'s Faust consumer; None before it has started
    (or if Faust's internals change shape)."""
    try:
        return app.consumer._thread._ensure_consumer()
    except Exception:  # noqa: BLE001 - not started yet: unknown
        return None


def coordination_failed(app: Any) -> str | None:
    """:attr:`KafkaStatus.coordination_failed` alone (what :class:`~.shutdown.GroupWatch`
    polls every second, without the lag and fetch times)."""
    client = _aiokafka_consumer(app)
    return None if client is None else _coordination_failed(client)


def _coordination_failed(client: Any) -> str | None:
    """The error that ended the aiokafka consumer's group coordination task, or None.

    aiokafka never restarts that task: after an unexpected error in it (Faust's assignor
    failing an assertion, as when two workers share a group instance id) the consumer stays
    up without a group, fetching nothing, forever.
    """
    task = getattr(getattr(client, "_coordinator", None), "_coordination_task", None)
    if task is None or not task.done() or task.cancelled():
        return None
    error = task.exception()
    if error is None:
        return None
    cause = error.__cause__ or error
    return f"{type(cause).__name__}: {cause}".rstrip(": ")


def topic_partitions(app: Any, topic: str) -> int | None:
    """How many partitions ``topic`` has in the consumer's cluster metadata (no request to
    the broker); None before the consumer has started or while the topic is unknown."""
    client = _aiokafka_consumer(app)
    try:
        found = None if client is None else client._client.cluster.partitions_for_topic(topic)
    except Exception:  # noqa: BLE001 - metadata mid-update: unknown
        return None
    return len(found) if found else None


def group_membership(app: Any) -> tuple[int, str] | None:
    """The consumer's ``(generation, member id)`` in its group, as aiokafka holds them
    (reset when a heartbeat finds the member evicted); None before the consumer starts."""
    coordinator = getattr(_aiokafka_consumer(app), "_coordinator", None)
    if coordinator is None:  # not started yet: unknown
        return None
    return (int(coordinator.generation), str(coordinator.member_id))
