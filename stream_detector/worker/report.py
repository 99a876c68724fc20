"""The worker's console: a line per anomaly, a periodic summary, threshold changes.

Wiring between the Faust app and the pure text of :mod:`stream_detector.worker.console`:
:meth:`ConsoleReporter.on_batch` runs once per scored batch (a few integer additions, plus
one log call per anomaly, capped per second), :meth:`ConsoleReporter.summary` on a timer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from schemas.events import AnomalyEvent
from stream_detector.worker.console import (
    AnomalyLines,
    SummaryCounter,
    anomaly_line,
    threshold_source,
)
from stream_detector.worker.kafka_health import KafkaStatus

__all__ = ["CONSOLE_LOGGER", "ConsoleReporter"]

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

    def summary(self, kafka: KafkaStatus, caches: Sequence[Any],
                dead: Mapping[str, int] | None = None) -> str:
        """Log and return the periodic line (rates since the last one); the consumer lag
        and Kafka's reachability come from ``kafka`` (the same view as ``/health``);
        ``dead``: the records dead-lettered so far by reason (the period's are shown)."""
        unrouted = (dead or {}).get("unrouted", 0) - self.counter.dead.get("unrouted", 0)
        sources = "; ".join(
            (f"{c.card.name}: " if len(caches) > 1 else "")
            + threshold_source(len(c.entries), c.age_seconds, c.degraded) for c in caches)
        line = self.counter.line(self._clock(), kafka.consumer_lag, sources or "none",
                                 self.lines.take_suppressed(), kafka_reachable=kafka.connected,
                                 dead=dead)
        log.info(line)
        if unrouted > 0:  # events go missing for those keys: an INFO count was all there was
            log.warning("%s record(s) of this period were dead-lettered as unrouted: no "
                        "model this worker loaded serves their keys. Workers of one group "
                        "must load the same models (--model); or train one that serves "
                        "these keys", f"{unrouted:,}")
        return line
