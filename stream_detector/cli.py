"""The ``stream-detector`` command line (typer).

Heavy imports (torch, faust, onnxruntime) stay inside the commands that need them, so
``stream-detector --help`` and ``services status`` answer instantly.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn
from urllib.parse import urlsplit, urlunsplit

import typer
from rich.console import Console
from rich.markup import escape

from stream_detector.exceptions import ConfigurationError, StreamDetectorError

if TYPE_CHECKING:
    from schemas.card import ModelCard
    from stream_detector.settings import Settings
    from stream_detector.thresholds import ThresholdEntry, ThresholdStore

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
def demo() -> None:
    """Run the whole pipeline end to end on generated data (not built yet)."""
    _not_built("demo", 5)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench() -> None:
    """Run the benchmarks (not built yet)."""
    _not_built("bench", 4)


# --- shared by replay / thresholds / schemas ------------------------------------------------
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


def _safe_url(url: str) -> str:
    """The URL without its password, for messages.

    >>> _safe_url("redis://:s3cret@db:6379/0")
    'redis://:***@db:6379/0'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


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

    with _one_line_errors():
        source = replaying.load_source(file, kind=kind, key=key, order=order, limit=limit)
        settings = _settings(kafka_url=kafka)
        topic = topic or settings.input_topic
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


# --- thresholds -----------------------------------------------------------------------------
thresholds_app = typer.Typer(
    help=(
        "Read and change the thresholds workers use, in Redis (per model version and key;"
        " key '*' is the model default). Workers pick up changes within a second.\n\n"
        "MODEL is a model directory (its card.json gives name and version) or a name with"
        " --version.\n\n"
        "Examples:\n\n"
        "  stream-detector thresholds publish --model models/nab/3\n\n"
        "  stream-detector thresholds set models/nab/3 Twitter_volume_AAPL 0.42 --by alice\n\n"
        "  stream-detector thresholds get nab Twitter_volume_AAPL --version 3\n\n"
        "  stream-detector thresholds list nab --version 3 --json\n\n"
        "  stream-detector thresholds delete nab Twitter_volume_AAPL --version 3"
    ),
    no_args_is_help=True,
)
app.add_typer(thresholds_app, name="thresholds")

ModelArgument = Annotated[
    str,
    typer.Argument(
        help="model directory, or model name with --version", metavar="MODEL", show_default=False
    ),
]
KeyArgument = Annotated[
    str, typer.Argument(help="key, e.g. Twitter_volume_AAPL or 1/7; * = the default", metavar="KEY")
]
VersionOption = Annotated[
    str | None, typer.Option("--version", "-v", help="model version (when MODEL is a name)")
]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON instead of text")]
# schemas.card.DEFAULT_KEY, spelled out: importing schemas costs --help 0.4 s (a test pins it)
_DEFAULT_KEY = "*"
ThresholdMethod = Literal["manual", "percentile", "contamination", "fpr"]


@dataclass(frozen=True)
class _Model:
    name: str
    version: str
    card: ModelCard | None


def _model(model: str, version: str | None) -> _Model:
    """Name and version from a model directory's card, or from a name and --version."""
    path = Path(model)
    if path.is_dir() or (path.name == "card.json" and path.is_file()):
        from stream_detector.registry import read_card

        card = read_card(path)
        if version is not None and version != card.version:
            raise ConfigurationError(f"{path} holds version {card.version!r}, not {version!r}")
        return _Model(card.name, card.version, card)
    if version is None:
        raise ConfigurationError(
            f"{model!r} is not a model directory; give a directory, or a name with --version"
        )
    return _Model(model, version, None)


@contextlib.contextmanager
def _threshold_store(redis: str | None) -> Iterator[ThresholdStore]:
    """A store on the configured Redis; Redis errors become one line naming the server."""
    from redis.exceptions import RedisError

    from stream_detector.thresholds import ThresholdStore

    settings = _settings(redis_url=redis)
    client = settings.redis_client(socket_connect_timeout=2.0, socket_timeout=5.0)
    try:
        yield ThresholdStore(client)
    except RedisError as exc:
        reason = str(exc).rstrip(".")
        _fail(escape(f"Redis at {_safe_url(settings.redis_url)}: {reason}; start it with "
                     "`stream-detector services start` or pass --redis redis://HOST:PORT/DB"))
    finally:
        client.close()


def _entry_text(key: str, entry: ThresholdEntry | None, value: float, scope: str) -> str:
    where = f"{key}: {value!r} ({scope}"
    if entry is None:
        return where + ", from the model card)"
    return where + f", {entry.method}, set {entry.set_at} by {entry.set_by or 'unknown'})"


@thresholds_app.command("set")
def thresholds_set(
    model: ModelArgument,
    key: KeyArgument,
    value: Annotated[
        float,
        typer.Argument(help="threshold; a score above it is an anomaly", metavar="VALUE"),
    ],
    version: VersionOption = None,
    method: Annotated[ThresholdMethod, typer.Option(help="how it was chosen")] = "manual",
    by: Annotated[str | None, typer.Option("--by", help="who sets it (default user@host)")] = None,
    redis: RedisOption = None,
) -> None:
    """Set one key's threshold (KEY '*' sets the model default); workers see it within 1 s.

    Example: ``stream-detector thresholds set models/nab/3 Twitter_volume_AAPL 0.42``
    (a negative VALUE goes after ``--``: ``... set nab k -v 3 -- -0.5``)
    """
    with _one_line_errors():
        ref = _model(model, version)
        if not math.isfinite(value):
            raise ConfigurationError(f"threshold must be a finite number, got {value}")
        with _threshold_store(redis) as store:
            entry = store.set(ref.name, ref.version, key, value, method=method, set_by=by)
    _say(f"{ref.name} {ref.version} " + _entry_text(key, entry, entry.value, "set"))


@thresholds_app.command("get")
def thresholds_get(
    model: ModelArgument,
    key: Annotated[
        str, typer.Argument(help="key; * = the model default", metavar="KEY")
    ] = _DEFAULT_KEY,
    version: VersionOption = None,
    as_json: JsonOption = False,
    redis: RedisOption = None,
) -> None:
    """Show the threshold that applies to a key, as a worker resolves it. Exit 1 if none.

    Order: Redis per-key, Redis default, then the model card (when MODEL is a directory).

    Example: ``stream-detector thresholds get nab Twitter_volume_AAPL --version 3 --json``
    """
    with _one_line_errors():
        ref = _model(model, version)
        with _threshold_store(redis) as store:
            own, default = store.get(ref.name, ref.version, key), store.get(ref.name, ref.version)
    scope, entry = ("key", own) if own is not None else ("default", default)
    value = entry.value if entry is not None else None
    if entry is None and ref.card is not None:
        per_key = ref.card.thresholds.per_key
        scope = "card_key" if key in per_key else "card_default"
        value = per_key.get(key, ref.card.thresholds.default)
    if value is None:
        _fail(escape(f"no threshold for {key!r} of {ref.name} {ref.version} in Redis (and no "
                     "card to fall back on); set one with `stream-detector thresholds set`"))
    if as_json:
        extra = entry.model_dump() if entry is not None else {}
        print(json.dumps({"model": ref.name, "version": ref.version, "key": key,
                          **extra, "value": value, "scope": scope}))
    else:
        _say(_entry_text(key, entry, value, scope))


@thresholds_app.command("list")
def thresholds_list(
    model: ModelArgument,
    version: VersionOption = None,
    as_json: JsonOption = False,
    redis: RedisOption = None,
) -> None:
    """List a model version's thresholds in Redis ('*' is the default).

    Example: ``stream-detector thresholds list models/nab/3``
    """
    from rich.table import Table

    with _one_line_errors():
        ref = _model(model, version)
        with _threshold_store(redis) as store:
            entries = store.list(ref.name, ref.version)
    ordered = sorted(entries.items(), key=lambda kv: (kv[0] != _DEFAULT_KEY, kv[0]))
    if as_json:
        print(json.dumps({k: e.model_dump() for k, e in ordered}))
        return
    table = Table(title=f"{ref.name} {ref.version}: {len(entries)} threshold(s) in Redis")
    for column in ("key", "value", "method", "set at", "set by"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for k, e in ordered:
        table.add_row(escape(k), repr(e.value), e.method, e.set_at, escape(e.set_by))
    console.print(table)


@thresholds_app.command("publish")
def thresholds_publish(
    model: Annotated[Path, typer.Option("--model", "-m", help="model directory (card.json)")],
    redis: RedisOption = None,
) -> None:
    """Copy a model card's calibrated thresholds (default and per key) into Redis.

    Example: ``stream-detector thresholds publish --model models/nab/3``
    """
    from stream_detector.registry import read_card

    with _one_line_errors():
        card = read_card(model)
        with _threshold_store(redis) as store:
            count = store.publish_from_card(card)
    _say(f"published {count} threshold(s) of {card.name} {card.version} "
         f"(default {card.thresholds.default!r})")


@thresholds_app.command("delete")
def thresholds_delete(
    model: ModelArgument,
    key: KeyArgument,
    version: VersionOption = None,
    redis: RedisOption = None,
) -> None:
    """Remove a key's own threshold (it falls back to the default). Exit 1 if it had none.

    Example: ``stream-detector thresholds delete nab Twitter_volume_AAPL --version 3``
    """
    with _one_line_errors():
        ref = _model(model, version)
        with _threshold_store(redis) as store:
            removed = store.delete(ref.name, ref.version, key)
    if not removed:
        _fail(escape(f"{ref.name} {ref.version} has no threshold for {key!r}; nothing deleted"))
    _say(f"deleted {key} of {ref.name} {ref.version}")


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


from stream_detector import cli_models  # noqa: E402,F401 - registers train/score/evaluate


def main() -> None:
    """Console-script entry point: project errors become one red line and exit code 1."""
    try:
        app()
    except StreamDetectorError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise SystemExit(1) from exc
