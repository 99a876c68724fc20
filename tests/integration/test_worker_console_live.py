"""What a person running the worker sees: a line per anomaly, a periodic summary, a line
when thresholds change, `stream-detector tail`, and a web server bound where settings say."""

from __future__ import annotations

import json
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from model_fixtures import window_mean_model, write_registry_model
from test_worker import DETECTION, series_records
from typer.testing import CliRunner
from worker_harness import consume, produce, run_worker

from stream_detector.cli.main import app
from stream_detector.core.thresholds import ThresholdStore
from stream_detector.services.process import ServiceHandle


def wait_for(path: Path, text: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = path.read_text(errors="replace")
        if text in log:
            return log
        time.sleep(0.3)
    raise AssertionError(f"{text!r} not in the worker's log:\n{path.read_text()[-3000:]}")


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp{,6})."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                if len(address) == 8:
                    found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
                else:
                    found.add(address)
    return found


def test_the_worker_speaks_and_binds_loopback(
    kafka_broker: ServiceHandle, redis_server: ServiceHandle, redis_client: Any, tmp_path: Path
) -> None:
    model = write_registry_model(
        tmp_path / "registry" / "tiny" / "1", window_mean_model(8, 1, last_k=1),
        window=8, features=["value"], threshold=4.0, detection=DETECTION,
    )
    cpu = series_records("cpu", 160, {60: 40.0, 120: -40.0}, seed=1)
    env = {"STREAM_DETECTOR_SUMMARY_INTERVAL": "1", "STREAM_DETECTOR_WEB_HOST": "127.0.0.1"}
    with run_worker(kafka_broker, redis_server, [model.parent.parent], tmp_path,
                    extra_env=env) as worker:
        port = int(worker.web.rsplit(":", 1)[1])
        assert listening_addresses(port) == {"127.0.0.1"}  # not 0.0.0.0

        produce(kafka_broker, worker.topics["input"],
                [(b"cpu", json.dumps(r).encode()) for r in cpu])
        events = consume(kafka_broker, worker.topics["output"], 2, 60)
        log = wait_for(worker.log, "anomaly cpu @ ")
        ThresholdStore(redis_client).set("tiny", "1", "cpu", 9.5, set_by="alice")
        log = wait_for(worker.log, "thresholds of tiny v1 changed: cpu 4 -> 9.5 (manual by alice)")
        log = wait_for(worker.log, "windows/s")

        tail = CliRunner().invoke(app, ["tail", "--topic", worker.topics["output"],
                                        "--kafka", kafka_broker.url, "--from-beginning",
                                        "--exit-when-idle", "3"])
        # an idle time shorter than the first fetch: counted from the end of the topic
        quick = [CliRunner().invoke(app, ["tail", "--topic", worker.topics["output"],
                                          "--kafka", kafka_broker.url, "--from-beginning",
                                          "--exit-when-idle", "0.1"]) for _ in range(3)]
        tail_json = CliRunner().invoke(app, ["tail", "--topic", worker.topics["output"],
                                             "--kafka", kafka_broker.url, "--from-beginning",
                                             "--json", "--limit", "1"])

    first = events[0]
    line = next(x for x in log.splitlines() if f"anomaly cpu @ {first['window_end']}" in x)
    assert f"score {first['score']:.4g} > {first['threshold']:.4g}" in line
    assert f"observed {first['observed'][0]:.4g}" in line and "vs expected" in line
    assert "top value t-" in line and "tiny v1" in line
    summary = next(x for x in log.splitlines() if "windows/s" in x)
    assert "records/s" in summary and "consumer lag" in summary and "thresholds:" in summary
    assert tail.exit_code == 0, tail.output
    printed = [x[x.index("anomaly cpu @ "):].rstrip() for x in log.splitlines()
               if "anomaly cpu @ " in x]
    assert [x for x in tail.output.splitlines() if x.startswith("anomaly")] == printed
    assert tail_json.exit_code == 0 and json.loads(tail_json.output)["key"] == "cpu"
    for run in quick:  # it said "no anomaly events in ... from its start" 3 times of 4
        assert [x for x in run.output.splitlines() if x.startswith("anomaly")] == printed


def test_tail_of_a_topic_that_does_not_exist_says_so(kafka_broker: ServiceHandle) -> None:
    """A mistyped --topic printed nothing and exited 0: now one line says why."""
    result = CliRunner().invoke(app, ["tail", "--topic", "no-such-anomalies", "--kafka",
                                      kafka_broker.url, "--exit-when-idle", "1"])
    assert result.exit_code == 0, result.output
    assert "no anomaly events in no-such-anomalies since tail started (idle 1 s); " \
        "that topic does not exist: check --topic" in result.output


def test_tail_of_a_records_topic_says_so_once_instead_of_a_line_per_record(
    kafka_broker: ServiceHandle,
) -> None:
    """It printed one "skipped offset N" line per record (800 for a small replay)."""
    topic = f"records-{uuid.uuid4().hex[:8]}"
    produce(kafka_broker, topic, [(b"cpu", json.dumps({
        "kind": "series", "series": "cpu", "value": 1.0,
        "timestamp": f"2026-01-01T00:00:{i:02d}"}).encode()) for i in range(40)])
    result = CliRunner().invoke(app, ["tail", "--topic", topic, "--kafka", kafka_broker.url,
                                      "--from-beginning", "--exit-when-idle", "1"])
    lines = result.output.strip().splitlines()
    assert sum(line.startswith("skipped offset") for line in lines) == 3, result.output
    assert f"{topic} does not hold anomaly events (a records topic?" in result.output
    assert "skipped 40 messages that are not anomaly events" in result.output
    assert len(lines) <= 7, result.output
