"""`stream-detector alerts` against the real broker and a local webhook (http.server)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from typer.testing import CliRunner
from worker_harness import bootstrap, produce

from schemas.events import (
    AnomalyEvent,
    Contributor,
    ModelRef,
    SourceRef,
    ThresholdSource,
    event_id_for,
)
from stream_detector.cli.main import app
from stream_detector.services.process import ServiceHandle

runner = CliRunner()
# a Slack-like path: the secret part of a webhook URL, never to be printed
HOOK_PATH = "/services/T000/B000/s3cr3tT0ken"


@dataclass
class Hook:
    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200


@pytest.fixture()
def hook() -> Iterator[Hook]:
    """A webhook on 127.0.0.1 that records every POST body and answers ``hook.status``."""
    state = Hook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == HOOK_PATH and state.status == 200:
                state.posts.append(json.loads(body))
            self.send_response(state.status if self.path == HOOK_PATH else 404)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}{HOOK_PATH}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture()
def topic(kafka_broker: ServiceHandle) -> str:
    name = f"alerts-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap(kafka_broker)})
    for future in admin.create_topics([NewTopic(name, 2, 1)]).values():
        future.result(timeout=30)
    return name


def event(key: str, end: str, severity: float = 30.0) -> bytes:
    return AnomalyEvent(
        event_id=event_id_for("nab", "3", key, end), key=key, record_kind="series",
        window_start="2015-02-26T20:00:00", window_end=end,
        detected_at="2026-01-01T00:00:00.000Z", score=0.8, threshold=0.5,
        threshold_source=ThresholdSource(method="percentile", version="3", scope="default"),
        severity=severity, p_value=0.004, observed=[104.0],
        top_contributors=[Contributor(name="value", index=0, time_offset=0, error=0.3)],
        model=ModelRef(name="nab", version="3", onnx_sha256="b" * 64, family="dense"),
        provider="CPUExecutionProvider", source=SourceRef(topic="records", partition=0, offset=1),
    ).model_dump_json().encode()


@pytest.fixture()
def alerts(kafka_broker: ServiceHandle, redis_server: ServiceHandle, hook: Hook) -> Any:
    """Run `stream-detector alerts` on a topic and group (incident state in the test Redis)."""

    def run(topic: str, group: str, *extra: str, suppress: str = "300") -> Any:
        # the URL comes from the setting, as the README tells users (a flag shows in `ps`)
        return runner.invoke(app, [
            "alerts", "--topic", topic, "--group", group, "--kafka", kafka_broker.url,
            "--redis", redis_server.url, "--from-beginning", "--suppress", suppress,
            "--exit-when-idle", "6", "--max-seconds", "60", *extra],
            env={"STREAM_DETECTOR_ALERT_WEBHOOK_URL": hook.url})

    return run


def test_one_post_per_incident_then_resolutions_and_offsets_committed(
    kafka_broker: ServiceHandle, hook: Hook, topic: str, alerts: Any,
) -> None:
    a1, a2, a3 = (event("AAPL", f"2015-02-26T21:0{i}:00") for i in range(3))
    # keyed like the worker's output: one key's events stay in order on one partition
    produce(kafka_broker, topic, [
        (b"AAPL", a1), (b"AAPL", a2), (b"AAPL", a1), (None, b"{not json"), (b"AAPL", a3),
        (b"GOOG", event("GOOG", "2015-02-26T21:00:00")),
        # below --min-severity: no incident, but event time moves on to 21:30, so AAPL's and
        # GOOG's incidents (quiet for --suppress 300 s of event time) resolve
        (b"IBM", event("IBM", "2015-02-26T21:30:00", severity=1.0)),
    ])
    group = f"alerts-{uuid.uuid4().hex[:8]}"

    result = alerts(topic, group, "--min-severity", "10")

    assert result.exit_code == 0, result.output
    opened = [p for p in hook.posts if not p["text"].startswith("resolved")]
    resolved = sorted(p["text"] for p in hook.posts if p["text"].startswith("resolved"))
    assert sorted(p["blocks"][0]["text"]["text"] for p in opened) == [
        "Anomaly: AAPL", "Anomaly: GOOG"]
    assert resolved == [
        "resolved: 1 anomaly between 2015-02-26T21:00:00 and 2015-02-26T21:00:00 on GOOG",
        "resolved: 3 anomalies between 2015-02-26T21:00:00 and 2015-02-26T21:02:00 on AAPL",
    ]
    assert len(hook.posts) == 4
    assert "skipped" in result.output and "1 invalid, 1 duplicates" in result.output
    assert "s3cr3t" not in result.output and "/services" not in result.output

    # everything delivered was committed: the same group has nothing left to send
    hook.posts.clear()
    again = alerts(topic, group, "--exit-when-idle", "4")
    assert again.exit_code == 0, again.output
    assert hook.posts == []


def test_4xx_stops_with_one_line_error_and_no_secret(
    kafka_broker: ServiceHandle, hook: Hook, topic: str, alerts: Any,
) -> None:
    produce(kafka_broker, topic, [(b"AAPL", event("AAPL", "2015-02-26T21:00:00"))])
    hook.status = 403

    result = alerts(topic, f"alerts-{uuid.uuid4().hex[:8]}")

    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "HTTP 403" in errors[0]
    assert "s3cr3t" not in result.output and "/services" not in result.output


def test_a_restarted_consumer_resumes_the_open_incident_instead_of_paging_again(
    kafka_broker: ServiceHandle, hook: Hook, topic: str, alerts: Any,
) -> None:
    group = f"alerts-{uuid.uuid4().hex[:8]}"
    produce(kafka_broker, topic, [(b"AAPL", event("AAPL", "2015-02-26T21:00:00"))])
    # the first run stops (a deploy) while the incident is still open
    first = alerts(topic, group, "--max-seconds", "8")
    assert first.exit_code == 0, first.output
    assert [p["text"][:16] for p in hook.posts] == ["Anomaly on AAPL:"]
    assert "1 still open" in first.output

    hook.posts.clear()
    produce(kafka_broker, topic, [(b"AAPL", event("AAPL", "2015-02-26T21:01:00"))])
    produce(kafka_broker, topic, [(b"AAPL", event("AAPL", "2015-02-26T21:30:00"))])
    second = alerts(topic, group)
    assert second.exit_code == 0, second.output
    assert "resumed 1 open incident" in second.output
    # no second page for 21:01 (within 300 s of the resumed 21:00); 21:30 is a new incident
    assert [p["text"][:24] for p in hook.posts] == [
        "resolved: 2 anomalies be", "Anomaly on AAPL: score 0"]
    assert hook.posts[0]["text"] == (
        "resolved: 2 anomalies between 2015-02-26T21:00:00 and 2015-02-26T21:01:00 on AAPL")


def test_redis_down_is_one_clear_line_and_no_state_runs_without_it(
    kafka_broker: ServiceHandle, hook: Hook, topic: str,
) -> None:
    args = ["alerts", "--topic", topic, "--kafka", kafka_broker.url, "--max-seconds", "1",
            "--redis", "redis://127.0.0.1:1/0", "--dry-run"]
    down = runner.invoke(app, args)
    assert down.exit_code == 1 and "--no-state" in down.output
    assert runner.invoke(app, [*args, "--no-state"]).exit_code == 0


def test_a_dry_run_moves_neither_offsets_nor_incidents_so_the_real_run_pages_all(
    kafka_broker: ServiceHandle, hook: Hook, topic: str, alerts: Any,
) -> None:
    """The Tour previews with --dry-run, then runs for real in the same (default) group."""
    group = f"alerts-{uuid.uuid4().hex[:8]}"
    produce(kafka_broker, topic, [(b"AAPL", event("AAPL", "2015-02-26T21:00:00")),
                                  (b"GOOG", event("GOOG", "2015-02-26T21:00:00"))])
    for _ in range(2):  # a second preview starts where the first did
        preview = alerts(topic, group, "--dry-run", "--exit-when-idle", "4")
        assert preview.exit_code == 0, preview.output
        assert "dry run: the group's offsets and open incidents are read, never written" \
            in preview.output
        assert "2 incidents opened" in preview.output and hook.posts == []
        assert "resumed" not in preview.output  # the preview stored none for the real run

    real = alerts(topic, group, "--max-seconds", "8")
    assert real.exit_code == 0, real.output
    assert sorted(p["blocks"][0]["text"]["text"] for p in hook.posts) == [
        "Anomaly: AAPL", "Anomaly: GOOG"]


def test_a_topic_that_does_not_exist_is_said_at_the_start(
    kafka_broker: ServiceHandle, alerts: Any,
) -> None:
    """tail said so; alerts waited without a word (a mistyped --topic waits for ever)."""
    missing = f"no-such-{uuid.uuid4().hex[:8]}"
    result = alerts(missing, f"alerts-{uuid.uuid4().hex[:8]}", "--exit-when-idle", "2",
                    "--max-seconds", "10")
    assert result.exit_code == 0, result.output
    assert f"{missing} does not exist (yet): alerts waits for it" in result.output
