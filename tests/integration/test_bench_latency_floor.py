"""The latency benchmark's transport floor on the real broker: the probe child reads every
paced message and reports its produce-to-consume latency."""

from __future__ import annotations

from pathlib import Path

from benchmarks.latency import transport_floor
from benchmarks.worker_e2e import floor_line
from stream_detector.services.process import ServiceHandle


def test_the_probe_reads_every_paced_message_and_times_it(
    kafka_broker: ServiceHandle, tmp_path: Path
) -> None:
    got = transport_floor(kafka_broker.url, tmp_path, rate=500.0, per=1, seconds=1.0)
    assert got["messages"] == got["received"] == 500
    lat = got["latency_ms"]
    assert 0.0 <= lat["p50"] <= lat["p99"] <= lat["max"] < 10_000.0  # ms, one clock
    assert got["rate_achieved"] < 600.0  # paced (with its connection and flush), not a burst
    line = floor_line(got, [{"rate_target": 500.0, "per_message": 1,
                              "latency_ms": {"p50": 20.0, "p99": 80.0}}])
    assert "500 of 500 messages" in line and "the worker's: p50 20, p99 80" in line
