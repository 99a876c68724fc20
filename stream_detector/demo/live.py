"""The moving parts of ``stream-detector demo``: the worker process, the producer clock,
the anomaly collector and the live terminal view.

Latency is measured between two Kafka timestamps taken by clients on this machine: the
replay's own produce time of a record (from its delivery report, keyed by partition and
offset) and the worker's produce time of the anomaly event whose ``source`` names that
record. Both are CreateTime stamps in milliseconds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from schemas.events import AnomalyEvent
from stream_detector.exceptions import ServiceStartError
from stream_detector.services.process import die_with_parent, free_port
from stream_detector.worker.console import when

__all__ = ["Collector", "EventLines", "TimedProducer", "WorkerProcess", "event_line",
           "events_table", "live_display", "live_view", "start_worker"]

_QUIET = logging.getLogger("stream_detector.demo.kafka")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False
_RECORDS_IN = re.compile(r"^stream_detector_records_in_total\{[^}]*\} ([0-9.e+]+)$", re.M)


@dataclass
class WorkerProcess:
    """A worker subprocess with its own web port; it dies with this process."""

    proc: subprocess.Popen[bytes]
    web: str
    log: Path

    def records_in(self) -> int:
        """Records the worker has consumed so far (from its ``/metrics``)."""
        try:
            with urllib.request.urlopen(self.web + "/metrics", timeout=2) as r:  # noqa: S310
                text = r.read().decode()
        except (OSError, urllib.error.URLError):
            return 0
        return int(sum(float(v) for v in _RECORDS_IN.findall(text)))

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until ``/ready`` answers 200; raise with the log's tail if it dies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise ServiceStartError(f"the worker exited ({self.proc.returncode}):\n{tail}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                with urllib.request.urlopen(self.web + "/ready", timeout=2) as r:  # noqa: S310
                    if r.status == 200:
                        return
            time.sleep(0.3)
        raise ServiceStartError(f"the worker was not ready after {timeout:.0f} s; see {self.log}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; always reaps the child."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def start_worker(
    model: Path, topics: dict[str, str], env: dict[str, str], log: Path
) -> Iterator[WorkerProcess]:
    """``python -m stream_detector worker`` on the demo's topics, stopped on the way out.

    It runs in its own session (Ctrl-C reaches only the demo, which stops it in order) and
    receives SIGTERM if the demo dies without cleaning up.
    """
    port = free_port()
    args = [sys.executable, "-m", "stream_detector", "worker", "--model", str(model),
            "--input", topics["input"], "--output", topics["output"],
            "--dead-letter", topics["dead"]]
    full_env = {**os.environ, **env, "STREAM_DETECTOR_WEB_PORT": str(port)}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            args, env=full_env, stdout=sink, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent,
        )
    worker = WorkerProcess(proc, f"http://127.0.0.1:{port}", log)
    try:
        yield worker
    finally:
        worker.stop()


class TimedProducer:
    """A confluent-kafka producer that remembers each message's produce time.

    ``times[(partition, offset)]`` is the CreateTime (ms) from the delivery report.
    """

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        self.times: dict[tuple[int, int], int] = {}

    def produce(
        self, topic: str, *, value: bytes, key: bytes, on_delivery: Callable[[Any, Any], None]
    ) -> None:
        def report(err: Any, msg: Any) -> None:
            if err is None:
                self.times[(msg.partition(), msg.offset())] = msg.timestamp()[1]
            on_delivery(err, msg)

        self.producer.produce(topic, value=value, key=key, on_delivery=report)

    def poll(self, timeout: float) -> int:
        return int(self.producer.poll(timeout))

    def flush(self, timeout: float) -> int:
        return int(self.producer.flush(timeout))


@dataclass
class Received:
    """One anomaly event read back from the output topic, with its produce time (ms)."""

    event: AnomalyEvent
    produced_ms: int


@dataclass
class Collector:
    """Reads the anomalies topic on a thread of its own until stopped."""

    config: dict[str, Any]
    topic: str
    received: list[Received] = field(default_factory=list)
    stop_flag: threading.Event = field(default_factory=threading.Event)
    error: str | None = None

    def run(self) -> None:
        from confluent_kafka import Consumer

        consumer = Consumer({**self.config, "logger": _QUIET})
        consumer.subscribe([self.topic])
        try:
            while not self.stop_flag.is_set():
                msg = consumer.poll(0.2)
                if msg is None:
                    continue
                error, value = msg.error(), msg.value()
                if error is not None or value is None:
                    self.error = error.str() if error is not None else "empty message"
                    continue
                event = AnomalyEvent.model_validate_json(value)
                self.received.append(Received(event, msg.timestamp()[1]))
        finally:
            consumer.close()

    @contextlib.contextmanager
    def running(self) -> Iterator[Collector]:
        thread = threading.Thread(target=self.run, name="demo-collector", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.stop_flag.set()
            thread.join(timeout=10)

    def latency_ms(self, times: dict[tuple[int, int], int]) -> list[float]:
        """Per event: its produce time minus its source record's produce time."""
        out = []
        for r in self.received:
            src = r.event.source
            sent = times.get((src.partition or 0, src.offset or -1))
            if sent is not None:
                out.append(float(r.produced_ms - sent))
        return out


def _contributors(event: AnomalyEvent) -> str:
    """``value t-0 3.19, value t-1 0.38``: feature, steps before the window end, error."""
    return ", ".join(f"{c.name} t-{c.time_offset} {c.error:.3g}"
                     for c in event.top_contributors[:3])


def event_line(event: AnomalyEvent) -> str:
    """One anomaly as one plain line (for ``--no-live`` and logs)."""
    return (f"anomaly {event.key} at {when(event)}: score {event.score:.2f} "
            f"(threshold {event.threshold:.2f}), severity {event.severity:.0f}, "
            f"top {_contributors(event)}")


@dataclass
class EventLines:
    """Prints events not shown yet, one line each (the plain alternative to the table)."""

    received: list[Received]
    say: Callable[[str], None]
    shown: int = 0

    def __call__(self, _records: int = 0) -> None:
        new = self.received[self.shown:]
        self.shown += len(new)
        for r in new:
            self.say(event_line(r.event))


def events_table(received: list[Received], rows: int = 10) -> Table:
    """The newest ``rows`` anomaly events, newest first: one terminal line each, even at
    80 columns (long keys and contributors are cut with an ellipsis, never wrapped)."""
    table = Table(title=f"latest anomalies ({len(received)} so far)", expand=True,
                  title_justify="left", padding=(0, 1), box=None, header_style="bold")
    table.add_column("key", overflow="ellipsis", no_wrap=True, max_width=20)
    table.add_column("window end", no_wrap=True)
    for name in ("score", "thr", "sev"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("top contributor", overflow="ellipsis", no_wrap=True, ratio=1)
    for r in reversed(received[-rows:]):
        e = r.event
        style = "bold red" if e.severity >= 50 else "yellow"
        top = max(e.top_contributors, key=lambda c: c.error, default=None)
        table.add_row(escape(e.key), when(e).replace("T", " "), f"{e.score:.2f}",
                      f"{e.threshold:.2f}", f"[{style}]{e.severity:.0f}[/]",
                      escape(f"{top.name} t-{top.time_offset}") if top else "")
    return table


def live_view(progress: RenderableType, received: list[Received]) -> Group:
    """Progress bar above the events table."""
    return Group(progress, events_table(received))


@contextlib.contextmanager
def live_display(renderable: RenderableType, console: Console) -> Iterator[Live]:
    """A rich ``Live`` view that ends its last line on any console: rich adds the newline
    on terminals only, so in a log (``make demo > log``) the next line joined the table's."""
    with Live(renderable, console=console, refresh_per_second=4) as view:
        yield view
    if not console.is_terminal:
        console.line()
