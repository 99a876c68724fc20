"""Scale: records/s, memory and changelog traffic with many keys, and 1 vs 2 workers.

Each run starts its worker(s) (``python -m stream_detector worker``, as the other end-to-end
parts do; 2 workers share one app id) on an empty 4-partition topic, waits until every
worker holds its share of the input partitions (no rebalance in the timed records), then
produces, as fast as the producer goes, messages built in memory beforehand
(:class:`~benchmarks.scale_figures.Plan`):

- warm-up: one message of ``window`` records per key (every key's window full);
- timed: messages of ``per_message`` records of one key, keys in turn (every message
  touches another key's state); the same messages for every key count up to
  ``timed / per_message``, so runs differ only in the number of keys held.

Measured per run: records/s of the timed records (``stream_detector_records_in_total`` of
every worker, polled every 50 ms, from the poll that saw the warm-up consumed to the one
that saw every record), each worker's peak RSS (``VmHWM``) and RSS once ready, the
``key-state`` changelog's payload bytes and messages per second between the end offsets
seen at those two polls, and, read back after the workers stopped, each key's last state:
its encoded :class:`~stream_detector.core.key_state.KeyState` size and whether its window
is full.

``--full``: 10,000 keys with 1 worker (the baseline), 10,000 keys with 2 workers, 100,000
keys with 1 worker, 400,000 timed records each (~6 min on 2 loaded cores); ratios against
the baseline (:func:`~benchmarks.scale_figures.scale_ratios`). Quick: 1,000 keys, 1 worker,
50,000 timed records (~1 min; not part of ``stream-detector bench``'s quick mode).

    python -m benchmarks.scale [--full] [--keys 1000 5000 --workers 1 2] [--timed N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.bench_models import window_mean_model, write_registry_model
from benchmarks.e2e_support import (
    Child,
    create_topic,
    produce,
    series_messages,
    sigterm_unwinds,
    wait_for,
    worker,
)
from benchmarks.report import write_results
from benchmarks.scale_figures import (
    PER_MESSAGE,
    WINDOW,
    Plan,
    changelog_summary,
    phase_rate,
    plan,
    proc_cpu_seconds,
    proc_status_bytes,
    scale_markdown,
    scale_ratios,
)

__all__ = ["build_messages", "main", "one_run", "run"]

PARTITIONS = 4
_TICKS = os.sysconf("SC_CLK_TCK")
QUIET = {"normalise": False, "warmup": 0, "suppress": 1}  # with a huge threshold: no alerts
Message = tuple[bytes, bytes]


def build_messages(p: Plan, seed: int = 0) -> list[Message]:
    """The warm-up messages, then the timed ones (one second a step, keys ``k0``...)."""
    warm = series_messages(p.warm_records, p.keys, per_message=p.window, seed=seed)
    timed = series_messages(p.timed_records, p.timed_keys, per_message=p.per_message,
                            seed=seed + 1, first_step=p.window)
    return [*warm, *timed]


def _cpu_seconds(workers: Sequence[Child]) -> float:
    return sum(proc_cpu_seconds(Path(f"/proc/{w.proc.pid}/stat").read_text(), _TICKS)
               for w in workers)


def _proc_bytes(c: Child, field: str) -> int:
    return proc_status_bytes(Path(f"/proc/{c.proc.pid}/status").read_text(), field)


def _wait_assigned(workers: Sequence[Child], timeout: float) -> None:
    """Until every worker holds its share of the input partitions, twice in a row (the
    gauge is refreshed every second), so no rebalance falls in the timed records."""
    share = PARTITIONS // len(workers)
    seen: list[bool] = []

    def settled() -> bool:
        got = [w.metric("stream_detector_kafka_assigned_partitions") for w in workers]
        seen.append(all(g == share for g in got))
        return len(seen) >= 2 and seen[-1] and seen[-2]

    wait_for(settled, timeout, f"{len(workers)} worker(s) assigned {share} partitions each",
             every=0.6)


class _Changelog:
    """End offsets and contents of the workers' ``key-state`` changelog topic."""

    def __init__(self, bootstrap: str, app_id: str) -> None:
        from confluent_kafka import Consumer

        from stream_detector.worker.app import STATE_TABLE

        self.topic = f"{app_id}-{STATE_TABLE}-changelog"
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": self.topic,
                                  "enable.auto.commit": False, "enable.partition.eof": True})

    def ends(self) -> dict[int, int]:
        from confluent_kafka import TopicPartition

        return {p: self.consumer.get_watermark_offsets(TopicPartition(self.topic, p),
                                                       timeout=10)[1]
                for p in range(PARTITIONS)}

    def read(self, timeout: float = 120.0) -> Iterator[tuple[int, int, bytes, bytes]]:
        """``(partition, offset, key, value)`` of every message up to the end offsets."""
        from confluent_kafka import KafkaError, TopicPartition

        deadline = time.monotonic() + timeout
        for p, end in self.ends().items():
            self.consumer.assign([TopicPartition(self.topic, p, 0)])
            at = 0
            while at < end:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.topic}: not read back in {timeout:.0f} s")
                for m in self.consumer.consume(10_000, timeout=1):
                    error = m.error()
                    if error is not None and error.code() == KafkaError._PARTITION_EOF:
                        at = end  # compaction may have removed the last offsets
                    elif error is None:
                        offset, key, value = m.offset() or 0, m.key() or b"", m.value() or b""
                        at = max(at, offset + 1)
                        yield p, offset, key, value

    def close(self) -> None:
        self.consumer.close()


def _log_bytes(data_dir: Path, topic: str) -> int:
    """Bytes of the topic's log segments in the broker's data folder (Kafka's on-disk
    form: record batches with their headers; index files left out)."""
    return sum(f.stat().st_size for d in data_dir.glob(f"{topic}-*") for f in d.glob("*.log"))


def _follow(workers: Sequence[Child], changelog: _Changelog, p: Plan,
            timeout: float) -> dict[str, Any]:
    """Poll the workers' record counters until every record is in; the changelog's end
    offsets when the warm-up was consumed and when all records were."""
    name = "stream_detector_records_in_total"
    samples: list[tuple[float, float]] = []
    marks: dict[str, dict[int, int]] = {}
    cpu: list[float] = []
    done, deadline = p.warm_records + p.timed_records, time.monotonic() + timeout
    while not samples or samples[-1][1] < done:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(workers)} worker(s) consumed {samples[-1][1]:.0f} of "
                               f"{done} records in {timeout:.0f} s")
        for w in workers:
            w.check()
        t0 = time.monotonic()
        count = sum(w.metric(name) for w in workers)
        samples.append(((t0 + time.monotonic()) / 2, count))
        if count >= p.warm_records and "start" not in marks:
            marks["start"], cpu = changelog.ends(), [_cpu_seconds(workers)]
        time.sleep(0.05)
    marks["end"], cpu = changelog.ends(), [*cpu, _cpu_seconds(workers)]
    return {"samples": samples, "marks": marks, "cpu_seconds": cpu[-1] - cpu[0],
            "per_worker": [w.metric(name) for w in workers]}


def _read_back(changelog: _Changelog, marks: dict[str, dict[int, int]]) -> dict[str, Any]:
    """Changelog traffic of the timed records and each key's last state (decoded: is its
    window full?)."""
    from stream_detector.core.key_state import KeyState

    last: dict[bytes, bytes] = {}

    def sizes() -> Iterator[tuple[int, int, bytes, int]]:
        for p, offset, key, value in changelog.read():
            last[key] = value
            yield p, offset, key, len(value)

    out = changelog_summary(sizes(), marks["start"], marks["end"])
    out["full_windows"] = sum(KeyState.from_bytes(v).window.filled == WINDOW
                              for v in last.values())
    return out


def _measure(kafka: Any, redis_url: str, tmp: Path, model: Path, p: Plan,
             messages: list[Message], workers: int, timeout: float) -> dict[str, Any]:
    """Start ``workers`` workers (one app id) on a fresh topic; once the partitions are
    assigned, produce ``messages`` and follow them; read the changelog back after the
    workers stopped (their last flush is in)."""
    bootstrap = kafka.url.split("://", 1)[1]
    suffix = uuid.uuid4().hex[:8]
    topic, app = f"scale-{p.keys}-{workers}w-{suffix}", f"sd-scale-{suffix}"
    create_topic(bootstrap, topic, PARTITIONS)
    changelog = _Changelog(bootstrap, app)
    try:
        with contextlib.ExitStack() as stack:
            ws = [stack.enter_context(worker(
                kafka.url, redis_url, [model], tmp, topic, partitions=PARTITIONS,
                extra_env={"STREAM_DETECTOR_APP_ID": app})) for _ in range(workers)]
            _wait_assigned(ws, timeout)
            out: dict[str, Any] = {"rss_ready_bytes": [_proc_bytes(w, "VmRSS") for w in ws],
                   "started": time.monotonic()}
            produce(bootstrap, topic, messages)
            out["produced"] = time.monotonic()
            out.update(_follow(ws, changelog, p, timeout))
            out["rss_peak_bytes"] = [_proc_bytes(w, "VmHWM") for w in ws]
        out.update(_read_back(changelog, out["marks"]))
        out["changelog_log_bytes"] = _log_bytes(Path(kafka.data_dir) / "data", changelog.topic)
    finally:
        changelog.close()
    return out


def one_run(kafka: Any, redis_url: str, tmp: Path, model: Path, p: Plan,
            messages: list[Message], workers: int, timeout: float) -> dict[str, Any]:
    """One run's figures (see the module docstring)."""
    got = _measure(kafka, redis_url, tmp, model, p, messages, workers, timeout)
    samples = got["samples"]
    rate = phase_rate(samples, p.warm_records, p.warm_records + p.timed_records)
    timed_from = next(t for t, c in samples if c >= p.warm_records)
    ready, peak = got["rss_ready_bytes"], got["rss_peak_bytes"]
    return {
        **asdict(p), "workers": workers, **rate, "worker_cpu_seconds": got["cpu_seconds"],
        "records_per_cpu_s": rate["records"] / got["cpu_seconds"],
        "warm_records_per_s": phase_rate(samples, 1, p.warm_records)["records_per_s"],
        "produce_seconds": got["produced"] - got["started"],
        "produced_before_timing": got["produced"] <= timed_from,
        "records_per_worker": got["per_worker"], "rss_ready_bytes": ready,
        "rss_peak_bytes": peak, "rss_growth_per_key_bytes": (sum(peak) - sum(ready)) / p.keys,
        "changelog_messages_per_s": got["window_messages"] / rate["seconds"],
        "changelog_bytes_per_s": got["window_bytes"] / rate["seconds"],
        **{k: got[k] for k in ("state_bytes_mean", "state_bytes_min", "state_bytes_max",
                               "changelog_log_bytes", "full_windows")},
        "keys_in_changelog": got["keys"],
    }


FULL_RUNS = ((10_000, 1), (10_000, 2), (100_000, 1))  # (keys, workers); the first: baseline
QUICK_RUNS = ((1_000, 1),)


def run(full: bool = False, out_dir: Path | None = None,
        runs: Sequence[tuple[int, int]] | None = None,
        timed: int | None = None) -> dict[str, Any]:
    """Start Kafka and Redis, do the runs (``(keys, workers)``), stop everything; write
    ``scale.{json,md}`` and return the results (``runs``, ``ratios``, ``errors``)."""
    from stream_detector.services.local import local_services
    from stream_detector.settings import Settings

    runs = runs or (FULL_RUNS if full else QUICK_RUNS)
    timed = timed or (400_000 if full else 50_000)
    res: dict[str, Any] = {"full": full, "window": WINDOW, "per_message": PER_MESSAGE,
                           "partitions": PARTITIONS, "timed_records": timed, "runs": []}
    with tempfile.TemporaryDirectory(prefix="sd-bench-scale-") as tmp_name, \
            local_services(Settings().cache_dir) as (kafka, redis):
        tmp = Path(tmp_name)
        model = write_registry_model(tmp / "mean", window_mean_model(WINDOW, 1), name="mean",
                                     window=WINDOW, threshold=1e30, detection=QUIET)
        built: dict[int, list[Message]] = {}
        for keys, workers in runs:
            p = plan(keys, timed)
            if keys not in built:
                built = {keys: build_messages(p)}  # one key count's messages at a time
            label = f"{keys} keys, {workers} worker(s)"
            print(f"  {label}: {len(built[keys]):,} messages", flush=True)
            try:
                got = one_run(kafka, redis.url, tmp, model, p, built[keys], workers,
                              600.0 if full else 180.0)
            except (RuntimeError, TimeoutError, OSError, ValueError) as exc:
                res.setdefault("errors", {})[label] = f"{type(exc).__name__}: {str(exc)[:500]}"
                print(f"  failed: {res['errors'][label]}", flush=True)
                continue
            res["runs"].append(got)
            print(f"  {label}: {got['records_per_s']:,.0f} records/s, state "
                  f"{got['state_bytes_mean']:,.0f} B/key", flush=True)
    res["ratios"] = scale_ratios(res["runs"])
    res["ratios_per_cpu_s"] = scale_ratios(res["runs"], "records_per_cpu_s")
    md = scale_markdown(res)
    path = write_results("scale", res, md, out_dir)
    print(md)
    print(f"\nwritten: {path} (+ .json)")
    return res


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true",
                        help="10,000 keys (1 and 2 workers) and 100,000 keys")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    parser.add_argument("--keys", type=int, nargs="+", default=None,
                        help="run these key counts instead (e.g. 1000 5000), with --workers")
    parser.add_argument("--workers", type=int, nargs="+", default=[1], choices=[1, 2, 4],
                        help="workers per run with --keys (default 1)")
    parser.add_argument("--timed", type=int, default=None, help="timed records per run")
    args = parser.parse_args(argv)
    sigterm_unwinds()
    runs = [(k, w) for k in args.keys for w in args.workers] if args.keys else None
    run(args.full, args.out, runs, args.timed)


if __name__ == "__main__":
    main()
