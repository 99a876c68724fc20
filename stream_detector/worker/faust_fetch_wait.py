"""Start-up patch of Faust: the worker's fetch wait (Kafka's ``fetch.max.wait.ms``) from the
settings instead of the 1.5 s Faust fixes, its fetch size (``fetch.min.bytes``) from the
settings instead of aiokafka's 1 byte, and committed records only (``read_committed``).

Why it matters
--------------
A fetch request names every assigned partition that is fetchable, and the broker holds it
until one of them has new records or ``fetch_max_wait_ms`` passes. aiokafka's fetcher
(``Fetcher._get_actions_per_node``, aiokafka 0.14) leaves out of the request a partition
whose fetched records the worker has not taken yet, and sends nothing more to a broker
while a request to it is in flight. So when the worker reads several partitions (the
input topic's, the table's changelog) and one of them still has records buffered, the
request for the others can wait at the broker for the whole fetch wait, and records that
meanwhile arrive on the first partition are not fetched until it returns. Faust passes
``fetch_max_wait_ms=1500`` (``AIOKafkaConsumerThread._create_worker_consumer``, not a
setting), so the worker stalled for up to 1.5 s at rates it easily carried. Measured (4
input partitions, 300 records/s, one a message, a probe consumer reading the same topic
within 36-93 ms, p50-p99): produce-to-event p99 1,690-2,370 ms with 1,500 ms, 97-391 ms
with 20 ms (the rest: this loaded 2-core host's producer and broker, as the probe saw).

With records arriving, a request returns as soon as one partition has one, so a shorter
wait changes nothing under load; an idle worker sends a fetch request every wait: 11.1% of
a core with 20 ms against 4.9% with 1,500 ms (14.6% with 10 ms), same host.

Fetch size
----------
With ``fetch.min.bytes`` at 1 the broker answers a fetch as soon as one record is there. At
5,000 messages/s of one record each the worker fetched in a tight loop: each answer held a
few records, the broker spent most of a core on fetches and produce requests queued behind
them, and the agent got 5 to 10 messages every 7-8 ms while the records' age at the agent
grew by hundreds of ms (a per-batch log of one run). With 65,536 bytes (the default of
the ``fetch_min_bytes`` setting) the broker gathers records for up to the fetch wait.
Measured in five alternated pairs (own broker, warmed; one worker, 4 s at each rate, 1% of
windows alerting; 2 shared cores), produce-to-event p99 at 5,000 records/s: 89-199 ms
(median 133) with 1 byte, 61-101 ms (median 63) with 65,536; at 1,000 records/s the
median rose from 10-15 ms to 20-26 ms, the price of waiting up to 20 ms for a fuller fetch.

Committed records only
----------------------
Faust's consumer reads ``read_uncommitted`` unless its processing guarantee is exactly once,
so records of a transaction that its producer aborted were scored: a producer writing
with transactions got events for records that, for every other reader, never existed, and
``stream-detector score`` on the committed data gave other alerts. The patched consumer
reads ``read_committed`` (:data:`ISOLATION_LEVEL`; Kafka's default in the Java and
librdkafka clients): it reads up to the last stable offset, which without transactions is
the end of the partition.

What it does
------------
:func:`install` wraps ``AIOKafkaConsumerThread._create_worker_consumer``: the consumer
upstream builds gets ``fetch_max_wait_ms`` and ``fetch_min_bytes`` from :func:`install`'s
arguments, and ``isolation_level`` ``read_committed``, before it starts
(``AIOKafkaConsumer.start`` hands ``_fetch_max_wait_ms``, ``_fetch_min_bytes`` and
``_isolation_level`` to its ``Fetcher``).
:data:`UPSTREAM_SHA256` pins both functions; :func:`install` refuses (logs, leaves Faust as
it is) when one differs, and a unit test fails, so an upgrade is reviewed against this
module.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Final

from stream_detector.worker import upstream_pins

__all__ = ["ISOLATION_LEVEL", "UPSTREAM_SHA256", "install", "installed", "installed_min_bytes",
           "upstream_matches"]

log = logging.getLogger(__name__)

ISOLATION_LEVEL: Final = "read_committed"  # records of aborted transactions never scored
_CREATE: Final = "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._create_worker_consumer"
UPSTREAM_SHA256: Final = {
    _CREATE: "c2701bfc3e6f6cad95c2be36d6a255a86e2c57d18d36cc1082b5fb5c482d99d7",
    "aiokafka.consumer.consumer.AIOKafkaConsumer.start":
        "2f1ba70443327538800d348e61042cdedd5a5e6306f40ebe1a06dddba7494c45",
}
_state: dict[str, Any] = {}


def _upstream_sources() -> dict[str, str]:
    from aiokafka import AIOKafkaConsumer
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    create = _state.get("upstream", AIOKafkaConsumerThread._create_worker_consumer)
    return {_CREATE: inspect.getsource(create),
            "aiokafka.consumer.consumer.AIOKafkaConsumer.start":
            inspect.getsource(AIOKafkaConsumer.start)}


def upstream_matches() -> dict[str, bool]:
    """For each patched-against function, whether its source is the one reviewed."""
    return upstream_pins.matches(_upstream_sources(), UPSTREAM_SHA256)


def installed() -> float | None:
    """The fetch wait (seconds) :func:`install` set in this process; None before."""
    ms = _state.get("ms")
    return None if ms is None else ms / 1000.0


def installed_min_bytes() -> int | None:
    """The fetch size (bytes) :func:`install` set in this process; None before."""
    got = _state.get("min_bytes")
    return None if got is None else int(got)


def install(seconds: float, min_bytes: int = 1) -> bool:
    """Make the worker consumers Faust creates from now on ask the broker for at least
    ``min_bytes`` (>= 1) per fetch request, waiting at most ``seconds`` (> 0) for them; a
    second call changes the values. False, with a warning and nothing patched, when
    upstream changed. Raises ``ValueError`` for ``seconds`` <= 0 or ``min_bytes`` < 1."""
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    if not seconds > 0:
        raise ValueError(f"the fetch wait must be positive, got {seconds!r} s")
    if min_bytes < 1:
        raise ValueError(f"the fetch size must be at least 1 byte, got {min_bytes!r}")
    if "upstream" not in _state:
        found = upstream_matches()
        if upstream_pins.changed(found, found, patch="faust fetch wait",
                                 module="stream_detector/worker/faust_fetch_wait.py",
                                 consequence="the worker fetches with Faust's 1.5 s wait",
                                 logger=log):
            return False
        _state["upstream"] = upstream = AIOKafkaConsumerThread._create_worker_consumer

        def create(self: Any, transport: Any) -> Any:
            consumer = upstream(self, transport)
            consumer._fetch_max_wait_ms = _state["ms"]  # read by start(): see module doc
            consumer._fetch_min_bytes = _state["min_bytes"]
            consumer._isolation_level = ISOLATION_LEVEL
            return consumer

        AIOKafkaConsumerThread._create_worker_consumer = create  # type: ignore[method-assign]
    _state["ms"] = max(1, round(seconds * 1000))
    _state["min_bytes"] = int(min_bytes)
    return True
