"""``stream-detector alerts``: forward anomaly events to a Slack-compatible webhook."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stream_detector.cli.common import (
    KafkaOption,
    RedisOption,
    app,
    err_console,
    one_line_errors,
    say,
    settings_for,
)
from stream_detector.exceptions import ConfigurationError

if TYPE_CHECKING:
    from stream_detector.alerts.incidents import IncidentTracker
    from stream_detector.alerts.sinks.base import Sink
    from stream_detector.alerts.store import RedisIncidentStore
    from stream_detector.settings import Settings

__all__ = ["alerts_command"]

_DEFAULT_GROUP = "stream-detector-alerts"


def _log(text: str) -> None:
    err_console.print(text, highlight=False, markup=False, soft_wrap=True)


@app.command(
    "alerts",
    help=(
        "Forward anomaly events to a webhook (Slack-compatible JSON), one post per incident:"
        " the first anomaly of a key is posted, later ones within --suppress seconds are"
        " counted, and a 'resolved: N anomalies between T1 and T2' post follows once the key"
        " has been quiet for --suppress seconds. Time is event time (the events' window"
        " ends), advanced by the clock between events: a backlog read with --from-beginning"
        " is grouped as it happened. Offsets are committed after delivery (at"
        " least once); duplicate event ids are dropped, invalid messages logged and skipped."
        " A 4xx answer stops with exit code 1; 5xx and network errors are retried.\n\n"
        "Examples:\n\n\b\n"
        "  STREAM_DETECTOR_ALERT_WEBHOOK_URL=https://hooks.slack.com/services/T0/B0/XXXX"
        " stream-detector alerts\n"
        "  stream-detector alerts --webhook http://127.0.0.1:9000/hook --suppress 300"
        " --min-severity 20\n"
        "  stream-detector alerts --dry-run --from-beginning"
        " --exit-when-idle 10"
    ),
)
def alerts_command(
    webhook: Annotated[
        str | None,
        typer.Option(help="URL to POST to (its path is never logged); better from "
                          "STREAM_DETECTOR_ALERT_WEBHOOK_URL, which no process list shows",
                     show_default=False),
    ] = None,
    topic: Annotated[
        str | None, typer.Option("--topic", "-t", help="topic (default: settings' output topic)")
    ] = None,
    group: Annotated[
        str, typer.Option(help="consumer group (its committed offsets say what was sent)")
    ] = _DEFAULT_GROUP,
    suppress: Annotated[
        float, typer.Option(min=0.001, help="event-time seconds a key must be quiet to close "
                                            "its incident (window ends, not the wall clock)")
    ] = 900.0,
    min_severity: Annotated[
        float, typer.Option(min=0.0, max=100.0, help="ignore events of lower severity (0-100)")
    ] = 0.0,
    kafka: KafkaOption = None,
    sink: Annotated[
        str, typer.Option(help="where posts go, by a sink's name in "
                               "stream_detector/alerts/sinks/registry.py (webhook: POST to the "
                               "webhook URL; dry-run: print)")
    ] = "webhook",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print payloads on stdout instead of posting "
                                             "(--sink dry-run); starts at the group's "
                                             "offsets and open incidents, commits and "
                                             "stores neither")
    ] = False,
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning",
                           help="a new group starts at the topic's start (default: its end)")
    ] = False,
    max_seconds: Annotated[
        float | None, typer.Option(min=0.0, help="stop after this many seconds")
    ] = None,
    exit_when_idle: Annotated[
        float | None,
        typer.Option(min=0.0, help="stop once no message came for this many seconds (open "
                                  "incidents are kept and resolve in a later run)"),
    ] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="seconds per HTTP attempt")] = 10.0,
    retries: Annotated[int, typer.Option(min=0, help="retries on 5xx/network errors")] = 4,
    state: Annotated[
        bool, typer.Option(help="keep open incidents in Redis, so a restart resumes them "
                                "instead of paging again")
    ] = True,
    redis: RedisOption = None,
) -> None:
    from confluent_kafka import Consumer

    from stream_detector.alerts.consumer import AlertOptions, consumer_config, run_alerts
    from stream_detector.alerts.incidents import IncidentTracker
    from stream_detector.cli.checks import require_kafka
    from stream_detector.consumer_idle import ReadToEnd

    with one_line_errors():
        settings = settings_for(kafka_url=kafka, redis_url=redis)
        topic = topic or settings.output_topic
        if settings.namespace and group == _DEFAULT_GROUP:  # teams on one Kafka: own groups
            group = f"{settings.namespace}.{group}"
        from stream_detector.alerts.sinks.registry import sink_factory

        sink_factory(sink)  # a typo is refused with --dry-run too, not only at the real run
        preview = dry_run or sink == "dry-run"
        send = _sink("dry-run" if preview else sink, settings, webhook, timeout, retries)
        tracker = IncidentTracker(suppress, min_severity, time.monotonic)
        # a dry run starts where the group is (its offsets, its open incidents) and moves
        # neither: the real run after it still pages everything the preview printed
        store = _incident_store(settings, group, tracker) if state else None
        store = None if preview else store
        opts = AlertOptions(topic, max_seconds=max_seconds, exit_when_idle=exit_when_idle,
                            tick=min(1.0, suppress / 4), commit=not preview)
        require_kafka(settings)  # one line now, not a hundred client errors and exit 0
        conf = consumer_config(settings.confluent_config(), group, from_beginning)
        consumer = Consumer(conf)
        _log(f"alerts: {topic} -> {send.target}, "
             f"group {group}, suppress {suppress:g} s, min severity {min_severity:g}"
             + ("; dry run: the group's offsets and open incidents are read, never written"
                if preview else ""))
        _say_if_missing(consumer, topic)
        idle = ReadToEnd(time.monotonic())
        try:
            consumer.subscribe([topic], on_assign=idle.assigned)
            stats = run_alerts(consumer, tracker, send, opts, _log, store=store, idle=idle)
        except KeyboardInterrupt:
            _log("interrupted: " + ("a dry run commits nothing" if preview else
                                    "delivered offsets are committed")
                 + f"; open incidents {'are kept in Redis' if store else 'are not resolved'}")
            raise typer.Exit(130) from None
        finally:
            consumer.close()
    _log(f"alerts: {stats.messages} messages, {stats.invalid} invalid, "
         f"{tracker.duplicates} duplicates, {stats.opened} incidents opened, "
         f"{stats.resolved} resolved, {len(tracker.open_incidents)} still open"
         + (" (kept in Redis for the next run)" if store and tracker.open_incidents else ""))


def _say_if_missing(consumer: Any, topic: str) -> None:
    """One line when ``topic`` does not exist: alerts waits for it (the worker creates its
    output topic when it starts), but a typo would wait silently for ever."""
    from confluent_kafka import KafkaException

    try:
        known = consumer.list_topics(timeout=5.0).topics
    except KafkaException:
        return  # the broker was checked just before: the subscription says the rest
    if topic not in known:
        _log(f"{topic} does not exist (yet): alerts waits for it; if that is a typo, give "
             "the worker's --output (STREAM_DETECTOR_OUTPUT_TOPIC) as --topic")


def _sink(name: str, settings: Settings, webhook: str | None, timeout: float,
          retries: int) -> Sink:
    """The sink registered as ``name``, configured from the options and settings."""
    from stream_detector.alerts.sinks.base import SinkConfig
    from stream_detector.alerts.sinks.registry import build_sink

    url = webhook or (settings.alert_webhook_url.get_secret_value()
                      if settings.alert_webhook_url else None)
    return build_sink(name, SinkConfig(url, say, timeout=timeout, retries=retries))


def _incident_store(
    settings: Settings, group: str, tracker: IncidentTracker
) -> RedisIncidentStore:
    """The group's Redis incident store, with the incidents an earlier run left open
    resumed into ``tracker``; Redis down is a clear error (or run with --no-state)."""
    import redis as redis_lib

    from stream_detector.alerts.store import RedisIncidentStore
    from stream_detector.connectivity import describe_redis_error

    store = RedisIncidentStore(settings.redis_client(socket_timeout=5.0), group,
                               settings.namespace)
    try:
        states = store.load()
    except redis_lib.RedisError as exc:
        raise ConfigurationError(
            f"{describe_redis_error(settings, exc)} (alerts keeps open incidents there across "
            "restarts; --no-state runs without)") from None
    resumed = tracker.resume(states, time.time())
    if resumed:
        _log(f"resumed {resumed} open incident(s) of group {group} from Redis")
    return store
