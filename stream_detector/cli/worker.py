"""``stream-detector worker``: the Faust scoring worker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stream_detector.cli.common import app, check_param, one_line_errors, settings_for

__all__ = ["worker"]

WORKER_FLAGS = {"input_topic": "--input", "output_topic": "--output",
                "dead_letter_topic": "--dead-letter"}


@app.command()
def worker(
    model: Annotated[
        list[Path],
        typer.Option("--model", "-m", help="model dir or registry root; repeat for several"),
    ],
    input_topic: Annotated[str | None, typer.Option("--input", help="topic to consume")] = None,
    output_topic: Annotated[
        str | None, typer.Option("--output", help="topic anomaly events go to")
    ] = None,
    dead_letter: Annotated[
        str | None, typer.Option("--dead-letter", help="topic invalid records go to")
    ] = None,
    kafka: Annotated[str | None, typer.Option(help="Kafka URL, kafka://HOST:PORT")] = None,
    redis: Annotated[str | None, typer.Option(help="Redis URL, redis://HOST:PORT/DB")] = None,
) -> None:
    """Run the Faust scoring worker: windows per key, ONNX Runtime, Redis thresholds.

    Example:

    \b
      stream-detector worker --model registry/nab --input records --output anomalies
    """
    from stream_detector.cli.checks import model_path, require_kafka, require_worker_host
    from stream_detector.worker.topics import check_topic_roles

    with one_line_errors():
        for path in model:
            check_param(model_path, path, "--model")
        settings = settings_for(WORKER_FLAGS, input_topic=input_topic,
                                output_topic=output_topic, dead_letter_topic=dead_letter,
                                kafka_url=kafka, redis_url=redis)
        check_topic_roles(settings)  # before any network: a loop is refused at once
        require_kafka(settings)  # Redis may be down: the worker then starts degraded
        require_worker_host(settings)
    from stream_detector.worker.app import run_worker

    run_worker(model, settings)

