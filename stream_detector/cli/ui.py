"""``stream-detector ui``: the live anomaly explorer in the browser."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stream_detector.cli.common import (
    KafkaOption,
    RedisOption,
    app,
    check_param,
    one_line_errors,
    say,
    settings_for,
)


@app.command(
    "ui",
    help=(
        "Serve the live anomaly explorer: a swim lane of keys over time coloured by severity,"
        " the anomaly table, one key's values with the expected values and its thresholds."
        " It follows the anomaly topic and the input topic from the start of what Kafka"
        " keeps, binds the settings' ui_host (127.0.0.1 by default) and fetches nothing from"
        " the internet. Thresholds are read from Redis; setting them from the page needs"
        " --allow-writes.\n\n"
        "Examples:\n\n\b\n"
        "  stream-detector ui --model registry/nab\n"
        "  stream-detector ui --events anomalies --records records --port 8080\n"
        "  stream-detector ui --model registry/nab --allow-writes"
    ),
)
def ui_command(
    model: Annotated[
        list[Path] | None,
        typer.Option("--model", "-m", help="model dir or registry root (quiet periods, card "
                     "thresholds); repeat for several"),
    ] = None,
    events: Annotated[
        str | None, typer.Option("--events", help="anomaly topic (default: settings' output)")
    ] = None,
    records: Annotated[
        str | None,
        typer.Option("--records", help="input topic for observed values (default: settings' "
                     "input; '' for none)"),
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="port (default: settings' ui_port; "
                                 "0: any free one)")
    ] = None,
    allow_writes: Annotated[
        bool, typer.Option("--allow-writes", help="let the page set thresholds in Redis")
    ] = False,
    from_end: Annotated[
        bool, typer.Option("--from-end", help="show only what arrives from now on")
    ] = False,
    kafka: KafkaOption = None,
    redis: RedisOption = None,
) -> None:
    from stream_detector.cli.checks import model_path
    from stream_detector.ui.run import UiOptions, serve

    with one_line_errors():
        for path in model or []:  # before Kafka: a mistyped path is not silently no model
            check_param(model_path, path, "--model")
        # topics through the settings, so a namespace prefixes them as it does the worker's
        settings = settings_for({"output_topic": "--events", "input_topic": "--records"},
                                kafka_url=kafka, redis_url=redis, output_topic=events,
                             input_topic=records or None)
        opts = UiOptions(models=model or [], allow_writes=allow_writes, from_end=from_end,
                         port=port, records_topic="" if records == "" else None)
        try:
            serve(settings, opts, lambda url: say(f"explorer: {url}"))
        except KeyboardInterrupt:
            pass
