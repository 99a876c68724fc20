"""End to end through a real local Kafka broker and redis-server, ratios in the same run.

(a) bare-agent ceiling: a minimal Faust app that only counts events, consuming N
    pre-produced single-record messages (``take_events`` as the worker does, and a plain
    ``async for``); records/s from the first to the last event.
(b) the real worker (``python -m stream_detector worker``) on the same topic, records/s
    from its ``/metrics`` (``stream_detector_records_in_total``) and its ratio to (a); then
    on a topic where producers batch 100 records of a key per message.
(c) NAB's Twitter_volume_AAPL.csv replayed (``stream_detector.replay``, one record per
    message) into a worker serving a model trained on it for a few epochs.
(d) latency: records produced at a fixed rate (5,000/s) to a worker whose model alerts on
    every window; produce-to-event latency per event from Kafka timestamps (input CreateTime
    vs the event message's timestamp, one clock), matched by the event's source offset.

Every service and child process is started and stopped here; each wait is bounded.

    python -m benchmarks.worker_e2e [--full]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
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
    wait_for,
    worker,
)
from benchmarks.report import (
    histogram_from_prometheus,
    markdown_table,
    percentiles,
    prometheus_value,
    ratio,
    write_results,
)
from benchmarks.worker_variants import VARIANTS

__all__ = ["main", "run"]

ROOT = Path(__file__).resolve().parents[1]
AAPL = ROOT.parent / "shared" / "data" / "nab" / "data" / "realTweets" / "Twitter_volume_AAPL.csv"
WINDOW = 24
QUIET = {"normalise": False, "warmup": 0, "suppress": 1}  # with a huge threshold: no alerts
ENTRY = ("-m", "stream_detector")


def _bootstrap(url: str) -> str:
    return url.split("://", 1)[1]


def bare_agent(kafka_url: str, tmp: Path, topic: str, n: int, mode: str,
               timeout: float) -> dict[str, Any]:
    """Events/s of the counting app between its first and its n-th event."""
    out = tmp / f"bare-{mode}-{uuid.uuid4().hex[:6]}.json"
    env = {**os.environ, "BENCH_KAFKA_URL": kafka_url, "BENCH_TOPIC": topic,
           "BENCH_APP_ID": f"bare-{mode}-{uuid.uuid4().hex[:8]}", "BENCH_MODE": mode,
           "BENCH_EXPECT": str(n), "BENCH_OUT": str(out), "BENCH_DATADIR": str(tmp / out.stem)}
    with child([sys.executable, "-m", "benchmarks.bare_agent"], env,
               tmp / f"{out.stem}.log") as c:
        wait_for(out.exists, timeout, f"bare agent ({mode})", c.check, 0.05)
    got = json.loads(out.read_text())
    seconds = got["last"] - got["first"]
    return {"mode": mode, "records": got["count"], "seconds": seconds,
            "records_per_s": got["count"] / seconds if seconds > 0 else float("nan")}


def _metrics(w: Child) -> str:
    return w.get("/metrics")[1].decode()


def consume_rate(w: Child, n: int, timeout: float) -> dict[str, Any]:
    """Records/s of a worker from its first counted record to its n-th (metrics polls)."""
    def count() -> float:
        return prometheus_value(_metrics(w), "stream_detector_records_in_total")

    def started() -> tuple[float, float] | None:
        c = count()
        return (time.monotonic(), c) if c > 0 else None

    t0, c0 = wait_for(started, timeout, "worker's first record", w.check, 0.05)
    wait_for(lambda: count() >= n, timeout, f"worker consuming {n} records", w.check, 0.05)
    seconds = time.monotonic() - t0
    text = _metrics(w)
    # all consumed before the first poll: too fast to time with n records (say so, not 0)
    rate = (n - c0) / seconds if c0 < n else float("nan")
    return {"records": n, "seconds": seconds, "records_per_s": rate,
            "windows_scored": prometheus_value(text, "stream_detector_windows_scored_total"),
            "anomalies": prometheus_value(text, "stream_detector_anomalies_out_total"),
            "batch_size_histogram": histogram_from_prometheus(
                text, "stream_detector_batch_size")}


def throughput(kafka_url: str, redis_url: str, tmp: Path, n: int, timeout: float,
               entry: tuple[str, ...] = ENTRY) -> dict[str, Any]:
    """Parts (a) and (b): bare agent and worker on the same kind of topic."""
    bootstrap = _bootstrap(kafka_url)
    model = write_registry_model(tmp / "mean", window_mean_model(WINDOW, 1), name="mean",
                                 window=WINDOW, threshold=1e30, detection=QUIET)
    single, batched = f"single-{uuid.uuid4().hex[:6]}", f"batched-{uuid.uuid4().hex[:6]}"
    create_topic(bootstrap, single)
    create_topic(bootstrap, batched)
    produce(bootstrap, single, series_messages(n))
    batched_n = 10 * n  # 100 records a message are consumed far faster: time more of them
    produce(bootstrap, batched, series_messages(batched_n, per_message=100))
    bare = [bare_agent(kafka_url, tmp, single, n, mode, timeout)
            for mode in ("take_events", "iterate")]
    print(f"  bare agent: {[round(b['records_per_s']) for b in bare]} records/s", flush=True)
    out: dict[str, Any] = {"bare_agent": bare}
    for label, topic, count in (("single", single, n), ("batched_100", batched, batched_n)):
        with worker(kafka_url, redis_url, [model], tmp, topic, entry=entry) as w:
            out[f"worker_{label}"] = consume_rate(w, count, timeout)
        print(f"  worker {label}: {out[f'worker_{label}']['records_per_s']:,.0f} records/s",
              flush=True)
    return out


def aapl(kafka_url: str, redis_url: str, tmp: Path, epochs: int, timeout: float,
         entry: tuple[str, ...] = ENTRY) -> dict[str, Any]:
    """Part (c): train on AAPL, replay it one record per message, time the worker."""
    from confluent_kafka import Producer

    from offline_training.train import TrainOptions, train
    from offline_training.trainer import TrainConfig
    from stream_detector import replay
    from stream_detector.history import load_source

    report = train(TrainOptions(data=AAPL, out=tmp / "registry",
                                train=TrainConfig(max_epochs=epochs, progress=False),
                                plots=False))
    topic = f"aapl-{uuid.uuid4().hex[:6]}"
    create_topic(_bootstrap(kafka_url), topic)
    source = load_source(AAPL)
    producer = Producer(replay.producer_config({"bootstrap.servers": _bootstrap(kafka_url)}))
    stats = replay.send(producer, topic, replay.messages(source.records, 1))
    with worker(kafka_url, redis_url, [report.path], tmp, topic, entry=entry) as w:
        result = consume_rate(w, stats.records, timeout)
    result["replay_records_per_s"] = stats.records_per_second
    result["train_seconds"] = report.seconds
    print(f"  worker: {result['records_per_s']:,.0f} records/s", flush=True)
    return result


def latency(kafka_url: str, redis_url: str, tmp: Path, rates: tuple[float, ...],
            seconds: float, entry: tuple[str, ...] = ENTRY,
            keys: int = 20) -> list[dict[str, Any]]:
    """Part (d): paced producer, every window alerts; produce-to-event latency (ms).

    One worker, one phase per rate (slowest first, so a backlog cannot spill into a later
    phase). A warm-up first fills every key's window but one record, and the worker gets a
    few seconds to settle, so in the timed phases every record completes a window.
    """
    bootstrap = _bootstrap(kafka_url)
    model = write_registry_model(tmp / "alert", window_mean_model(WINDOW, 1), name="alert",
                                 window=WINDOW, threshold=0.0, detection=QUIET)
    topic = f"latency-{uuid.uuid4().hex[:6]}"
    create_topic(bootstrap, topic)
    phases = []
    step = WINDOW - 1
    with worker(kafka_url, redis_url, [model], tmp, topic, entry=entry) as w:
        produce(bootstrap, topic, series_messages(step * keys, keys))
        time.sleep(3.0)
        for rate in sorted(rates):
            n = int(rate * seconds) // keys * keys
            sent_at: dict[tuple[int, int], int] = {}

            def delivered(err: Any, msg: Any, into: dict[tuple[int, int], int] = sent_at) -> None:
                if err is None:
                    into[(msg.partition(), msg.offset())] = msg.timestamp()[1]

            sent, took = produce(bootstrap, topic, series_messages(n, keys, first_step=step),
                                 rate=rate, on_delivery=delivered, linger_ms=1)
            expected = sent  # windows are full: every record completes one
            step += n // keys
            events = _read_events(bootstrap, f"{topic}-out", sent_at, expected,
                                  timeout=20 + seconds)
            lat = [float(ts - sent_at[po]) for po, ts in events]
            phases.append({
                "rate_target": rate, "rate_achieved": sent / took, "records": sent,
                "events_expected": expected, "events": len(events),
                "latency_ms": {**percentiles(lat, (50, 90, 99)), "max": max(lat, default=0.0)}})
            print(f"  {rate:,.0f}/s: {len(events)}/{expected} events, "
                  f"p99 {phases[-1]['latency_ms']['p99']:,.0f} ms", flush=True)
        text = _metrics(w)
    phases[-1]["batch_size_histogram"] = histogram_from_prometheus(
        text, "stream_detector_batch_size")
    phases[-1]["worker_lag_histogram_s"] = histogram_from_prometheus(
        text, "stream_detector_end_to_end_lag_seconds")
    return phases


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
                src = json.loads(msg.value())["source"]
                where = (src["partition"], src["offset"])
                if where in sent_at:
                    out.append((where, msg.timestamp()[1]))
    finally:
        consumer.close()
    return out


def _tables(res: dict[str, Any]) -> str:
    rows: list[dict[str, Any]] = []
    tp = res.get("throughput", {})
    base = max((b["records_per_s"] for b in tp.get("bare_agent", [])), default=float("nan"))
    for b in tp.get("bare_agent", []):
        rows.append({"run": f"bare agent ({b['mode']})", "records": b["records"],
                     "records_per_s": b["records_per_s"],
                     "ratio_to_bare": ratio(b["records_per_s"], base)})
    for label in ("single", "batched_100"):
        if f"worker_{label}" in tp:
            r = tp[f"worker_{label}"]
            rows.append({"run": f"worker ({label})", "records": r["records"],
                         "records_per_s": r["records_per_s"],
                         "ratio_to_bare": ratio(r["records_per_s"], base)})
    if "aapl" in res:
        r = res["aapl"]
        rows.append({"run": "worker (AAPL replay, batch 1)", "records": r["records"],
                     "records_per_s": r["records_per_s"],
                     "ratio_to_bare": ratio(r["records_per_s"], base)})
    md = ("Records/s; ratio to the best bare agent in this run (targets: worker single >= 0.9, "
          "batched far above 1)\n\n" +
          markdown_table(rows, ["run", "records", "records_per_s", "ratio_to_bare"]))
    if "latency" in res:
        lat_rows = [{"rate_target": p["rate_target"], "rate_achieved": p["rate_achieved"],
                     "events": f"{p['events']}/{p['events_expected']}", **p["latency_ms"]}
                    for p in res["latency"]]
        md += ("\n\nProduce-to-event latency, ms, every window alerting (target p99 < 50 at "
               "5,000/s). Fewer events than expected: the worker fell behind and the run "
               "stopped waiting, so the percentiles are lower bounds.\n\n" + markdown_table(
                   lat_rows, ["rate_target", "rate_achieved", "events", "p50", "p90", "p99",
                              "max"]))
    errors = [{"part": k, "error": v} for k, v in res.get("errors", {}).items()]
    if errors:
        md += "\n\nFailed parts\n\n" + markdown_table(errors, ["part", "error"])
    return md


def _part(res: dict[str, Any], name: str, fn: Any, *args: Any) -> None:
    """Run one part; a failure is recorded and the other parts still run."""
    started = time.perf_counter()
    print(f"[{name}]", flush=True)
    try:
        res[name] = fn(*args)
    except (RuntimeError, TimeoutError, OSError, ValueError) as exc:
        res.setdefault("errors", {})[name] = f"{type(exc).__name__}: {str(exc)[:500]}"
        print(f"  failed: {res['errors'][name]}", flush=True)
    print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)


def run(full: bool = False, out_dir: Path | None = None,
        parts: tuple[str, ...] = ("throughput", "aapl", "latency"),
        variant: str = "baseline") -> dict[str, Any]:
    """Start Kafka and Redis, run the parts, stop everything; write and return results.

    ``variant`` runs the worker with one of :mod:`benchmarks.worker_variants`' patches
    (results go to ``worker_e2e-<variant>``).
    """
    from stream_detector.services import local_services
    from stream_detector.settings import Settings

    n = 100_000 if full else 10_000
    rates, seconds = (200.0, 5_000.0), 20.0 if full else 8.0
    timeout = 300.0 if full else 120.0
    res: dict[str, Any] = {"full": full, "records": n, "variant": variant}
    entry = ENTRY if variant == "baseline" else ("-m", "benchmarks.worker_variants", variant)
    with tempfile.TemporaryDirectory(prefix="sd-bench-e2e-") as tmp_name, \
            local_services(Settings().cache_dir) as (kafka, redis):
        tmp = Path(tmp_name)
        if "throughput" in parts:
            _part(res, "throughput", throughput, kafka.url, redis.url, tmp, n, timeout,
                  entry)
        if "aapl" in parts:
            _part(res, "aapl", aapl, kafka.url, redis.url, tmp, 5 if full else 2, timeout,
                  entry)
        if "latency" in parts:
            _part(res, "latency", latency, kafka.url, redis.url, tmp, rates, seconds, entry)
    md = _tables(res)
    name = "worker_e2e" if variant == "baseline" else f"worker_e2e-{variant}"
    path = write_results(name, res, md, out_dir)
    print(md)
    print(f"\nwritten: {path} (+ .json)")
    return res


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds the context managers: children and services stop


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="100k records, 20 s latency runs")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    parser.add_argument("--parts", nargs="+", default=["throughput", "aapl", "latency"],
                        choices=["throughput", "aapl", "latency"])
    parser.add_argument("--variant", default="baseline", choices=VARIANTS,
                        help="run the worker with one proposed optimisation patched in")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    run(args.full, args.out, tuple(args.parts), args.variant)


if __name__ == "__main__":
    main()
