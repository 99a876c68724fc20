"""The alerts consumer: anomaly events from Kafka to a sink, at least once.

The loop reads the anomaly topic in its own consumer group with auto-commit off and commits
a message's offset only after every post it caused has been delivered; a crash or a failed
delivery means the message is read again (so a post can repeat, never go missing). Grouping
into incidents is :class:`~stream_detector.alerts.incidents.IncidentTracker`'s job, the words
are :func:`~stream_detector.alerts.formats.render`'s, delivery is the sink's
(:mod:`stream_detector.alerts.sinks`); this module only runs the loop. Open incidents are
saved (:func:`~stream_detector.alerts.store.persist`) after a message's posts and before its
offset is committed, so a restarted consumer resumes them instead of paging again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from stream_detector.alerts.formats import Payload, render
from stream_detector.alerts.incidents import IncidentTracker, Notice, parse_event
from stream_detector.alerts.store import IncidentStore, persist
from stream_detector.consumer_idle import PARTITION_EOF, ReadToEnd
from stream_detector.exceptions import InvalidRecord
from stream_detector.logs import printable

__all__ = [
    "AlertOptions",
    "AlertStats",
    "ConsumerLike",
    "consumer_config",
    "run_alerts",
]

_SHOWN_SKIPS = 3  # messages that are not anomaly events shown one by one; then counted



@dataclass(frozen=True)
class AlertOptions:
    """How long to run, how often to look for quiet incidents, and whether to commit (a
    dry run reads from the group's committed offsets without moving them)."""

    topic: str
    max_seconds: float | None = None
    exit_when_idle: float | None = None
    tick: float = 1.0
    commit: bool = True


@dataclass
class AlertStats:
    """What one run did: messages read, invalid ones skipped, notices posted."""

    messages: int = 0
    invalid: int = 0
    opened: int = 0
    resolved: int = 0


class _Message(Protocol):
    def value(self) -> bytes | None: ...
    def error(self) -> Any: ...
    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...


class ConsumerLike(Protocol):
    """What the loop needs of a ``confluent_kafka.Consumer`` (tests pass fakes)."""

    def poll(self, timeout: float) -> Any: ...
    def commit(self, *, message: Any, asynchronous: Literal[False]) -> Any: ...


def consumer_config(base: dict[str, Any], group: str, from_beginning: bool) -> dict[str, Any]:
    """Consumer settings: own group, manual commits, where a new group starts."""
    return {**base, "group.id": group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            "enable.partition.eof": True}  # for ReadToEnd (exit when idle)


def _post(notices: list[Notice], suppress: float, send: Callable[[Payload], None],
          stats: AlertStats, log: Callable[[str], None]) -> None:
    for notice in notices:
        send(render(notice, suppress))
        incident = notice.incident
        if notice.kind == "opened":
            stats.opened += 1
            log(f"sent: incident opened for {printable(incident.key)} "
                f"({printable(incident.first.event_id)})")
        else:  # "sent", not "posted": a --dry-run sink prints and posts nothing
            stats.resolved += 1
            plural = "anomaly" if incident.count == 1 else "anomalies"
            log(f"sent: incident of {printable(incident.key)} resolved after {incident.count} "
                f"{plural}")


def _handle(msg: _Message, tracker: IncidentTracker, send: Callable[[Payload], None],
            stats: AlertStats, log: Callable[[str], None]) -> None:
    stats.messages += 1
    try:
        event = parse_event(msg.value())
    except InvalidRecord as exc:
        stats.invalid += 1
        n = stats.invalid
        if n <= _SHOWN_SKIPS:
            log(f"skipped {msg.topic()}[{msg.partition()}]@{msg.offset()}: {exc}")
            if n == _SHOWN_SKIPS and stats.messages == n:  # a records topic: 28,126 lines
                log(f"{msg.topic()} does not hold anomaly events (a records topic? alerts "
                    "reads the worker's --output); further skipped messages are counted, "
                    "with a line at every power of ten")
        elif str(n).rstrip("0") == "1":  # 10, 100, 1,000 ...
            log(f"skipped {n:,} messages that are not anomaly events so far (the newest: "
                f"{msg.topic()}[{msg.partition()}]@{msg.offset()}: {exc})")
        return
    _post(tracker.observe(event), tracker.suppress, send, stats, log)


def run_alerts(
    consumer: ConsumerLike, tracker: IncidentTracker, send: Callable[[Payload], None],
    opts: AlertOptions, log: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic, store: IncidentStore | None = None,
    wall: Callable[[], float] = time.time, idle: ReadToEnd | None = None,
) -> AlertStats:
    """Consume until ``max_seconds`` pass or, with ``exit_when_idle``, until no message has
    arrived for that many seconds (incidents still open stay open: with a store they resume
    in the next run). The caller subscribes and closes.

    Parameters
    ----------
    send
        The sink (:class:`~stream_detector.alerts.sinks.base.Sink`): delivers one payload.
    clock
        Monotonic seconds; must be the tracker's.
    store
        Where incidents changed by a message go before its offset is committed.
    wall
        Wall-clock epoch seconds, saved with incident states.
    idle
        Counts ``exit_when_idle`` from the end of what the topic held (its ``assigned``
        given to the subscription, ``enable.partition.eof`` set); None: from the start.

    Raises
    ------
    SinkError
        ``send`` failed: the message that caused the post is left uncommitted.
    """
    stats = AlertStats()
    start = last_message = next_tick = clock()
    while True:
        now = clock()
        if opts.max_seconds is not None and now - start >= opts.max_seconds:
            break
        if opts.exit_when_idle is not None and (
                idle.over(now, opts.exit_when_idle) if idle is not None
                else now - last_message >= opts.exit_when_idle):
            break
        msg = consumer.poll(opts.tick)
        if msg is not None:
            error = msg.error()
            if error is None:
                last_message = clock()
                if idle is not None:
                    idle.message(msg.partition() or 0, last_message)
                _handle(msg, tracker, send, stats, log)
                persist(tracker, store, wall(), log)
                if opts.commit:
                    consumer.commit(message=msg, asynchronous=False)
            elif idle is not None and idle.error(error.code(), msg.partition() or 0):
                pass  # a partition's end, or no such topic: what exit_when_idle waits for
            elif error.code() != PARTITION_EOF:
                log(f"kafka: {error.str()}")
        if clock() >= next_tick:
            _post(tracker.tick(), tracker.suppress, send, stats, log)
            persist(tracker, store, wall(), log)
            next_tick = clock() + opts.tick
    return stats
