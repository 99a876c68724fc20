"""The Faust app: wiring from Kafka to the pipeline and back, nothing else.

    input topic --lists of records, per partition and fetch (bulk_delivery.py), or Faust's
    stream event by event; batches of batch_max, batch_wait--> WorkerRuntime.process
        -> anomalies topic, dead-letter topic; key states -> changelog of table "key-state"

Web endpoints on ``web_host:web_port``: ``/health`` (200; ``ok``, or ``degraded`` while
Redis does not answer, or Kafka is unreachable or not fetching; see :mod:`.health`),
``/ready`` (200 once models are loaded and the first partition assignment is done, else
503), ``/metrics`` (Prometheus).

Consumer group settings are chosen for fast recovery: a short session timeout with frequent
heartbeats (a dead worker's partitions move within seconds), and, with
``group_instance_id`` set, static membership (a restarted worker rejoins with its old
partitions and no rebalance).
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faust
from faust.web import Request, Response, View

from stream_detector.connectivity import check_redis
from stream_detector.exceptions import ConnectionFailed
from stream_detector.logs import RepeatFilter, logging_config
from stream_detector.settings import Settings, get_settings
from stream_detector.worker import bulk_delivery, faust_fetch_wait, faust_patch, faust_raw_decode
from stream_detector.worker.acks import FlushThenAck
from stream_detector.worker.bulk_delivery import ChunkAcker
from stream_detector.worker.bulk_queue import BulkQueue
from stream_detector.worker.health import DELIVERY_STALL_SECONDS, health_document
from stream_detector.worker.heap import freeze_startup_heap
from stream_detector.worker.kafka_health import (
    coordination_failed,
    group_membership,
    kafka_status,
    topic_partitions,
)
from stream_detector.worker.messages import Message, messages_of
from stream_detector.worker.metrics import WorkerMetrics
from stream_detector.worker.models import ServedModels
from stream_detector.worker.report import ConsoleReporter
from stream_detector.worker.runtime import WorkerRuntime
from stream_detector.worker.shutdown import GroupWatch, ShutdownDeadline, exit_input_changed
from stream_detector.worker.stalls import StallGuard
from stream_detector.worker.table_store import TableStore
from stream_detector.worker.topics import ensure_topics

__all__ = ["create_app", "faust_app", "run_worker"]

log = logging.getLogger(__name__)

STATE_TABLE = "key-state"


def create_app(settings: Settings, model_paths: Sequence[Path]) -> faust.App:
    """A worker app scoring the models at ``model_paths`` (model dirs or registry roots).

    Raises
    ------
    ConnectionFailed
        Kafka or Redis refuses the settings (credentials, TLS, protocol), or Kafka does not
        answer; a Redis that is merely down is only logged (the worker starts degraded).
    """
    _check_redis(settings)
    faust_patch.install_rebalance_fixes()  # no records skipped around a rebalance (#12)
    # no 1.5 s fetch stalls; fewer, fuller fetches under load (#13)
    faust_fetch_wait.install(settings.fetch_max_wait, settings.fetch_min_bytes)
    if settings.fast_delivery:
        faust_patch.install()  # message delivery without four asyncio tasks per message
        faust_raw_decode.install()  # raw messages to events without the codec registry
    changelog = f"{settings.app_id}-{STATE_TABLE}-changelog"
    partitions = ensure_topics(settings, changelog=changelog)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    app = faust_app(settings, partitions)
    source = app.topic(settings.input_topic, value_serializer="raw", key_serializer="raw")
    output = app.topic(settings.output_topic, value_serializer="raw", key_serializer="raw")
    dead = app.topic(settings.dead_letter_topic, value_serializer="raw", key_serializer="raw")
    # bytes key and value types make Faust use the raw codec for the changelog both ways
    # (a schema= alone is not used when recovering: restored states would fail as JSON)
    table = app.Table(STATE_TABLE, partitions=partitions, key_type=bytes, value_type=bytes)
    metrics = WorkerMetrics()
    models = ServedModels(settings, model_paths, metrics)
    runtime = WorkerRuntime(
        models.runtimes, TableStore(table, settings.state_cache_keys), metrics,
        send_event=lambda k, v: output.send(key=k, value=v),
        send_dead=lambda k, v: dead.send(key=k or None, value=v),
    )
    state: dict[str, Any] = {"assigned": False, "partitions": partitions,
                             "changelog": changelog}
    console = ConsoleReporter(settings.anomaly_lines_per_second)
    for r in models.runtimes:
        metrics.model_info.labels(r.name, r.card.version, r.card.onnx_sha256).set(1)
        metrics.provider_info.labels(r.loaded.scorer.provider).set(1)

    queue = None
    if settings.bulk_delivery and bulk_delivery.install():  # records in lists (#13)
        queue = BulkQueue(settings.consumer_buffer, lambda: app.consumer_generation_id,
                          app.flow_control.is_active)
        bulk_delivery.attach(app, settings.input_topic, queue)
    _add_agent(app, settings, source, models, runtime, console, state, queue)
    _add_tasks(app, settings, models, runtime, state)
    _add_summary(app, settings, models, console, metrics)
    _add_pages(app, models, metrics, state)
    return app


def faust_app(settings: Settings, partitions: int) -> faust.App:
    """The Faust app: broker, web server, state folder and consumer group settings."""
    return faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap_servers}",  # the brokers the other clients use
        broker_credentials=settings.faust_broker_credentials(),
        store="memory://",
        topic_partitions=partitions,
        web_host=settings.web_host,
        web_bind=settings.web_host,  # web_host only names the URL; web_bind is the listen address
        web_port=web_port_now(settings),  # Faust refuses 0: "any free port" is chosen here
        datadir=str(settings.state_dir),
        producer_linger_ms=5,
        # the consumer fetches ahead while the agent scores: 100-record messages 375k ->
        # 415-465k records/s (a worker on 2 cores, issue #13)
        stream_buffer_maxsize=settings.consumer_buffer,
        consumer_max_fetch_size=settings.fetch_bytes,
        consumer_group_instance_id=settings.group_instance_id,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=settings.heartbeat_interval,
        broker_rebalance_timeout=settings.rebalance_timeout,
        consumer_metadata_max_age_ms=int(settings.metadata_max_age * 1000),
    )


def web_port_now(settings: Settings) -> int:
    """``settings.web_port``, or for 0 a port free on ``web_host`` now (the start-up log
    names it: /health, /ready and /metrics are found there)."""
    if settings.web_port:
        return settings.web_port
    family = socket.getaddrinfo(settings.web_host, 0, type=socket.SOCK_STREAM)[0][0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((settings.web_host, 0))
        return int(sock.getsockname()[1])


def _add_agent(
    app: faust.App, settings: Settings, source: faust.TopicT, models: ServedModels,
    runtime: WorkerRuntime, console: ConsoleReporter, state: dict[str, Any],
    queue: BulkQueue | None,
) -> None:
    """The scoring agent, its idle flush and the rebalance hooks, over one
    :class:`FlushThenAck` (events acked only after their states are flushed). With
    ``queue`` (bulk delivery) the agent takes the input topic's records from it in chunks;
    else from its Faust stream, event by event."""
    acks = FlushThenAck(runtime.start_flush, settings.state_flush_interval)  # see worker/acks.py
    state["acks"] = acks  # /health: a flush waiting on its outputs

    @app.agent(source)
    async def score(stream: Any) -> None:  # faust.StreamT lacks noack_take in its stubs
        await models.started.wait()  # never score with thresholds Redis has not confirmed
        frozen = freeze_startup_heap()  # full collections skip it (p99 latency, see heap.py)
        log.info("start-up heap frozen: %d objects outside garbage collection", frozen)
        log.info("%s delivery: %s", "bulk" if queue is not None else "Faust stream",
                 settings.input_topic)
        if queue is not None:
            await _take_chunks(app, settings, queue, runtime, console, acks, state)
            return
        acks.attach(stream)
        async for events in stream.noack_take(settings.batch_max, within=settings.batch_wait):
            async with acks.lock:
                await acks.ready()  # a flush overdue: wait for it (see worker/acks.py)
                done = await runtime.process([
                    Message(e.value, (m := e.message).topic, m.partition, m.offset,
                            m.timestamp, key=m.key, headers=m.headers)
                    for e in events
                ], flush=False)
                console.on_batch(done.records, done.windows, done.events)
                await acks.processed(events)

    # A task, not @app.timer: Faust's timers end at the stop signal, while its consumer then
    # waits for every taken message to be acked (wait_empty); the last batches' events were
    # held for a flush that never came, and a SIGTERM under load hung until the deadline.
    @app.task
    async def flush_when_idle() -> None:
        while True:  # cancelled with the app's futures, after the consumer has stopped
            await asyncio.sleep(settings.state_flush_interval)
            await acks.flush_idle()

    @app.on_partitions_revoked.connect
    async def on_revoked(*args: Any, **kwargs: Any) -> None:
        acks.drop()  # unacked: the partitions' new owner replays them from its state
        if queue is not None:
            queue.clear()
            if (acker := state.get("acker")) is not None:
                acker.drop()
        runtime.forget()

    @app.on_partitions_assigned.connect
    async def on_assigned(*args: Any, **kwargs: Any) -> None:
        now = topic_partitions(app, settings.input_topic)
        if now is not None and now != state["partitions"]:  # its states would go astray
            exit_input_changed(settings.input_topic, now, state["partitions"],
                               state["changelog"])
        runtime.forget()
        state["assigned"] = True


async def _take_chunks(app: faust.App, settings: Settings, queue: BulkQueue,
                       runtime: WorkerRuntime, console: ConsoleReporter,
                       acks: FlushThenAck, state: dict[str, Any]) -> None:
    """The agent's loop with bulk delivery: chunks of records in, acked after the flush."""
    acker = ChunkAcker(app.consumer)
    acks.attach(acker)
    state["acker"] = acker  # the revoke drops what it tracks
    while True:
        # no wait to fill a batch (batch_wait): the chunks of a fetch come together, and
        # those of the next ones gather while a batch is processed; waiting 5 ms for more
        # cost 5-10% of a core and ~5 ms of latency at 5,000 records/s (2 shared cores)
        chunks = await queue.take(settings.batch_max, 0.0)
        acker.track(chunks)  # from now on a rebalance or stop waits for their acks to commit
        async with acks.lock:
            await acks.ready()
            now = app.consumer_generation_id  # revoked while waiting (the revoke untracked
            chunks = [c for c in chunks if c.generation == now]  # them): the new owner's
            if not chunks:
                continue
            try:
                done = await runtime.process(
                    messages_of(r for c in chunks for r in c.records), flush=False)
            except BaseException:  # a bug or a stop: the agent ends; nothing waits for these
                acker.drop(chunks)
                raise
            console.on_batch(done.records, done.windows, done.events)
            await acks.processed(chunks)


def _check_redis(settings: Settings) -> None:
    """Refuse to start on Redis settings that can never work; start degraded on an outage."""
    try:
        check_redis(settings)
    except ConnectionFailed as exc:
        if not exc.outage:
            raise
        log.warning("%s; starting with the model cards' thresholds (degraded)", exc)


def _add_tasks(
    app: faust.App, settings: Settings, models: ServedModels, runtime: WorkerRuntime,
    state: dict[str, Any],
) -> None:
    @app.task
    async def start_thresholds() -> None:
        log.info("web (health, ready, metrics): http://%s:%s/", settings.web_host,
                 app.conf.web_port)
        await models.start()

    @app.timer(interval=settings.model_poll_interval)
    async def poll_models() -> None:
        if await models.refresh():
            runtime.set_models(models.runtimes)

    stalls = runtime.stalls = StallGuard(settings.session_timeout,
                                         confirm=3 * settings.heartbeat_interval + 1.0,
                                         membership=lambda: group_membership(app))

    @app.timer(interval=0.25)
    async def watch_stalls() -> None:  # a freeze longer than the session: see stalls.py
        stalls.tick()

    @app.timer(interval=1.0)
    async def gauges() -> None:
        m = runtime.metrics
        kafka = kafka_status(app, settings.input_topic)
        waiting = _undelivered_seconds(state)
        stalled = waiting > DELIVERY_STALL_SECONDS
        if stalled and not state.get("stalled"):  # once per stall, as /health turns degraded
            log.warning("outputs of a state flush undelivered for %.0f s (an output or "
                        "changelog topic gone? the broker refusing writes?): nothing is acked "
                        "or consumed until they are", waiting)
        state["stalled"] = stalled
        m.outputs_undelivered_seconds.set(waiting)
        m.degraded.set(1 if models.degraded or not kafka.healthy or stalled else 0)
        ages = [c.age_seconds for c in models.caches]
        m.threshold_cache_age.set(max(ages) if ages else 0.0)
        m.kafka_connected.set(1 if kafka.connected else 0)
        m.kafka_assigned_partitions.set(len(kafka.assigned_partitions))
        m.kafka_consumer_lag.set(math.nan if kafka.consumer_lag is None else kafka.consumer_lag)
        m.kafka_seconds_since_fetch.set(kafka.seconds_since_fetch or 0.0)


def _add_summary(
    app: faust.App, settings: Settings, models: ServedModels, console: ConsoleReporter,
    metrics: WorkerMetrics,
) -> None:
    if settings.summary_interval <= 0:
        return

    @app.timer(interval=settings.summary_interval)
    async def summary() -> None:
        if models.started.is_set():
            console.summary(kafka_status(app, settings.input_topic), models.caches,
                            metrics.dead_letters())


def _undelivered_seconds(state: dict[str, Any]) -> float:
    """How long the agent's state flush in flight has waited (0 before the agent runs)."""
    acks: FlushThenAck | None = state.get("acks")
    return acks.waiting_seconds() if acks is not None else 0.0


def _add_pages(
    app: faust.App, models: ServedModels, metrics: WorkerMetrics, state: dict[str, Any]
) -> None:
    @app.page("/health")
    async def health(web: View, request: Request) -> Response:
        kafka = kafka_status(app, models.settings.input_topic)
        return web.json(health_document(models.runtimes, models.caches, kafka,
                                        _undelivered_seconds(state)))

    @app.page("/ready")
    async def ready(web: View, request: Request) -> Response:
        # not while the key states are restored from the changelog: nothing is scored
        ok = (state["assigned"] and bool(models.runtimes) and not app.in_recovery
              and all(c.started for c in models.caches))
        return web.json({"ready": ok}, status=200 if ok else 503)

    @app.page("/metrics")
    async def prometheus(web: View, request: Request) -> Response:
        # Prometheus' filter, repeatable: ?name[]=a&name[]=b renders these samples only
        # (aiohttp's query is a multidict; Faust types it as a Mapping, without getall)
        getall = getattr(request.query, "getall", None)
        names: list[str] = getall("name[]", []) if getall is not None else []
        return web.bytes(metrics.render(names), content_type="text/plain; version=0.0.4")


class _Worker(faust.Worker):
    """Faust's worker with repeated warnings and errors rate-limited in every log handler,
    a deadline on its stop (:class:`ShutdownDeadline`), and SIGHUP stopping it as SIGTERM
    does."""

    deadline: ShutdownDeadline | None = None

    def _schedule_shutdown(self, signal: Any) -> None:
        if self.deadline is not None:
            self.deadline.start()
        super()._schedule_shutdown(signal)

    def _install_signal_handlers_unix(self) -> None:
        super()._install_signal_handlers_unix()
        # the terminal that started the worker closed: stop as on SIGTERM (flush, commit,
        # leave the group), not at once as SIGHUP's default did
        self.loop.add_signal_handler(signal.SIGHUP, self._on_sigterm)

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        for handler in logger.handlers:
            handler.addFilter(RepeatFilter())


def run_worker(model_paths: Sequence[Path], settings: Settings | None = None) -> None:
    """Run a worker until interrupted (blocks)."""
    settings = settings or get_settings()
    app = create_app(settings, model_paths)
    worker = _Worker(
        app, loglevel=settings.log_level.lower(),
        logging_config=logging_config(settings.log_format, settings.log_level),
    )
    worker.spinner = None  # the terminal spinner puts the root logger at DEBUG: slow
    worker.deadline = ShutdownDeadline(settings.shutdown_timeout)
    # aiokafka never restarts a failed group coordination: such a worker would idle forever
    GroupWatch(lambda: coordination_failed(app), settings.group_instance_id).start()
    worker.execute_from_commandline()
