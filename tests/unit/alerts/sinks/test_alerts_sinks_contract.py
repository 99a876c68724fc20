"""One contract for every registered alert sink (as River's one test over all estimators).

Each sink in :data:`~stream_detector.alerts.sinks.registry.SINKS` needs a case here that
builds it against a real destination (a local HTTP server for the webhook, a list of lines
for the dry run) and can make that destination fail. The contract:

* built by name from a :class:`SinkConfig`, it is a :class:`Sink`;
* it delivers each rendered notice whole (the JSON that arrives equals the payload sent);
* its ``target`` and ``repr`` never show the secret part of the configured URL;
* when the destination fails it raises :class:`SinkError` (secret-free), and the consumer
  loop then leaves the message's offset uncommitted, so it is read again.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from alert_events import FakeClock, FakeConsumer, event

from stream_detector.alerts.consumer import AlertOptions, run_alerts
from stream_detector.alerts.formats import Payload, render
from stream_detector.alerts.incidents import IncidentTracker
from stream_detector.alerts.sinks.base import Sink, SinkConfig, SinkError
from stream_detector.alerts.sinks.registry import SINKS, build_sink
from stream_detector.exceptions import ConfigurationError

SECRET = "s3cr3tT0ken"  # noqa: S105 - a fake token the sinks must never show


@dataclass
class Case:
    """A sink's destination for the contract: what arrived there, and a switch to break it."""

    config: SinkConfig
    delivered: list[Payload] = field(default_factory=list)
    broken: list[bool] = field(default_factory=lambda: [False])

    def breaks(self) -> None:
        self.broken[0] = True


@contextlib.contextmanager
def webhook_case() -> Iterator[Case]:
    """A real HTTP server on 127.0.0.1: 200 and the body recorded, or 500 once broken."""
    case = Case(SinkConfig(None, print, timeout=5.0, retries=0))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = 500 if case.broken[0] else 200
            if status == 200:
                case.delivered.append(json.loads(body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    case.config = SinkConfig(f"http://127.0.0.1:{port}/services/T0/B0/{SECRET}", print,
                             timeout=5.0, retries=0)
    try:
        yield case
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def dry_run_case() -> Iterator[Case]:
    """Lines written to a list; a broken destination is a closed pipe."""
    case = Case(SinkConfig(f"https://hooks.example.com/services/T0/B0/{SECRET}", print))

    def write(line: str) -> None:
        if case.broken[0]:
            raise BrokenPipeError(32, "Broken pipe")
        case.delivered.append(json.loads(line))

    case.config = SinkConfig(case.config.url, write)
    yield case


CASES: dict[str, Callable[[], contextlib.AbstractContextManager[Case]]] = {
    "webhook": webhook_case,
    "dry-run": dry_run_case,
}


@pytest.fixture(params=sorted(SINKS))
def case(request: pytest.FixtureRequest) -> Iterator[tuple[str, Case]]:
    name: str = request.param
    if name not in CASES:
        pytest.fail(f"sink {name!r} is registered but has no contract case: add one to CASES")
    with CASES[name]() as built:
        yield name, built


def test_every_case_is_a_registered_sink() -> None:
    assert set(CASES) == set(SINKS)


def test_an_unknown_sink_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="choose one of webhook, dry-run"):
        build_sink("pager", SinkConfig(None, print))


def notices() -> list[Payload]:
    clock = FakeClock()
    tracker = IncidentTracker(60, 0, clock)
    opened = tracker.observe(event("<!channel> AAPL", "2015-02-26T21:00:00", p_value=0.01))
    clock.now += 60
    return [render(n, 60) for n in [*opened, *tracker.tick()]]


def test_delivers_every_payload_whole(case: tuple[str, Case]) -> None:
    name, dest = case
    sink = build_sink(name, dest.config)
    assert isinstance(sink, Sink)
    payloads = notices()
    for payload in payloads:
        sink(payload)
    assert len(payloads) == 2 and dest.delivered == payloads


def test_never_shows_the_secret(case: tuple[str, Case]) -> None:
    name, dest = case
    sink = build_sink(name, dest.config)
    assert sink.target and SECRET not in sink.target and SECRET not in repr(sink)


def test_a_failed_destination_raises_a_sink_error(case: tuple[str, Case]) -> None:
    name, dest = case
    sink = build_sink(name, dest.config)
    dest.breaks()
    with pytest.raises(SinkError) as caught:
        sink(notices()[0])
    assert dest.delivered == [] and SECRET not in str(caught.value)




@pytest.mark.parametrize("broken", [False, True], ids=["delivered", "failed"])
def test_the_offset_is_committed_only_after_delivery(case: tuple[str, Case],
                                                     broken: bool) -> None:
    name, dest = case
    sink = build_sink(name, dest.config)
    clock = FakeClock()
    consumer = FakeConsumer([event("AAPL", "2015-02-26T21:00:00").model_dump_json().encode()],
                            clock)
    if broken:
        dest.breaks()
    opts = AlertOptions("anomalies", max_seconds=3.0, tick=1.0)
    tracker = IncidentTracker(900, 0, clock)
    if broken:
        with pytest.raises(SinkError):
            run_alerts(consumer, tracker, sink, opts, print, clock=clock)
    else:
        run_alerts(consumer, tracker, sink, opts, print, clock=clock)
    assert consumer.committed == ([] if broken else [0])
    assert [p["text"][:16] for p in dest.delivered] == ([] if broken else ["Anomaly on AAPL:"])
