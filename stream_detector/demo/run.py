"""Run the demo: services, training, thresholds, worker, replay, live view, summary, report.

Every resource goes on one :class:`contextlib.ExitStack` the moment it exists, so a failure
or Ctrl-C at any step stops what was started, newest first: the collector, the worker, the
training child, the broker, redis-server. SIGTERM is turned into the same interrupt.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from stream_detector.demo.data import DemoData, DemoOptions, ModelPlan, plan_model, prepare_data
from stream_detector.demo.live import (
    Collector,
    EventLines,
    TimedProducer,
    WorkerProcess,
    live_display,
    live_view,
)
from stream_detector.demo.summary import DemoSummary, latency_stats
from stream_detector.exceptions import StreamDetectorError
from stream_detector.services.process import die_with_parent, stop_handle

__all__ = ["DemoRun", "interrupts_handled", "offline_scores", "run_demo", "stopping_line"]

Step = Callable[[str], None]
_QUIET = logging.getLogger("stream_detector.demo.admin")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


@dataclass
class DemoRun:
    """Everything the summary and the report are made of."""

    summary: DemoSummary
    data: DemoData
    rows: list[Any]  # stream_detector.files.batch.ScoreRow of every window, offline
    received: list[Any]  # demo_live.Received, as the worker emitted them
    latencies: list[float]
    threshold: float
    records: list[Any]
    train_fraction: float  # each key's first fraction trained the model
    normalised: bool = False  # scores are z-scores against each key's own history


@contextlib.contextmanager
def interrupts_handled() -> Iterator[None]:
    """Ctrl-C and SIGTERM end the run as KeyboardInterrupt, whatever they interrupted.

    A signal that lands inside a C extension can surface as another error (confluent-kafka's
    ``poll`` raises SystemError, an interrupted onnxruntime import ImportError), so the
    handler remembers that it fired and any exception after that counts as the interrupt.
    """
    fired: list[int] = []

    def interrupt(signum: int, frame: FrameType | None) -> None:
        fired.append(signum)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except BaseException:
        if fired:
            raise KeyboardInterrupt from None
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _settings(kafka: str | None, redis: str | None, **more: Any) -> Any:
    from stream_detector.settings import settings_with

    return settings_with({"kafka_url": kafka, "redis_url": redis, **more})


def _services(opts: DemoOptions, stack: contextlib.ExitStack, step: Step) -> tuple[str, str]:
    """The given URLs, or local services started for this run (they die with it)."""
    from stream_detector.services.kafka import KafkaBroker
    from stream_detector.services.redis import RedisServer

    urls = {"kafka": opts.kafka, "redis": opts.redis}
    cache = _settings(None, None).cache_dir
    starters = {"redis": RedisServer().start,
                "kafka": lambda: KafkaBroker(cache).start()}
    for name in ("redis", "kafka"):
        if urls[name] is None:
            fetch = name == "kafka" and not (KafkaBroker(cache).libs_dir
                                             / ".complete").is_file()
            step(f"starting a local {name}" + (" (fetching its jars once, about 50 MB)"
                                               if fetch else ""))
            handle = starters[name]()
            stack.callback(shutil.rmtree, handle.data_dir, True)
            stack.callback(stop_handle, handle)
            urls[name] = handle.url
        step(f"{name}: {urls[name]}")
    return str(urls["kafka"]), str(urls["redis"])


def _start_training(plan: ModelPlan, log: Path, stack: contextlib.ExitStack) -> Any:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            plan.command or [], stdout=sink, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent)

    def stop() -> None:
        if proc.poll() is None:
            proc.kill()
        proc.wait()

    stack.callback(stop)
    return proc


def _wait_training(proc: Any, log: Path) -> None:
    if proc.wait() != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise StreamDetectorError(f"training failed (exit {proc.returncode}); {log}:\n{tail}")


def _publish(settings: Any, model: Path) -> Any:
    from stream_detector.core.registry import ModelRegistry
    from stream_detector.core.thresholds import ThresholdStore

    card = ModelRegistry(model).load_latest().card
    client = settings.redis_client()  # the settings' credentials and TLS, as the worker's
    try:
        ThresholdStore(client).publish_from_card(card, set_by="stream-detector demo")
    finally:
        client.close()
    return card


def offline_scores(model: Path, data: DemoData) -> tuple[list[Any], list[Any]]:
    """Records and every window's score through the worker's pipeline (same decisions)."""
    from stream_detector.files.batch import load_runtime, score_records
    from stream_detector.files.history import Order, load_source

    order: Order = "time" if data.kind == "sales" else "key"  # a live panel interleaves
    source = load_source(data.path, kind=data.kind, order=order)
    records = list(source.records)
    runtime = load_runtime(model, "cpu")
    return records, [row for _, row in score_records(runtime, records)]


def _delete_topics(settings: Any, topics: dict[str, str]) -> None:
    """Best effort: the run's topics and the worker's changelog (named after its app id)."""
    from confluent_kafka.admin import AdminClient

    with contextlib.suppress(Exception):
        admin = AdminClient(settings.confluent_config(logger=_QUIET))
        names = [t for t in admin.list_topics(timeout=5).topics
                 if t in (topics["input"], topics["output"], topics["dead"])
                 or t.startswith(topics["app_id"])]
        for future in admin.delete_topics(names, operation_timeout=10).values():
            future.result(timeout=15)


def _worker_env(settings: Any, topics: dict[str, str], state: Path) -> dict[str, str]:
    return {"STREAM_DETECTOR_KAFKA_URL": settings.kafka_url,
            "STREAM_DETECTOR_REDIS_URL": settings.redis_url,
            "STREAM_DETECTOR_APP_ID": topics["app_id"],
            "STREAM_DETECTOR_TOPIC_PARTITIONS": "2",
            "STREAM_DETECTOR_STATE_DIR": str(state),
            "STREAM_DETECTOR_INTRA_OP_THREADS": "1",
            "STREAM_DETECTOR_NAMESPACE": ""}  # the demo names its own topics and keys


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("records"), TimeElapsedColumn())


def _replay(
    settings: Any, topic: str, records: Sequence[Any], rate: float, collector: Collector,
    console: Console, live: bool, drain: Callable[[], None],
) -> Any:
    """Send the records at ``rate`` and wait for the worker (``drain``), showing anomalies
    as they arrive: a progress bar over a table, or plain lines without ``live``."""
    from confluent_kafka import Producer

    from stream_detector.files import replay

    producer = TimedProducer(Producer(replay.producer_config(settings.confluent_config())))
    replay.check_topic(producer.producer, topic, settings.bootstrap_servers)
    stream = replay.messages(records)
    if not live:
        lines = EventLines(collector.received, lambda text: console.print(
            text, markup=False, highlight=False, soft_wrap=True))
        stats = replay.send(producer, topic, stream, rate=rate, on_progress=lines)
        drain()
        lines()
        return stats, producer
    progress = _progress()
    task = progress.add_task(f"replaying at {rate:,.0f}/s", total=len(records))
    with live_display(live_view(progress, collector.received), console) as view:
        last = [0.0]

        def advance(n: int) -> None:
            progress.advance(task, n)
            if time.monotonic() - last[0] > 0.25:
                last[0] = time.monotonic()
                view.update(live_view(progress, collector.received))

        stats = replay.send(producer, topic, stream, rate=rate, on_progress=advance)
        drain()
        view.update(live_view(progress, collector.received))
    return stats, producer


def _drain(worker: WorkerProcess, collector: Collector, expected: set[str], records: int,
           timeout: float = 60.0) -> None:
    """Wait until the worker has consumed every record and its events have arrived."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = {r.event.event_id for r in collector.received}
        if worker.records_in() >= records and expected <= seen:
            return
        time.sleep(0.2)


def _prepare(
    opts: DemoOptions, data: DemoData, plan: ModelPlan, stack: contextlib.ExitStack, step: Step,
) -> tuple[Any, Any]:
    """Training (in a child, while the services start), services and thresholds."""
    logs = opts.out / "logs"
    trainer = None
    if plan.command is not None:
        step(f"training the {data.kind} model in the background (log: {logs / 'train.log'})")
        trainer = _start_training(plan, logs / "train.log", stack)
    else:
        step(f"model: {plan.entry} (cached: same data and options)")
    kafka, redis = _services(opts, stack, step)
    settings = _settings(kafka, redis)
    if trainer is not None:
        _wait_training(trainer, logs / "train.log")
        step(f"model: trained into {plan.entry}")
    card = _publish(settings, plan.entry)
    step(f"thresholds of {card.name} v{card.version} published to Redis "
         f"(default {card.thresholds.default:.3g})")
    return settings, card


def _stream(
    opts: DemoOptions, data: DemoData, plan: ModelPlan, stack: contextlib.ExitStack,
    console: Console, step: Step, settings: Any,
) -> _Streamed:
    """Worker up, records replayed, events collected until the worker has caught up."""
    from stream_detector.demo.data import topics_for
    from stream_detector.demo.live import start_worker
    from stream_detector.worker.topics import ensure_topics

    topics = topics_for(data.kind)
    state = opts.out / "state" / topics["suffix"]
    stack.callback(shutil.rmtree, state, True)
    if opts.kafka is not None:  # someone else's broker: leave it as we found it
        stack.callback(_delete_topics, settings, topics)
    ensure_topics(_settings(settings.kafka_url, None, input_topic=topics["input"],
                            output_topic=topics["output"], dead_letter_topic=topics["dead"],
                            topic_partitions=2))
    log = opts.out / "logs" / f"worker-{topics['suffix']}.log"
    worker = stack.enter_context(
        start_worker(plan.entry, topics, _worker_env(settings, topics, state), log))
    explorer = _explorer(opts, plan, topics, settings, stack, step)
    step(f"worker starting (log: {log}); scoring the data offline meanwhile")
    records, rows = offline_scores(plan.entry, data)
    worker.wait_ready()
    step(f"worker ready; topics {topics['input']} -> {topics['output']}")
    collector = Collector(settings.confluent_config(**{
        "group.id": f"{topics['app_id']}-view", "auto.offset.reset": "earliest",
        "enable.auto.commit": False}), topics["output"])
    stack.enter_context(collector.running())
    rate = opts.rate or max(len(records) / opts.duration, 1.0)
    expected = {r.event_id for r in rows if r.alert}
    done = [0.0]

    def drain() -> None:
        _drain(worker, collector, expected, len(records))
        done[0] = time.monotonic()

    begun = time.monotonic()
    stats, producer = _replay(settings, topics["input"], records, rate, collector, console,
                              opts.live, drain)
    if opts.stay and explorer:
        _hold(explorer, step)
    return _Streamed(records, rows, collector, producer, stats.seconds, done[0] - begun, rate,
                     explorer)


def _explorer(opts: DemoOptions, plan: ModelPlan, topics: dict[str, str], settings: Any,
              stack: contextlib.ExitStack, step: Step) -> str:
    """The live explorer on the run's topics (``--no-ui``: none, "")."""
    if not opts.ui:
        return ""
    from stream_detector.ui.process import start_explorer

    env = {"STREAM_DETECTOR_KAFKA_URL": settings.kafka_url,
           "STREAM_DETECTOR_REDIS_URL": settings.redis_url}
    url: str = stack.enter_context(
        start_explorer([plan.entry], topics, env, opts.out / "logs" / "ui.log"))
    step(f"explorer: {url} (anomalies live in the browser)")
    return url


def _hold(url: str, step: Step) -> None:
    """--stay: keep the worker, services and explorer up until Ctrl-C."""
    step(f"replay done; the explorer stays up at {url}: Ctrl-C ends the demo")
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)


@dataclass
class _Streamed:
    records: list[Any]
    rows: list[Any]
    collector: Collector
    producer: TimedProducer
    replay_seconds: float
    processed_seconds: float
    rate: float
    explorer: str = ""


def run_demo(opts: DemoOptions, console: Console) -> DemoRun:
    """Run every stage; see the module docstring. ``console`` shows steps and the live view."""
    started = time.monotonic()

    def step(text: str) -> None:
        elapsed = time.monotonic() - started
        console.print(f"[bold cyan]demo[/] [dim]{elapsed:5.1f}s[/] {escape(text)}",
                      highlight=False, soft_wrap=True)

    with interrupts_handled():
        data = prepare_data(opts)
        origin = "generated, anomalies labelled" if data.labels is not None else "as given"
        step(f"data: {data.path} ({origin})")
        plan = plan_model(opts, data)
        with contextlib.ExitStack() as stack:
            settings, card = _prepare(opts, data, plan, stack, step)
            run = _stream(opts, data, plan, stack, console, step, settings)
            step(stopping_line(opts))
    return _result(data, plan, card, run, time.monotonic() - started)


def stopping_line(opts: DemoOptions, *, done: bool = False) -> str:
    """What the demo stops (``done``: has stopped, after Ctrl-C): never the Kafka or Redis
    given with --kafka/--redis."""
    own = [name for name, url in (("Kafka", opts.kafka), ("redis-server", opts.redis)) if not url]
    if not own:
        verb = "the worker is stopped" if done else "stopping the worker"
        return f"{verb} (the given Kafka and Redis stay up)"
    if done:
        return f"the worker and the local {' and '.join(own)} are stopped"
    return f"stopping the worker and the local {' and '.join(own)}"


def _result(data: DemoData, plan: ModelPlan, card: Any, run: _Streamed, wall: float) -> DemoRun:
    from stream_detector.core.detection import DetectionParams
    from stream_detector.demo.data import quality_of, roc_auc_of

    latencies = run.collector.latency_ms(run.producer.times)
    unique = {r.event.event_id: r for r in run.collector.received}  # at-least-once
    ends = [(r.event.key, r.event.window_end) for r in unique.values()]
    summary = DemoSummary(
        kind=data.kind, records=len(run.records), keys=len({r.key for r in run.records}),
        windows=len(run.rows), anomalies=len(unique),
        offline_anomalies=sum(1 for r in run.rows if r.alert), quality=quality_of(data, ends),
        replay_seconds=run.replay_seconds, processed_seconds=run.processed_seconds,
        rate=run.rate, latency=latency_stats(latencies), wall_seconds=wall,
        model=f"{card.name} v{card.version} ({card.family})", cached_model=plan.cached,
        explorer=run.explorer, roc_auc=roc_auc_of(data, run.rows))
    return DemoRun(summary, data, run.rows, list(unique.values()), latencies,
                   card.thresholds.default, run.records,
                   float(card.training.get("train_fraction") or 0.0),
                   DetectionParams.from_card(card.detection).normalise)
