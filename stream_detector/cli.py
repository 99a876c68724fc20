"""The ``stream-detector`` command line (typer).

Heavy imports (torch, faust, onnxruntime) stay inside the commands that need them, so
``stream-detector --help`` and ``services status`` answer instantly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from stream_detector.exceptions import StreamDetectorError

__all__ = ["app", "main"]

app = typer.Typer(
    help=(
        "Real-time anomaly detection for live Kafka feeds.\n\n"
        "Examples:\n\n"
        "  stream-detector services start    # local Kafka + Redis\n\n"
        "  stream-detector services status --json"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
services_app = typer.Typer(
    help="Run a local Kafka broker and redis-server (loopback only) for trying things out.",
    no_args_is_help=True,
)
app.add_typer(services_app, name="services")

console = Console()
err_console = Console(stderr=True)


def _cache_dir(cache_dir: Path | None) -> Path:
    from stream_detector.settings import get_settings

    return cache_dir or get_settings().cache_dir


CacheOption = Annotated[
    Path | None,
    typer.Option(help="cache folder (default: settings' cache_dir, ~/.cache/stream-detector)"),
]


@services_app.command("start")
def services_start(cache_dir: CacheOption = None) -> None:
    """Start Kafka and Redis in the background and print their URLs (idempotent).

    Example: ``stream-detector services start``
    """
    from stream_detector import services

    cache = _cache_dir(cache_dir)
    handles = {k: h for k, h in services.load_state(cache).items() if services.handle_ready(h)}
    data_root = cache / "services"
    if "redis" not in handles:
        handles["redis"] = services.RedisServer().start(
            data_dir=data_root / "redis", port=6379, attached=False
        )
    if "kafka" not in handles:
        with console.status("starting Kafka (first run fetches about 50 MB of jars)..."):
            handles["kafka"] = services.KafkaBroker(cache).start(
                data_dir=data_root / "kafka", port=9092, attached=False
            )
    services.save_state(cache, handles)
    for name in ("kafka", "redis"):
        console.print(f"{name}: {handles[name].url}  (pid {handles[name].pid})")
    console.print(
        f"export STREAM_DETECTOR_KAFKA_URL={handles['kafka'].url} "
        f"STREAM_DETECTOR_REDIS_URL={handles['redis'].url}",
        soft_wrap=True,
        highlight=False,
    )


@services_app.command("stop")
def services_stop(cache_dir: CacheOption = None) -> None:
    """Stop the services that ``services start`` started."""
    from stream_detector import services

    cache = _cache_dir(cache_dir)
    state = services.load_state(cache)
    for name, handle in state.items():
        services.stop_handle(handle)
        console.print(f"{name}: stopped")
    services.clear_state(cache)
    if not state:
        console.print("nothing was running")


@services_app.command("status")
def services_status(
    as_json: Annotated[
        bool, typer.Option("--json", help='print {"kafka": URL, "redis": URL}')
    ] = False,
    cache_dir: CacheOption = None,
) -> None:
    """Show whether the local services answer; exits 1 when either is down."""
    from stream_detector import services

    state = services.load_state(_cache_dir(cache_dir))
    up = {name: state[name].url for name in ("kafka", "redis")
          if name in state and services.handle_ready(state[name])}
    if as_json:
        print(json.dumps({"kafka": up.get("kafka"), "redis": up.get("redis")}))
    else:
        for name in ("kafka", "redis"):
            console.print(f"{name}: {up.get(name, 'down')}")
    if len(up) != 2:
        raise typer.Exit(1)


def _not_built(name: str, issue: int) -> None:
    err_console.print(f"[red]error:[/] `stream-detector {name}` is not built yet (issue #{issue}).")
    raise typer.Exit(2)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train() -> None:
    """Train a model offline and export it to ONNX (not built yet)."""
    _not_built("train", 3)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def evaluate() -> None:
    """Evaluate a model against labelled data (not built yet)."""
    _not_built("evaluate", 3)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def score() -> None:
    """Score a file offline through ONNX Runtime (not built yet)."""
    _not_built("score", 3)


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

    Example: ``stream-detector worker --model registry/nab --input records --output anomalies``
    """
    from stream_detector.app import run_worker
    from stream_detector.settings import Settings

    overrides = {
        "input_topic": input_topic, "output_topic": output_topic,
        "dead_letter_topic": dead_letter, "kafka_url": kafka, "redis_url": redis,
    }
    given: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    settings = Settings(**given)  # explicit options win over STREAM_DETECTOR_* variables
    run_worker(model, settings)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def replay() -> None:
    """Stream a file into Kafka (not built yet)."""
    _not_built("replay", 4)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def thresholds() -> None:
    """Get, set, list and publish thresholds in Redis (not built yet)."""
    _not_built("thresholds", 4)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def demo() -> None:
    """Run the whole pipeline end to end on generated data (not built yet)."""
    _not_built("demo", 5)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench() -> None:
    """Run the benchmarks (not built yet)."""
    _not_built("bench", 4)


def main() -> None:
    """Console-script entry point: project errors become one red line and exit code 1."""
    try:
        app()
    except StreamDetectorError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise SystemExit(1) from exc
