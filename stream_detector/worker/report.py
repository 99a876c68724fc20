"""The worker's console: a line per anomaly, a periodic summary, threshold changes.

Wiring between the Faust app and the pure text of :mod:`stream_detector.worker.console`:
:meth:`ConsoleReporter.on_batch` runs once per scored batch (a few integer additions, plus
one log call per anomaly, capped per second), :meth:`ConsoleReporter.summary` on a timer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from schemas.events import AnomalyEvent
from stream_detector.worker.console import (
    AnomalyLines,
    SummaryCounter,
    anomaly_line,
    threshold_source,
)

__all__ = ["CONSOLE_LOGGER", "ConsoleReporter", "consumer_lag"]

CONSOLE_LOGGER = "stream_detector.console"
log = logging.getLogger(CONSOLE_LOGGER)


class ConsoleReporter:
    """Counts batches and writes the worker's console lines.

    Parameters
    ----------
    per_second
        Most anomaly lines per second; further anomalies are counted in the summary.
    clock
        Seconds (``time.monotonic``); injected for tests.
    """

    def __init__(self, per_second: int = 10,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.lines = AnomalyLines(per_second)
        self.counter = SummaryCounter(since=clock())

    def on_batch(self, records: int, windows: int, events: Sequence[AnomalyEvent]) -> None:
        """Count one batch; one line per anomaly event (within the per-second cap)."""
        self.counter.add(records, windows, len(events))
        if events and log.isEnabledFor(logging.INFO):
            now = self._clock()
            for event in events:
                if self.lines.admit(now):
                    log.info(anomaly_line(event), extra={"key": event.key,
                                                         "event_id": event.event_id})

    def summary(self, lag: int | None, caches: Sequence[Any]) -> str:
        """Log and return the periodic line (rates since the last one)."""
        sources = "; ".join(
            (f"{c.card.name}: " if len(caches) > 1 else "")
            + threshold_source(len(c.entries), c.age_seconds, c.degraded) for c in caches)
        line = self.counter.line(self._clock(), lag, sources or "none",
                                 self.lines.take_suppressed())
        log.info(line)
        return line


async def consumer_lag(consumer: Any, topic: str) -> int | None:
    """Messages of ``topic`` on this worker's partitions not yet read (highwater minus
    position, summed), or None while the consumer cannot tell (e.g. during a rebalance)."""
    try:
        total = 0
        for tp in consumer.assignment():
            if tp.topic != topic:
                continue
            position, high = await consumer.position(tp), consumer.highwater(tp)
            if position is None or high is None:
                return None
            total += max(0, int(high) - int(position))
        return total
    except Exception:  # noqa: BLE001 - a console figure must never stop the worker
        return None
