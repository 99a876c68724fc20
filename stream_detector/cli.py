"""The ``stream-detector`` command line (typer).

Heavy imports (torch, faust, onnxruntime) stay inside the commands that need them, so
``stream-detector --help`` and ``services status`` answer instantly.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from stream_detector.exceptions import ConfigurationError, StreamDetectorError

if TYPE_CHECKING:
    from stream_detector.settings import Settings

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
    """Stop the services that ``services start`` started (and nothing else: a recorded pid
    that now belongs to another process is left alone)."""
    from stream_detector import services

    cache = _cache_dir(cache_dir)
    state = services.load_state(cache)
    for name, handle in state.items():
        if not services.is_alive(handle.pid):
            _say(f"{name}: was not running")
        elif services.owns(handle):
            services.stop_handle(handle)
            _say(f"{name}: stopped (pid {handle.pid})")
        else:  # a stale state file: that pid now belongs to someone else's process
            _say(f"{name}: left alone: pid {handle.pid} is no longer the {name} that "
                 "`services start` started")
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
    from stream_detector.cli_checks import model_path, require_kafka

    with _one_line_errors():
        for path in model:
            _check_param(model_path, path, "--model")
        settings = _settings(input_topic=input_topic, output_topic=output_topic,
                             dead_letter_topic=dead_letter, kafka_url=kafka, redis_url=redis)
        require_kafka(settings)  # Redis may be down: the worker then starts degraded
    from stream_detector.app import run_worker

    run_worker(model, settings)


@app.command(
    help=(
        "Run the whole pipeline end to end: local Kafka and redis-server (or --kafka/--redis),"
        " data with labelled anomalies, a trained model (cached under --out), thresholds in"
        " Redis, the worker, a replay paced over --duration, live anomalies, a summary and an"
        " HTML report (its path is the last line).\n\n"
        "Examples:\n\n"
        "  stream-detector demo\n\n"
        "  stream-detector demo --kind sales --duration 30\n\n"
        "  stream-detector demo --kind events --kafka kafka://127.0.0.1:9092 "
        "--redis redis://127.0.0.1:6379/0"
    ),
)
def demo(
    kind: Annotated[
        Literal["series", "sales", "events"], typer.Option(help="record kind to demonstrate")
    ] = "series",
    duration: Annotated[
        float, typer.Option(min=1.0, help="seconds the replay should last (sets the pace)")
    ] = 60.0,
    data: Annotated[
        Path | None, typer.Option(help="replay this file instead (no labels: no precision)")
    ] = None,
    kafka: Annotated[str | None, typer.Option(help="use this Kafka, kafka://HOST:PORT")] = None,
    redis: Annotated[str | None, typer.Option(help="use this Redis, redis://HOST:PORT/DB")] = None,
    rate: Annotated[
        float | None, typer.Option(min=0.001, help="records/s (default: records / duration)")
    ] = None,
    out: Annotated[Path, typer.Option(help="data, model cache and report")] = Path("runs/demo"),
    live: Annotated[bool, typer.Option(help="live progress and anomaly table")] = True,
    ui: Annotated[bool, typer.Option(help="the live explorer in the browser (its URL is shown)")
                  ] = True,
    stay: Annotated[bool, typer.Option(help="after the replay keep the explorer, worker and "
                                       "services up until Ctrl-C")] = False,
) -> None:
    with _one_line_errors():
        _require_given(kafka, redis)  # before the data and the training, not 30 s later
    from stream_detector.demo import DemoOptions
    from stream_detector.demo_run import run_demo
    from stream_detector.demo_summary import summary_lines
    from stream_detector.report import write_report

    opts = DemoOptions(kind=kind, duration=duration, data=data, kafka=kafka, redis=redis,
                       rate=rate, out=out, live=live, ui=ui, stay=stay)
    with _one_line_errors():
        try:
            run = run_demo(opts, err_console)
            report = write_report(run, out / f"report-{run.data.kind}.html")
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted:[/] the worker and the services are stopped")
            raise typer.Exit(130) from None
    for line in summary_lines(run.summary):
        _say(line)
    _say(f"report: {report}")


@app.command()
def bench(
    full: Annotated[bool, typer.Option("--full", help="longer runs, more repetitions")] = False,
) -> None:
    """Run the benchmarks (scoring ceiling, worker end to end, latency); results go to
    benchmarks/results/ as JSON and Markdown, each figure a ratio to a baseline of the same run.

    Example: ``stream-detector bench``
    """
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    if not (root / "benchmarks" / "__main__.py").is_file():
        _fail("the benchmarks ship with the source tree; run this from a checkout")
    args = [sys.executable, "-m", "benchmarks", *(["--full"] if full else [])]
    raise typer.Exit(subprocess.call(args, cwd=root))  # noqa: S603 - fixed argv


# --- shared by replay / thresholds / schemas ------------------------------------------------
def _check_param(check: Callable[[Path], Path | None], value: Path, flag: str) -> None:
    """Run a path callback outside click, as one ``error: --flag: ...`` line."""
    try:
        check(value)
    except typer.BadParameter as exc:
        raise ConfigurationError(f"invalid value for {flag}: {exc.message}") from None


def _require_given(kafka: str | None, redis: str | None) -> None:
    """Services named on the command line must answer before any work starts."""
    from stream_detector.cli_checks import require_kafka, require_redis

    if kafka is not None:
        require_kafka(_settings(kafka_url=kafka))
    if redis is not None:
        require_redis(_settings(redis_url=redis))


def _say(text: str) -> None:
    """One plain line on stdout, never wrapped (scripts grep it)."""
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def _fail(message: str) -> NoReturn:
    err_console.print(f"[red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(1)


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    """Expected failures (bad input, services down) end as one red line and exit code 1."""
    try:
        yield
    except StreamDetectorError as exc:
        _fail(escape(str(exc)))
    except OSError as exc:
        _fail(escape(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")))


def _settings(**overrides: str | None) -> Settings:
    """Process settings, with command-line URLs (``--kafka``, ``--redis``) on top."""
    from pydantic import ValidationError

    from stream_detector.settings import Settings, get_settings

    given: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return get_settings()
    try:  # the constructor, not model_validate: the environment still fills the other fields
        return Settings(**given)
    except ValidationError as exc:
        raise ConfigurationError(exc.errors(include_url=False)[0]["msg"]) from None


KafkaOption = Annotated[
    str | None, typer.Option("--kafka", help="Kafka URL, kafka://HOST:PORT (default: settings)")
]
RedisOption = Annotated[
    str | None, typer.Option("--redis", help="Redis URL, redis://HOST:PORT/DB (default: settings)")
]


# --- replay ---------------------------------------------------------------------------------
@app.command(
    "replay",
    help=(
        "Stream a CSV, Parquet, HDF5 or JSON file into Kafka as JSON records, keyed by"
        " series, store/item or source, partitioned like the Java client (murmur2).\n\n"
        "Timestamps are sent as ISO 8601 with a 'T' (2015-02-26T21:42:53); sales dates stay"
        " dates; event rows get epoch + row seconds and id STEM:ROW.\n\n"
        "Examples:\n\n"
        "  stream-detector replay Twitter_volume_AAPL.csv --topic records\n\n"
        "  stream-detector replay train.csv --kind sales --batch 100 --topic sales\n\n"
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
        Literal["series", "sales", "events"] | None,
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
) -> None:
    from confluent_kafka import Producer

    from stream_detector import replay as replaying
    from stream_detector.cli_checks import require_kafka
    from stream_detector.history import load_source

    with _one_line_errors():
        source = load_source(file, kind=kind, key=key, order=order, limit=limit)
        settings = _settings(kafka_url=kafka)
        topic = topic or settings.input_topic
        require_kafka(settings)  # refused, wrong credentials or TLS: one line, in seconds
        producer = Producer(replaying.producer_config(settings.confluent_config()))
        partitions = replaying.check_topic(producer, topic, settings.bootstrap_servers)
        stream = replaying.messages(source.records, batch)
        with _records_progress(f"{file.name} -> {topic}", source.total, progress) as advance:
            stats = replaying.send(producer, topic, stream, rate=rate, on_progress=advance)
    _say(
        f"sent {stats.records:,} {source.kind} records of {source.keys:,} key(s) in "
        f"{stats.messages:,} messages ({stats.bytes / 1e6:.1f} MB) to {topic} "
        f"({partitions} partitions) in {stats.seconds:.2f} s: "
        f"{stats.records_per_second:,.0f} records/s"
    )


@contextlib.contextmanager
def _records_progress(title: str, total: int, enabled: bool) -> Iterator[Callable[[int], None]]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("records"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, disable=not enabled, transient=False) as bar:
        task = bar.add_task(escape(title), total=total)
        yield lambda n: bar.advance(task, n)


# --- schemas --------------------------------------------------------------------------------
schemas_app = typer.Typer(
    help="The wire contracts (records, anomaly events, dead letters, model card).",
    no_args_is_help=True,
)
app.add_typer(schemas_app, name="schemas")


@schemas_app.command("export")
def schemas_export(
    directory: Annotated[
        Path, typer.Argument(help="folder to write (created if missing)", metavar="DIR")
    ],
) -> None:
    """Write one JSON Schema file per contract, for producers in any language.

    Example: ``stream-detector schemas export schemas-json/``
    """
    from schemas.export import export_json_schemas

    with _one_line_errors():
        for path in export_json_schemas(directory):
            _say(str(path))


from stream_detector import (  # noqa: E402,F401 - register commands
    cli_alerts,
    cli_models,
    cli_tail,
    cli_thresholds,
    cli_ui,
)


def main() -> None:
    """Console-script entry point: every user error ends as one line and a non-zero exit.

    Click's usage errors (a bad option value, a missing file: exit code 2) are printed as
    one line instead of click's boxed block; project errors as one red line, exit code 1.
    """
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:  # typer's click: usage errors, exit code 2
        _usage_error(exc)
    except typer.Abort:
        raise SystemExit(130) from None
    except StreamDetectorError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise SystemExit(1) from None
    raise SystemExit(code if isinstance(code, int) else 0)


def _usage_error(exc: Exception) -> NoReturn:
    ctx = getattr(exc, "ctx", None)
    code = int(getattr(exc, "exit_code", 2))
    if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
        console.print(ctx.get_help(), highlight=False)
        raise SystemExit(code)
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    err_console.print(f"[red]error:[/] {escape(message)}{escape(hint)}",
                      highlight=False, soft_wrap=True)
    raise SystemExit(code)
