"""Processes, topics and data for the end-to-end benchmarks (loopback only).

Every child starts in its own session with ``PR_SET_PDEATHSIG`` (it dies with the benchmark,
even on SIGKILL of the parent) and :func:`child` stops its whole process group on exit, so a
Ctrl-C or a failure leaves no orphans.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Child",
    "child",
    "create_topic",
    "produce",
    "series_messages",
    "spikes",
    "wait_for",
    "worker",
]

ROOT = Path(__file__).resolve().parents[1]
_START = dt.datetime(2026, 1, 1)


def sigterm_unwinds() -> None:
    """Make SIGTERM raise KeyboardInterrupt in this process, so the benchmark's context
    managers unwind: its children and services stop."""
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@dataclass
class Child:
    """A running child process and its log."""

    proc: subprocess.Popen[bytes]
    log: Path
    web: str = ""
    env: dict[str, str] = field(default_factory=dict)

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.log.name} exited ({self.proc.returncode}):\n{self.tail()}")

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.web + path, timeout=timeout) as r:  # noqa: S310
                return int(r.status), bytes(r.read())
        except urllib.error.HTTPError as e:
            return int(e.code), bytes(e.read())

    def metric(self, name: str) -> float:
        """The sum of a worker's samples called ``name``, from ``/metrics?name[]=name``:
        only that sample rendered. Polled every 50 ms at 100 records a message (py-spy),
        the whole page took 6.7-6.9% of the worker's event loop, this one sample 3.6%
        (aiohttp's handling of the request, mostly)."""
        from benchmarks.report import prometheus_value

        query = urllib.parse.urlencode({"name[]": name})
        return prometheus_value(self.get(f"/metrics?{query}")[1].decode(), name)


def _stop(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def child(args: list[str], env: dict[str, str], log: Path, web: str = "") -> Iterator[Child]:
    """Run ``args`` in its own process group; stop the group (TERM, then KILL) on exit."""
    from stream_detector.services.process import die_with_parent

    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - argv built by the benchmark
            args, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=ROOT, start_new_session=True, preexec_fn=die_with_parent,  # noqa: PLW1509
        )
        try:
            yield Child(proc, log, web, env)
        finally:
            _stop(proc)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str,
             check: Callable[[], None] | None = None, every: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check is not None:
            check()
        with contextlib.suppress(OSError):
            got = predicate()
            if got:
                return got
        time.sleep(every)
    raise TimeoutError(f"{what}: not done after {timeout:.0f}s")


@contextlib.contextmanager
def worker(
    kafka_url: str, redis_url: str, models: list[Path], tmp: Path, input_topic: str,
    partitions: int = 4, extra_env: dict[str, str] | None = None, ready_timeout: float = 120.0,
    entry: tuple[str, ...] = ("-m", "stream_detector"), wait_ready: bool = True,
) -> Iterator[Child]:
    """``python -m stream_detector worker`` as the integration harness runs it.

    ``entry`` replaces ``-m stream_detector`` (e.g. a script that patches the worker for an
    experiment and then calls ``stream_detector.cli.main.main``). ``wait_ready=False``
    yields at once, before ``/ready`` (a rate timed from the worker's first record: it may
    consume a pre-produced topic while ``/ready`` is polled).
    """
    from stream_detector.services.process import free_port

    suffix = uuid.uuid4().hex[:8]
    port = free_port()
    env = {
        **os.environ,
        "STREAM_DETECTOR_KAFKA_URL": kafka_url, "STREAM_DETECTOR_REDIS_URL": redis_url,
        "STREAM_DETECTOR_APP_ID": f"sd-bench-{suffix}",
        "STREAM_DETECTOR_TOPIC_PARTITIONS": str(partitions),
        "STREAM_DETECTOR_WEB_PORT": str(port),
        "STREAM_DETECTOR_STATE_DIR": str(tmp / f"state-{suffix}"),
        "STREAM_DETECTOR_PROVIDER": "cpu",
        **(extra_env or {}),
    }
    args = [sys.executable, *entry, "worker", "--input", input_topic,
            "--output", f"{input_topic}-out", "--dead-letter", f"{input_topic}-dlq"]
    for m in models:
        args += ["--model", str(m)]
    with child(args, env, tmp / f"worker-{suffix}.log", f"http://127.0.0.1:{port}") as w:
        if wait_ready:
            wait_for(lambda: w.get("/ready")[0] == 200, ready_timeout, "worker ready",
                     w.check, 0.3)
        yield w


def create_topic(bootstrap: str, name: str, partitions: int = 4) -> None:
    """Create ``name`` and wait until its partitions have leaders."""
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result(timeout=30)

    def ready() -> bool:
        meta = admin.list_topics(name, timeout=5).topics.get(name)
        return bool(meta and len(meta.partitions) == partitions and meta.error is None)

    wait_for(ready, 30, f"topic {name}")


def _record(key: str, step: int, value: float) -> bytes:
    stamp = (_START + dt.timedelta(seconds=step)).isoformat()
    return (f'{{"kind":"series","series":"{key}","timestamp":"{stamp}",'
            f'"value":{value:.4f}}}').encode()


def series_messages(
    records: int, keys: int = 100, per_message: int = 1, seed: int = 0, first_step: int = 0,
    spike_every: int = 0,
) -> Iterator[tuple[bytes, bytes]]:
    """``(key, value)`` messages: ``keys`` series, in time order across keys.

    ``per_message > 1`` packs that many consecutive records of one key in a JSON list;
    ``first_step`` continues series sent before (timestamps go on, one second a step);
    ``spike_every`` adds 200 (20 standard deviations) to every that-many-th record of a
    key (:func:`spikes` counts them), so a last-step model alerts on exactly those.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    per_key = records // keys
    values = rng.normal(100.0, 10.0, size=(keys, per_key))
    if spike_every:
        steps = np.arange(first_step, first_step + per_key)
        values += 200.0 * ((steps[None, :] + np.arange(keys)[:, None]) % spike_every == 0)
    for start in range(0, per_key, per_message):
        stop = min(start + per_message, per_key)
        for k in range(keys):
            key = f"k{k}"
            recs = [_record(key, first_step + s, float(values[k, s]))
                    for s in range(start, stop)]
            value = recs[0] if per_message == 1 else b"[" + b",".join(recs) + b"]"
            yield key.encode(), value


def spikes(records: int, keys: int, first_step: int, spike_every: int) -> int:
    """How many spikes :func:`series_messages` puts in those records."""
    per_key = records // keys
    return sum(1 for k in range(keys) for s in range(first_step, first_step + per_key)
               if (s + k) % spike_every == 0)


def produce(
    bootstrap: str, topic: str, messages: Iterable[tuple[bytes, bytes]],
    rate: float | None = None, on_delivery: Callable[[Any, Any], None] | None = None,
    linger_ms: int = 5,
) -> tuple[int, float]:
    """Produce (optionally paced at ``rate`` messages/s); return (messages, seconds).

    Pacing sleeps until each message is due (``poll`` with a timeout, or ``time.sleep``
    under a millisecond): a spinning producer took a whole core of the two the worker and
    the broker share, and the latency it measured was the worker's wait for a CPU.
    """
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random",
                         "linger.ms": linger_ms, "queue.buffering.max.messages": 1_000_000,
                         "message.max.bytes": 2_000_000})
    sent = 0
    start = time.perf_counter()
    for key, value in messages:
        if rate:  # sleep until the message is due (never spin: the worker needs the CPU)
            while (wait := start + sent / rate - time.perf_counter()) > 0:
                producer.poll(wait) if wait >= 0.001 else time.sleep(wait)
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        sent += 1
    if producer.flush(60) != 0:
        raise RuntimeError(f"{topic}: messages not acknowledged within 60 s")
    return sent, time.perf_counter() - start
