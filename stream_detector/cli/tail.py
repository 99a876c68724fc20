"""``stream-detector tail``: print the anomaly topic as people (or scripts) read it."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

import typer

from stream_detector.cli.common import (
    KafkaOption,
    app,
    check_topic,
    err_console,
    one_line_errors,
    say,
    settings_for,
)
from stream_detector.consumer_idle import ReadToEnd
from stream_detector.logs import printable

__all__ = ["tail_command"]

_SHOWN_SKIPS = 3  # lines for messages that are not anomaly events; the rest are counted


@app.command(
    "tail",
    help=(
        "Print anomaly events from the output topic, one readable line each (key, window end,"
        " severity, score vs threshold, observed vs expected, top contributor), or the raw"
        " JSON with --json. Reads without a consumer group's commits: it never moves what"
        " `alerts` has seen.\n\n"
        "Examples:\n\n\b\n"
        "  stream-detector tail\n"
        "  stream-detector tail --from-beginning --exit-when-idle 5\n"
        "  stream-detector tail --json | jq .severity"
    ),
)
def tail_command(
    topic: Annotated[
        str | None, typer.Option("--topic", "-t", help="topic (default: settings' output topic)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one event JSON per line")] = False,
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="start at the topic's start (default: end)")
    ] = False,
    exit_when_idle: Annotated[
        float | None, typer.Option(min=0.0, help="stop after this many seconds without one")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="stop after this many events")] = None,
    kafka: KafkaOption = None,
) -> None:
    from confluent_kafka import Consumer

    from stream_detector.alerts.incidents import parse_event
    from stream_detector.cli.checks import require_kafka
    from stream_detector.exceptions import InvalidRecord
    from stream_detector.worker.console import anomaly_line

    with one_line_errors():
        check_topic(topic, "--topic")
        settings = settings_for(kafka_url=kafka)
        topic = topic or settings.output_topic
        require_kafka(settings)
        consumer = Consumer({
            **settings.confluent_config(), "group.id": f"stream-detector-tail-{uuid.uuid4().hex}",
            "enable.auto.commit": False, "enable.partition.eof": True,
            "auto.offset.reset": "earliest" if from_beginning else "latest"})
    shown, skipped, idle = 0, 0, ReadToEnd(time.monotonic())
    try:
        consumer.subscribe([topic], on_assign=idle.assigned)
        while limit is None or shown < limit:
            if exit_when_idle is not None and idle.over(time.monotonic(), exit_when_idle):
                break
            msg = consumer.poll(min(0.5, exit_when_idle or 0.5))
            if msg is None:
                continue
            error, partition = msg.error(), msg.partition() or 0
            if error is not None:
                idle.error(error.code(), partition)
                continue
            idle.message(partition, time.monotonic())
            try:
                event = parse_event(msg.value())
            except InvalidRecord as exc:
                skipped += 1
                if skipped <= _SHOWN_SKIPS:
                    err_console.print(f"skipped offset {msg.offset()}: {printable(str(exc))}",
                                      markup=False, highlight=False, soft_wrap=True)
                if skipped == _SHOWN_SKIPS and shown == 0:  # 800 such lines for a records topic
                    err_console.print(f"{topic} does not hold anomaly events (a records "
                                      "topic? tail reads the worker's --output); further "
                                      "skipped messages are only counted", markup=False,
                                      highlight=False, soft_wrap=True)
                continue
            say(event.model_dump_json() if as_json else anomaly_line(event))
            shown += 1
        if skipped > _SHOWN_SKIPS:
            err_console.print(f"skipped {skipped:,} messages that are not anomaly events",
                              markup=False, highlight=False)
        if shown == 0 and exit_when_idle is not None:
            err_console.print(_nothing_shown(consumer, topic, from_beginning, exit_when_idle),
                              markup=False, highlight=False, soft_wrap=True)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()


def _nothing_shown(consumer: Any, topic: str, from_beginning: bool, idle: float) -> str:
    """Why ``tail --exit-when-idle`` printed nothing: a quiet topic, or a mistyped one."""
    where = "from its start" if from_beginning else "since tail started"
    note = f"no anomaly events in {topic} {where} (idle {idle:g} s)"
    if topic not in consumer.list_topics(timeout=5.0).topics:
        note += ("; that topic does not exist: check --topic (the worker's --output, or "
                 "STREAM_DETECTOR_OUTPUT_TOPIC)")
    return note
