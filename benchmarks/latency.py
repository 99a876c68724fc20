"""Produce-to-event latency at paced rates with about 1% of windows alerting.

One worker serves a last-step model (score = the newest value's squared deviation from its
window's mean) with a fixed threshold, no normalisation and no suppression: it alerts on
exactly the spikes that :func:`~benchmarks.e2e_support.series_messages` puts in every
100th record of a key (1%). After a warm-up that fills every key's window, each phase
produces at a fixed rate for a few seconds; latency = the event message's Kafka timestamp
minus the input message's CreateTime (one clock), matched through the event's source
partition and offset. ``sustained`` is the rate the worker consumed at while the producer
ran (not after: a worker that falls behind and catches up later did not keep up); a phase
it cannot keep up with is reported with that rate (:func:`keeping_up`, :func:`limits`), and
when its backlog does not drain the faster phases after it are not run (they would only
measure the queue).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.bench_models import window_mean_model, write_registry_model
from benchmarks.e2e_support import (
    Child,
    child,
    create_topic,
    produce,
    series_messages,
    spikes,
    wait_for,
    worker,
)
from benchmarks.report import histogram_from_prometheus, percentiles

__all__ = ["keeping_up", "latency", "limits", "transport_floor"]

WINDOW = 24
KEYS = 100
SPIKE_EVERY = 100  # 1% of records, so 1% of windows, alert
ALERTS = {"normalise": False, "warmup": 0, "suppress": 1}
THRESHOLD = 10_000.0  # noise gives ~100-400; a spike of 200 gives ~38,000
DRAIN_S = 90.0
# librdkafka's default. With 1 ms, produce requests of ~4 messages at 5,000/s loaded the
# broker so that its acknowledgement alone took p99 0.6-1.2 s on 2 shared cores (5 ms:
# 0.07-0.23 s), all of it counted in the produce-to-event latency.
PRODUCER_LINGER_MS = 5
KEPT_UP = 0.95  # consumed while produced, of what was produced (see keeping_up)


def _records_in(w: Child) -> float:
    return w.metric("stream_detector_records_in_total")


def _drained(w: Child, total: int) -> bool:
    return _records_in(w) >= total


def latency(kafka_url: str, redis_url: str, tmp: Path,
            phases: tuple[tuple[float, int], ...], seconds: float,
            entry: tuple[str, ...]) -> list[dict[str, Any]]:
    """``phases``: (records/s, records per message), slowest first."""
    bootstrap = kafka_url.split("://", 1)[1]
    model = write_registry_model(tmp / "spike", window_mean_model(WINDOW, 1, last_k=1),
                                 name="spike", window=WINDOW, threshold=THRESHOLD,
                                 detection=ALERTS)
    topic = f"latency-{uuid.uuid4().hex[:6]}"
    create_topic(bootstrap, topic)
    out: list[dict[str, Any]] = []
    step, total = WINDOW - 1, 0
    with worker(kafka_url, redis_url, [model], tmp, topic, entry=entry) as w:
        total += produce(bootstrap, topic, series_messages(step * KEYS, KEYS))[0]
        wait_for(lambda: _records_in(w) >= step * KEYS, 60, "warm-up consumed", w.check)
        behind: str | None = None
        for rate, per in phases:
            if behind is not None:
                out.append({"rate_target": rate, "per_message": per,
                            "not_run": f"the worker could not drain after {behind}"})
                continue
            n = int(rate * seconds) // (KEYS * per) * KEYS * per
            phase = _phase(bootstrap, topic, w, rate, per, n, step, seconds)
            step += n // KEYS
            total += n
            out.append(phase)
            print(f"  {rate:,.0f}/s x{per}: {phase['events']}/{phase['events_expected']} "
                  f"events, p99 {phase['latency_ms']['p99']:,.1f} ms, sustained "
                  f"{phase['sustained_records_per_s']:,.0f}/s while produced"
                  f"{'' if phase['kept_up'] else ' (behind)'}", flush=True)
            if not phase["kept_up"]:  # let the backlog drain, or stop here
                try:
                    wait_for(functools.partial(_drained, w, total), DRAIN_S, "drain",
                             w.check, 0.5)
                except TimeoutError:
                    behind = f"{rate:,.0f} records/s ({per} a message)"
        text = w.get("/metrics")[1].decode()
    out[0]["batch_size_histogram"] = histogram_from_prometheus(
        text, "stream_detector_batch_size")
    return out


def transport_floor(kafka_url: str, tmp: Path, rate: float, per: int,
                    seconds: float) -> dict[str, Any]:
    """The latency of the producer and the broker alone at a phase's rate: the same paced
    messages to a topic of their own, read by :mod:`benchmarks.latency_probe` (a plain
    consumer that does nothing with them, in its own process) instead of a worker: on a
    host whose cores the broker and the producer share with the worker, their share of a
    worker's produce-to-event latency. Raises ``TimeoutError``
    when the probe gets no assignment or no result in time."""
    bootstrap = kafka_url.split("://", 1)[1]
    topic = f"floor-{uuid.uuid4().hex[:6]}"
    create_topic(bootstrap, topic)
    n = int(rate * seconds) // (KEYS * per) * KEYS * per
    messages = list(series_messages(n, KEYS, per, spike_every=SPIKE_EVERY))
    out = tmp / f"{topic}.json"
    ready = out.with_name(out.name + ".ready")
    args = [sys.executable, "-m", "benchmarks.latency_probe", bootstrap, topic,
            str(len(messages)), str(out)]
    with child(args, dict(os.environ), tmp / f"{topic}.log") as probe:
        wait_for(ready.exists, 60, "latency probe's assignment", probe.check, 0.05)
        sent, took = produce(bootstrap, topic, messages, rate=rate / per,
                             linger_ms=PRODUCER_LINGER_MS)
        wait_for(out.exists, 60, "latency probe's result",
                 lambda: out.exists() or probe.check(), 0.1)  # its exit once done is fine
    lat = [float(v) for v in json.loads(out.read_text())]
    return {"rate_target": rate, "per_message": per, "rate_achieved": sent * per / took,
            "messages": sent, "received": len(lat),
            "latency_ms": {**percentiles(lat, (50, 90, 99)), "max": max(lat, default=0.0)}}


def _phase(bootstrap: str, topic: str, w: Child, rate: float, per: int, n: int, step: int,
           seconds: float) -> dict[str, Any]:
    sent_at: dict[tuple[int, int], int] = {}

    def delivered(err: Any, msg: Any) -> None:
        if err is None:
            sent_at[(msg.partition(), msg.offset())] = msg.timestamp()[1]

    # built before the clock starts: the producer does nothing but send while it is timed
    messages = list(series_messages(n, KEYS, per, first_step=step, spike_every=SPIKE_EVERY))
    before = _records_in(w)
    sent, took = produce(bootstrap, topic, messages, rate=rate / per, on_delivery=delivered,
                         linger_ms=PRODUCER_LINGER_MS)
    consumed = _records_in(w) - before  # while the producer ran, not after the wait below
    expected = spikes(n, KEYS, step, SPIKE_EVERY)
    events = _read_events(bootstrap, f"{topic}-out", sent_at, expected, timeout=seconds + 10)
    lat = [float(ts - sent_at[where]) for where, ts in events]
    return {"rate_target": rate, "per_message": per, "rate_achieved": sent * per / took,
            "records": sent * per, "events_expected": expected, "events": len(events),
            **keeping_up(sent * per, took, consumed, len(events) == expected),
            "latency_ms": {**percentiles(lat, (50, 90, 99)), "max": max(lat, default=0.0)}}


def keeping_up(records: int, seconds: float, consumed: float, all_events: bool,
               ) -> dict[str, Any]:
    """Whether the worker kept up with a phase's producer, from what it had consumed when
    the producer finished.

    ``sustained_records_per_s`` is the worker's rate while the producer ran (records
    consumed then / producing seconds); ``backlog_records`` what was produced but not yet
    consumed when it finished. Kept up: every event came, and the worker consumed at least
    :data:`KEPT_UP` of what was produced while it was produced (the rest are the records
    of the last fetch and batch, still on their way).

    >>> keeping_up(20_000, 4.0, 19_800.0, True)["kept_up"]
    True
    >>> got = keeping_up(20_000, 4.0, 10_000.0, True)
    >>> got["kept_up"], got["sustained_records_per_s"], got["backlog_records"]
    (False, 2500.0, 10000.0)
    """
    return {"kept_up": all_events and consumed >= KEPT_UP * records,
            "sustained_records_per_s": consumed / seconds,
            "backlog_records": max(0.0, records - consumed)}


def limits(phases: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per records-a-message: the fastest rate run that the worker kept up with, the
    slowest it fell behind at, and the most it sustained (records/s).

    >>> limits([{"per_message": 10, "rate_target": 5e3, "kept_up": True,
    ...          "sustained_records_per_s": 4.9e3},
    ...         {"per_message": 10, "rate_target": 2e4, "kept_up": False,
    ...          "sustained_records_per_s": 1.2e4}])
    {10: {'kept_up_at': 5000.0, 'falls_behind_at': 20000.0, 'max_sustained': 12000.0}}
    """
    out: dict[int, dict[str, Any]] = {}
    for p in phases:
        if "kept_up" not in p:
            continue
        got = out.setdefault(p["per_message"], {"kept_up_at": None, "falls_behind_at": None,
                                                "max_sustained": 0.0})
        rate = p["rate_target"]
        if p["kept_up"]:
            got["kept_up_at"] = max(rate, got["kept_up_at"] or rate)
        else:
            got["falls_behind_at"] = min(rate, got["falls_behind_at"] or rate)
        got["max_sustained"] = max(got["max_sustained"], p["sustained_records_per_s"])
    return out


def _read_events(bootstrap: str, topic: str, sent_at: dict[tuple[int, int], int],
                 expected: int, timeout: float) -> list[tuple[tuple[int, int], int]]:
    """((source partition, offset), event timestamp ms) of the events of records in
    ``sent_at``; stops at ``expected`` of them or after ``timeout`` seconds."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"b-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    out: list[tuple[tuple[int, int], int]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.2):
                if msg.error():
                    continue
                src = json.loads(msg.value() or b"{}")["source"]
                where = (src["partition"], src["offset"])
                if where in sent_at:
                    out.append((where, msg.timestamp()[1]))
    finally:
        consumer.close()
    return out
