"""What every ``stream-detector`` command shares: the root app, consoles, one-line errors,
settings with command-line overrides, and the common options.

Command modules import from here and register on :data:`app`; :mod:`stream_detector.cli.main`
imports every command module and holds the entry point. Nothing here imports a command module.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from stream_detector.exceptions import ConfigurationError, StreamDetectorError

if TYPE_CHECKING:
    from stream_detector.settings import Settings

__all__ = [
    "KafkaOption", "RedisOption", "app", "check_param", "check_topic", "console",
    "err_console", "fail", "fitted_title", "interrupt_flag", "one_line_errors",
    "records_progress",
    "require_given", "say", "settings_for", "usage_error", "warn",
]

app = typer.Typer(
    help=(
        "Real-time anomaly detection for live Kafka feeds.\n\n"
        "Examples:\n\n\b\n"
        "  stream-detector services start    # local Kafka + Redis\n"
        "  stream-detector services status --json"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
console = Console()
err_console = Console(stderr=True)

def check_param(check: Callable[[Path], Path | None], value: Path, flag: str) -> None:
    """Run a path callback outside click, as one ``error: --flag: ...`` line."""
    try:
        check(value)
    except typer.BadParameter as exc:
        raise ConfigurationError(f"invalid value for {flag}: {exc.message}") from None


def check_topic(topic: str | None, flag: str) -> None:
    """A topic given on the command line must be one Kafka accepts: one line naming the flag,
    before any file is read or service reached (ConfigurationError)."""
    from stream_detector.constants import topic_name_problem

    problem = topic_name_problem(topic) if topic is not None else None
    if problem:
        raise ConfigurationError(f"{flag}: {problem}")


def require_given(kafka: str | None, redis: str | None) -> None:
    """Services named on the command line must answer before any work starts."""
    from stream_detector.cli.checks import require_kafka, require_redis

    if kafka is not None:
        require_kafka(settings_for(kafka_url=kafka))
    if redis is not None:
        require_redis(settings_for(redis_url=redis))


def say(text: str) -> None:
    """One plain line on stdout, never wrapped (scripts grep it)."""
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def fail(message: str) -> NoReturn:
    err_console.print(f"[red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(1)


def warn(message: str) -> None:
    """One yellow ``warning:`` line on stderr (``message`` is rich markup: escape values)."""
    err_console.print(f"[yellow]warning:[/] {message}", highlight=False, markup=True,
                      soft_wrap=True)


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Expected failures (bad input, services down) end as one red line and exit code 1."""
    try:
        yield
    except StreamDetectorError as exc:
        fail(escape(shortened(str(exc))))
    except OSError as exc:
        fail(escape(shortened(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))))


MAX_ERROR_CHARS = 1000  # an error line quoting a whole cell (a 386 KB JSON value) was unreadable


def shortened(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` within ``limit`` characters: its head and its tail (where the advice is),
    with how much was left out between them.

    >>> out = shortened("x" * 3000 + "; fix the row")
    >>> len(out), out[708:744], out.endswith("x; fix the row")
    (993, 'xx … (2,053 characters left out) … x', True)
    """
    if len(text) <= limit:
        return text
    tail = min(len(text) // 4, limit // 4, 300)
    head = limit - tail - 40
    cut = len(text) - head - tail
    return f"{text[:head]} … ({cut:,} characters left out) … {text[-tail:]}"


def settings_for(flags: Mapping[str, str] | None = None, **overrides: str | None) -> Settings:
    """Process settings, with command-line values (``--kafka``, ``--redis``, topics) on top.

    Raises ConfigurationError naming each invalid value by its flag (``flags``: field ->
    flag, over :data:`~stream_detector.settings.URL_FLAGS`) when the command line gave it,
    else by its variable."""
    from stream_detector.settings import URL_FLAGS, get_settings, settings_with

    if all(v is None for v in overrides.values()):
        return get_settings()
    return settings_with(overrides, {**URL_FLAGS, **(flags or {})})


KafkaOption = Annotated[
    str | None, typer.Option("--kafka", help="Kafka URL, kafka://HOST:PORT (default: settings)")
]
RedisOption = Annotated[
    str | None, typer.Option("--redis", help="Redis URL, redis://HOST:PORT/DB (default: settings)")
]


@contextlib.contextmanager
def interrupt_flag() -> Iterator[threading.Event]:
    """Within the block, a first Ctrl-C (SIGINT) sets the yielded flag instead of raising,
    so a loop can stop between steps (not inside a C call that cannot take the exception);
    a second one raises ``KeyboardInterrupt`` as usual. The old handler comes back after."""
    flag = threading.Event()

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    old = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, old)


@contextlib.contextmanager
def records_progress(title: str, total: int, enabled: bool) -> Iterator[Callable[[int], None]]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    title, width = fitted_title(title, total, err_console.width)
    columns = (TextColumn("{task.description}"), BarColumn(bar_width=width),
               MofNCompleteColumn(), TextColumn("records"), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=err_console, disable=not enabled, transient=False) as bar:
        task = bar.add_task(escape(title), total=total)
        yield lambda n: bar.advance(task, n)


def fitted_title(title: str, total: int, columns: int) -> tuple[str, int]:
    """A progress line's title and bar width (characters) that fit ``columns``: the bar
    shrinks from 40 to 10, then the title is cut with an ellipsis (rich would cut the counts
    and times at the line's end instead).

    >>> fitted_title("AAPL.csv -> records", 15902, 120)
    ('AAPL.csv -> records', 40)
    >>> fitted_title("Twitter_volume_AAPL.csv -> records", 158902, 80)
    ('Twitter_volume_AAPL.csv -> rec…', 10)
    >>> fitted_title("Twitter_volume_AAPL.csv -> records", 12, 80)
    ('Twitter_volume_AAPL.csv -> records', 15)
    """
    # counts "n/total", " records", two clocks of 7 and the five column gaps
    room = columns - (2 * len(str(total)) + 1) - len("records") - 2 * 7 - 5
    if len(title) + 10 > room:
        title = title[:max(7, room - 11)] + "\u2026"
    return title, max(5, min(40, room - len(title)))


def usage_error(exc: Exception) -> NoReturn:
    ctx = getattr(exc, "ctx", None)
    code = int(getattr(exc, "exit_code", 2))
    if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
        console.print(ctx.get_help(), highlight=False)
        raise SystemExit(code)
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    message = message.replace("Value error, ", "")  # pydantic's prefix on typer's Literal check
    hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    err_console.print(f"[red]error:[/] {escape(message)}{escape(hint)}",
                      highlight=False, soft_wrap=True)
    raise SystemExit(code)
