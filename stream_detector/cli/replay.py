"""``stream-detector replay``: a history file into Kafka, paced."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from schemas.kinds import RecordKind
from stream_detector.cli.common import (
    KafkaOption,
    app,
    check_topic,
    interrupt_flag,
    one_line_errors,
    records_progress,
    say,
    settings_for,
)

__all__ = ["replay_command"]


@app.command(
    "replay",
    help=(
        "Stream a CSV, Parquet, HDF5, JSON or JSON lines file into Kafka as JSON records,"
        " keyed by series, store/item or source, partitioned like the Java client"
        " (murmur2).\n\n"
        "Timestamps are sent as ISO 8601 with a 'T' (2015-02-26T21:42:53); sales dates stay"
        " dates; event rows get epoch + row seconds and id STEM:ROW.\n\n"
        "Examples:\n\n\b\n"
        "  stream-detector replay Twitter_volume_AAPL.csv --topic records\n"
        "  stream-detector replay train.csv --kind sales --batch 100 --topic sales\n"
        "  stream-detector replay events.h5 --key detector-a --rate 5000 --limit 100000"
    ),
)
def replay_command(
    file: Annotated[
        Path, typer.Argument(help="the file to replay", metavar="FILE", show_default=False)
    ],
    topic: Annotated[
        str | None, typer.Option("--topic", "-t", help="topic (default: settings' input topic)")
    ] = None,
    kind: Annotated[
        RecordKind | None,
        typer.Option(help="record kind (default: inferred from the file)"),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(help="series id (default: file stem), one panel key (1/7), or event source"),
    ] = None,
    rate: Annotated[
        float | None, typer.Option(min=0.001, help="pace at this many records/s (default: max)")
    ] = None,
    batch: Annotated[
        int, typer.Option(min=1, max=10_000, help="records of one key per message (a JSON list)")
    ] = 1,
    limit: Annotated[int | None, typer.Option(min=1, help="send at most this many")] = None,
    order: Annotated[
        Literal["key", "time"], typer.Option(help="panels: key after key, or interleaved by time")
    ] = "key",
    kafka: KafkaOption = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    missing: Annotated[Literal["reject", "impute"], typer.Option(
        help="empty, NaN or infinite values: refuse the file (naming the row), or fill each "
             "in from the value before it and send it with imputed: true")] = "reject",
) -> None:
    from confluent_kafka import Producer

    from stream_detector.cli.checks import require_kafka
    from stream_detector.files import replay as replaying
    from stream_detector.files.history import load_source

    with one_line_errors():
        check_topic(topic, "--topic")
        source = load_source(file, kind=kind, key=key, order=order, limit=limit,
                             missing=missing)
        settings = settings_for(kafka_url=kafka)
        topic = topic or settings.input_topic
        require_kafka(settings)  # refused, wrong credentials or TLS: one line, in seconds
        from stream_detector.worker.topics import create_missing

        create_missing(settings, [topic])  # as a worker would: its partitions, not the broker's
        producer = Producer(replaying.producer_config(settings.confluent_config()))
        partitions = replaying.check_topic(producer, topic, settings.bootstrap_servers)
        stream = replaying.messages(source.records, batch)
        with interrupt_flag() as interrupted, \
                records_progress(f"{file.name} -> {topic}", source.total, progress) as advance:
            stats = replaying.send(producer, topic, stream, rate=rate, on_progress=advance,
                                   stop=interrupted.is_set)
    if stats.interrupted:
        say(f"interrupted: sent {stats.records:,} of {source.total:,} records in "
            f"{stats.messages:,} messages to {topic} ({stats.delivered:,} acknowledged); the "
            "rest were not sent")
        raise typer.Exit(130)
    say(
        f"sent {stats.records:,} {source.kind} records of {source.keys:,} key(s) in "
        f"{stats.messages:,} messages ({stats.bytes / 1e6:.1f} MB) to {topic} "
        f"({partitions} partition{'' if partitions == 1 else 's'}) in {stats.seconds:.2f} s: "
        f"{stats.records_per_second:,.0f} records/s"
    )

