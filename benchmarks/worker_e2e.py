"""End to end through a real local Kafka broker and redis-server, ratios in the same run.

(a) bare-agent ceiling: a minimal Faust app that only counts events (``take_events`` as
    the worker does, and a plain ``async for``: the faster counts), on a topic of
    pre-produced single-record messages and on one of 100-record messages.
(b) the real worker (``python -m stream_detector worker``) on the same topics, records/s
    from its ``/metrics`` (``stream_detector_records_in_total``) and its ratio to (a).
(b') peers doing the worker's job (:mod:`benchmarks.peer_apps`, in their own venv): a
    plain confluent-kafka loop, quixstreams with per-record scoring (State API, dict).
(c) NAB's Twitter_volume_AAPL.csv replayed (``stream_detector.files.replay``, one record per
    message) into a worker serving a model trained on it for a few epochs.
(d) latency at paced rates with 1% of windows alerting (:mod:`benchmarks.latency`).

Every service and child process is started and stopped here; each wait is bounded.

    python -m benchmarks.worker_e2e [--full]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.bench_models import window_mean_model, write_registry_model
from benchmarks.counting import counted_rate
from benchmarks.e2e_support import (
    Child,
    child,
    create_topic,
    produce,
    series_messages,
    sigterm_unwinds,
    wait_for,
    worker,
)
from benchmarks.latency import latency, limits, transport_floor
from benchmarks.peers import peer_rate
from benchmarks.report import (
    histogram_from_prometheus,
    markdown_table,
    prometheus_value,
    ratio,
    write_results,
)
from benchmarks.worker_variants import VARIANTS

__all__ = ["floor_line", "main", "run"]

ROOT = Path(__file__).resolve().parents[1]
AAPL = ROOT.parent / "shared" / "data" / "nab" / "data" / "realTweets" / "Twitter_volume_AAPL.csv"
WINDOW = 24
BATCHED_FACTOR = 25  # 100 records a message are consumed far faster: time more of them
# the least records a throughput phase times, quick mode included: a worker's rate is read
# from its metrics every 20-50 ms, so a phase of half a second (250,000 records of 100 a
# message, as quick runs had) moved its ratio by 0.1 from run to run; 30,000 single
# records took under 0.5 s once the worker took records in lists (bulk delivery)
SINGLE_MIN, BATCHED_MIN = 200_000, 1_000_000
QUICK_BATCHED_ROUNDS = 3  # quick mode: bare agent and worker, 100 a message (see throughput)
# (records/s, records a message), in this order; single-record phases last (see latency)
# 1,000/s first: a lightly loaded worker, where fetch waits showed (faust_fetch_wait.py)
LATENCY_PHASES = ((1_000.0, 1), (5_000.0, 10), (5_000.0, 1), (20_000.0, 10), (50_000.0, 10),
                  (20_000.0, 1), (50_000.0, 1))
FLOOR_PHASE = (5_000.0, 1)  # the goal's phase, for the transport's own latency
QUIET = {"normalise": False, "warmup": 0, "suppress": 1}  # with a huge threshold: no alerts
ENTRY = ("-m", "stream_detector")


def _bootstrap(url: str) -> str:
    return url.split("://", 1)[1]


def bare_agent(kafka_url: str, tmp: Path, topic: str, n: int, mode: str,
               timeout: float, per_message: int = 1) -> dict[str, Any]:
    """Events/s of the counting app between its first and its n-th event."""
    out = tmp / f"bare-{mode}-{uuid.uuid4().hex[:6]}.json"
    env = {**os.environ, "BENCH_KAFKA_URL": kafka_url, "BENCH_TOPIC": topic,
           "BENCH_APP_ID": f"bare-{mode}-{uuid.uuid4().hex[:8]}", "BENCH_MODE": mode,
           "BENCH_EXPECT": str(n), "BENCH_OUT": str(out),
           "BENCH_PER_MESSAGE": str(per_message), "BENCH_DATADIR": str(tmp / out.stem)}
    with child([sys.executable, "-m", "benchmarks.bare_agent"], env,
               tmp / f"{out.stem}.log") as c:
        wait_for(out.exists, timeout, f"bare agent ({mode})", c.check, 0.05)
    return counted_rate(out, mode)


def _metrics(w: Child) -> str:
    return w.get("/metrics")[1].decode()


def consume_rate(w: Child, n: int, timeout: float) -> dict[str, Any]:
    """Records/s of a worker from its first counted record to its n-th (metrics polls
    every 20 ms, from before its web server answers: start the worker without waiting
    for ``/ready``, or a fast one has consumed most of the topic meanwhile)."""
    def count() -> float:
        return w.metric("stream_detector_records_in_total")

    def started() -> tuple[float, float] | None:
        try:
            c = count()
        except OSError:  # its web server is not up yet
            return None
        return (time.monotonic(), c) if c > 0 else None

    t0, c0 = wait_for(started, timeout, "worker's first record", w.check, 0.02)
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


BARE_MODES = ("take_events", "iterate")
CONTENDERS = ("bare_agent", "worker", "plain", "quix_state", "quix_dict")


def throughput(kafka_url: str, redis_url: str, tmp: Path, n: int, timeout: float,
               entry: tuple[str, ...] = ENTRY, rounds: Mapping[str, int] | None = None,
               peers: bool = True, peer_rounds: int = 1) -> dict[str, Any]:
    """Parts (a) and (b) and the peers, on a single-record topic and a 100-record one.

    Every contender consumes the same pre-produced topic. ``rounds`` (per shape, default
    1 each) runs the bare agent and the worker in turn, round after round, and reports
    each one's median (the bare agent iterates both of Faust's ways in its first round, then
    the faster one): on a shared host the rate of a process swung by up to 1.8x from
    one run to the next (the same worker, 173,000 to 314,000 records/s, 100 a message,
    one core busy throughout), so one run of each decided the batched ratio by chance
    (0.47 to 0.83 in four quick runs). The peers run in the first ``peer_rounds`` rounds.
    """
    bootstrap = _bootstrap(kafka_url)
    model = write_registry_model(tmp / "mean", window_mean_model(WINDOW, 1), name="mean",
                                 window=WINDOW, threshold=1e30, detection=QUIET)
    shapes = {"single": (max(n, SINGLE_MIN), 1),
              "batched_100": (max(BATCHED_FACTOR * n, BATCHED_MIN), 100)}
    rounds = {label: 1 for label in shapes} | dict(rounds or {})
    topics = {}
    for label, (count, per) in shapes.items():
        topics[label] = f"{label}-{uuid.uuid4().hex[:6]}"
        create_topic(bootstrap, topics[label])
        produce(bootstrap, topics[label], series_messages(count, per_message=per))
    out: dict[str, Any] = {label: {c: {"runs": []} for c in CONTENDERS} for label in shapes}
    for label, contender in schedule(rounds, peers, peer_rounds):
        count, per = shapes[label]
        runs = out[label][contender]["runs"]
        # the bare agent's later rounds iterate the way that won its first
        modes = (runs[0]["mode"],) if runs and contender == "bare_agent" else BARE_MODES
        try:
            runs.append(_contender(contender, kafka_url, redis_url, tmp, topics[label],
                                   count, per, model, timeout, entry, modes))
        except (RuntimeError, TimeoutError, OSError, ValueError,
                subprocess.SubprocessError) as exc:
            out[label][contender]["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
            continue
        print(f"  {label:11s} {contender:10s} {runs[-1]['records_per_s']:12,.0f} "
              "records/s", flush=True)
    for by_contender in out.values():
        for entry_ in by_contender.values():
            rates = sorted(r["records_per_s"] for r in entry_["runs"])
            entry_["records_per_s"] = rates[len(rates) // 2] if rates else float("nan")
    return out


def schedule(rounds: Mapping[str, int], peers: bool, peer_rounds: int) -> list[tuple[str, str]]:
    """The throughput runs in order, as ``(shape, contender)``: round after round, each
    shape with ``rounds[shape]`` rounds in the rounds it has, every contender in turn, the
    peers (with ``peers``) only in the first ``peer_rounds`` rounds.

    >>> schedule({"single": 1, "batched_100": 2}, True, 1)[-3:]
    [('batched_100', 'quix_dict'), ('batched_100', 'bare_agent'), ('batched_100', 'worker')]
    """
    return [(label, contender)
            for r in range(max(rounds.values(), default=0))
            for label, n in rounds.items() if r < n
            for contender in (CONTENDERS if peers and r < peer_rounds else CONTENDERS[:2])]


def _contender(name: str, kafka_url: str, redis_url: str, tmp: Path, topic: str, count: int,
               per: int, model: Path, timeout: float, entry: tuple[str, ...],
               modes: tuple[str, ...] = BARE_MODES) -> dict[str, Any]:
    if name == "bare_agent":  # the faster of Faust's ways to iterate (``modes``)
        runs = [bare_agent(kafka_url, tmp, topic, count, mode, timeout, per) for mode in modes]
        return max(runs, key=lambda r: r["records_per_s"])
    if name == "worker":
        with worker(kafka_url, redis_url, [model], tmp, topic, entry=entry,
                    wait_ready=False) as w:
            return consume_rate(w, count, timeout)
    return peer_rate(kafka_url, tmp, topic, count, name, model, WINDOW, 1e30, timeout)


def aapl(kafka_url: str, redis_url: str, tmp: Path, epochs: int, timeout: float,
         entry: tuple[str, ...] = ENTRY) -> dict[str, Any]:
    """Part (c): train on AAPL, replay it one record per message, time the worker."""
    from confluent_kafka import Producer

    from offline_training.train import train
    from offline_training.train_options import TrainOptions
    from offline_training.trainer import TrainConfig
    from stream_detector.files import replay
    from stream_detector.files.history import load_source

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


LABELS = {"bare_agent": "bare Faust agent (counts only)", "worker": "stream-detector worker",
          "plain": "plain confluent-kafka loop, numpy, ORT per poll",
          "quix_state": "quixstreams, per-record scoring, State API",
          "quix_dict": "quixstreams, per-record scoring, dict state"}


def floor_line(floor: dict[str, Any] | None, phases: list[dict[str, Any]]) -> str:
    """The transport's own latency beside the worker's, at the floor's phase."""
    if not floor:
        return ""
    rate, per = floor["rate_target"], floor["per_message"]
    mine = next((p["latency_ms"] for p in phases if "latency_ms" in p
                 and (p["rate_target"], p["per_message"]) == (rate, per)), None)
    lat = floor["latency_ms"]
    worker = "" if mine is None else f"; the worker's: p50 {mine['p50']:,.0f}, p99 " \
        f"{mine['p99']:,.0f}"
    return (f"\n\nTransport floor at {rate:,.0f} records/s ({per} a message): the same paced "
            f"messages read by a plain consumer that does nothing with them "
            f"(benchmarks/latency_probe.py, {floor['received']:,} of {floor['messages']:,} "
            f"messages, just before the worker's phases): p50 {lat['p50']:,.0f}, p99 "
            f"{lat['p99']:,.0f} ms{worker}. That is the producer's and the broker's share on "
            "this host, whose cores they share with the worker: a worker's latency holds a "
            "share like it.")


def _tables(res: dict[str, Any]) -> str:
    tp = res.get("throughput", {})
    rows: list[dict[str, Any]] = []
    for contender, label in LABELS.items():
        row: dict[str, Any] = {"contender": label}
        for shape in ("single", "batched_100"):
            got = tp.get(shape, {}).get(contender, {})
            base = tp.get(shape, {}).get("bare_agent", {}).get("records_per_s", float("nan"))
            rate = got.get("records_per_s", float("nan"))
            row[f"{shape}_records_per_s"] = rate
            row[f"{shape}_vs_bare"] = ratio(rate, base)
        rows.append(row)
    md = ("Records/s (median of the runs) and ratio to the bare Faust agent of the same run; "
          "single = 1 record a message, batched_100 = 100 records of a key a message\n\n" +
          markdown_table(rows, ["contender", "single_records_per_s", "single_vs_bare",
                                "batched_100_records_per_s", "batched_100_vs_bare"]))
    if "aapl" in res:
        md += (f"\n\nAAPL replay (trained model, 1 record a message): "
               f"{res['aapl']['records_per_s']:,.0f} records/s")
    if "latency" in res:
        lat_rows = [{"rate_target": p["rate_target"], "per_message": p["per_message"],
                     **({"note": p["not_run"]} if "not_run" in p else {
                         "rate_achieved": p["rate_achieved"],
                         "sustained": p["sustained_records_per_s"],
                         "events": f"{p['events']}/{p['events_expected']}",
                         "backlog": p.get("backlog_records", float("nan")),
                         "kept_up": p["kept_up"], **p["latency_ms"]})}
                    for p in res["latency"]]
        md += ("\n\nProduce-to-event latency, ms, 1% of windows alerting (target p99 < 50 at "
               "5,000/s). sustained = records/s the worker consumed while the producer ran; "
               "backlog = records produced but not consumed when it stopped; kept_up false: "
               "the worker fell behind (it consumed under 95% while produced), and its "
               "percentiles measure the queue.\n\n" +
               markdown_table(lat_rows, ["rate_target", "per_message", "rate_achieved",
                                         "sustained", "backlog", "events", "kept_up", "p50",
                                         "p90", "p99", "max", "note"]))
        md += floor_line(res.get("latency_floor"), res["latency"])
        for per, lim in sorted(limits(res["latency"]).items()):
            behind = ("fell behind at no rate run" if lim["falls_behind_at"] is None
                      else f"fell behind at {lim['falls_behind_at']:,.0f} records/s")
            md += (f"\n\n{per} record(s) a message: kept up at "
                   f"{_rate(lim['kept_up_at'])} records/s, {behind}"
                   f" (the most it sustained: {lim['max_sustained']:,.0f}/s).")
    errors = [{"part": k, "error": v} for k, v in res.get("errors", {}).items()]
    if errors:
        md += "\n\nFailed parts\n\n" + markdown_table(errors, ["part", "error"])
    return md


def _rate(rate: float | None) -> str:
    return "none run" if rate is None else f"{rate:,.0f}"


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
        variant: str = "baseline", peers: bool = True) -> dict[str, Any]:
    """Start Kafka and Redis, run the parts, stop everything; write and return results.

    ``variant`` runs the worker with one of :mod:`benchmarks.worker_variants`' patches
    (results go to ``worker_e2e-<variant>``).
    """
    from stream_detector.services.local import local_services
    from stream_detector.settings import Settings

    n = 100_000 if full else 10_000
    seconds = 15.0 if full else 4.0
    timeout = 300.0 if full else 120.0
    res: dict[str, Any] = {"full": full, "records": n, "variant": variant}
    entry = ENTRY if variant == "baseline" else ("-m", "benchmarks.worker_variants", variant)
    with tempfile.TemporaryDirectory(prefix="sd-bench-e2e-") as tmp_name, \
            local_services(Settings().cache_dir) as (kafka, redis):
        tmp = Path(tmp_name)
        if "throughput" in parts:
            rounds = ({"single": 3, "batched_100": 3} if full
                      else {"single": 1, "batched_100": QUICK_BATCHED_ROUNDS})
            _part(res, "throughput", throughput, kafka.url, redis.url, tmp, n, timeout,
                  entry, rounds, peers, 3 if full else 1)
        if "aapl" in parts:
            _part(res, "aapl", aapl, kafka.url, redis.url, tmp, 5 if full else 2, timeout,
                  entry)
        if "latency" in parts:
            _part(res, "latency_floor", transport_floor, kafka.url, tmp, *FLOOR_PHASE,
                  seconds)
            _part(res, "latency", latency, kafka.url, redis.url, tmp, LATENCY_PHASES, seconds,
                  entry)
    md = _tables(res)
    name = "worker_e2e" if variant == "baseline" else f"worker_e2e-{variant}"
    path = write_results(name, res, md, out_dir)
    print(md)
    print(f"\nwritten: {path} (+ .json)")
    return res


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="100k records, 20 s latency runs")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    parser.add_argument("--parts", nargs="+", default=["throughput", "aapl", "latency"],
                        choices=["throughput", "aapl", "latency"])
    parser.add_argument("--variant", default="baseline", choices=VARIANTS,
                        help="run the worker with one proposed optimisation patched in")
    parser.add_argument("--no-peers", action="store_true",
                        help="bare agent and worker only (no quixstreams, no plain loop)")
    args = parser.parse_args(argv)
    sigterm_unwinds()
    run(args.full, args.out, tuple(args.parts), args.variant, peers=not args.no_peers)


if __name__ == "__main__":
    main()
