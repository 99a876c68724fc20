"""``stream-detector services``: a local Kafka broker and redis-server (loopback only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from stream_detector.cli.common import app, console, err_console, fail, one_line_errors, say

if TYPE_CHECKING:
    from stream_detector.services.process import ServiceHandle

__all__ = ["services_app"]

services_app = typer.Typer(
    help="Run a local Kafka broker and redis-server (loopback only) for trying things out.",
    no_args_is_help=True,
)
app.add_typer(services_app, name="services")

def _cache_dir(cache_dir: Path | None) -> Path:
    from stream_detector.settings import get_settings

    # absolute: the services' pids, data and jars must not depend on where a later call runs
    return (cache_dir or get_settings().cache_dir).expanduser().absolute()


CacheOption = Annotated[
    Path | None,
    typer.Option(help="cache folder (default: settings' cache_dir, ~/.cache/stream-detector)"),
]


@services_app.command("start")
def services_start(cache_dir: CacheOption = None) -> None:
    """Start Kafka and Redis in the background and print their URLs (idempotent).

    Example:

    \b
      stream-detector services start
    """
    from stream_detector.cli.checks import writable_folder
    from stream_detector.services.kafka import KafkaBroker
    from stream_detector.services.local import handle_ready, last_ports, load_state, save_state
    from stream_detector.services.redis import RedisServer

    cache = _cache_dir(cache_dir)
    data_root = cache / "services"
    with one_line_errors():
        writable_folder(data_root, "STREAM_DETECTOR_CACHE_DIR (--cache-dir)")
    handles = {k: h for k, h in load_state(cache).items() if handle_ready(h)}
    kept = [name for name, folder in (("kafka", "kafka/data"), ("redis", "redis/appendonlydir"))
            if name not in handles and (data_root / folder).is_dir()]
    ports = last_ports(cache)
    if "redis" not in handles:
        handles["redis"] = RedisServer().start(
            data_dir=data_root / "redis", port=ports["redis"], attached=False
        )
        save_state(cache, handles)  # recorded now: if Kafka fails, `stop` (or a rerun) finds it
    if "kafka" not in handles:
        with console.status("starting Kafka (first run fetches about 50 MB of jars)..."):
            handles["kafka"] = KafkaBroker(cache).start(
                data_dir=data_root / "kafka", port=ports["kafka"], attached=False
            )
    save_state(cache, handles)
    for name in ("kafka", "redis"):
        moved = (f"; port {ports[name]} was taken: run the export line below again"
                 if handles[name].port != ports[name] else "")
        console.print(f"{name}: {handles[name].url}  (pid {handles[name].pid}){moved}",
                      soft_wrap=True, highlight=False)
    if kept:  # a worker resumes its key states, a key its threshold set by hand
        console.print(f"kept from earlier runs in {data_root}: topics, consumer offsets, worker "
                      "key states and thresholds (`stream-detector services stop --wipe` "
                      "starts the next run empty)", soft_wrap=True, highlight=False)
    console.print(
        f"export STREAM_DETECTOR_KAFKA_URL={handles['kafka'].url} "
        f"STREAM_DETECTOR_REDIS_URL={handles['redis'].url}",
        soft_wrap=True,
        highlight=False,
    )


@services_app.command("stop")
def services_stop(
    cache_dir: CacheOption = None,
    wipe: Annotated[bool, typer.Option(
        "--wipe", help="also delete their data (topics, consumer offsets, worker key states, "
        "thresholds): the next start is empty")] = False,
) -> None:
    """Stop the services that ``services start`` started (and nothing else: a recorded pid
    that now belongs to another process is left alone). Their data stays for the next
    start unless ``--wipe``.

    Example:

    \b
      stream-detector services stop --wipe
    """
    from stream_detector.services.local import clear_state, load_state
    from stream_detector.services.process import is_alive, owns, stop_handle

    cache = _cache_dir(cache_dir)
    state = load_state(cache)
    for name, handle in state.items():
        if not is_alive(handle.pid):
            say(f"{name}: was not running")
        elif owns(handle):
            stop_handle(handle)
            say(f"{name}: stopped (pid {handle.pid})")
        else:  # a stale state file: that pid now belongs to someone else's process
            say(f"{name}: left alone: pid {handle.pid} is no longer the {name} that "
                 "`services start` started")
    clear_state(cache)
    if not state and not wipe:
        say(f"nothing to stop: no services of `stream-detector services start` are recorded "
            f"in {cache} (a different STREAM_DETECTOR_CACHE_DIR or --cache-dir?)")
    if wipe:
        _wipe(cache / "services", [h for h in state.values() if is_alive(h.pid) and owns(h)])


def _wipe(data_root: Path, running: list[ServiceHandle]) -> None:
    """Delete the services' data folders, unless one of them still runs."""
    import shutil

    if running:
        fail(escape(f"not wiped: {', '.join(h.name for h in running)} still running; its "
                    f"data stays in {data_root}"))
    for name in ("kafka", "redis"):
        shutil.rmtree(data_root / name, ignore_errors=True)
    say(f"wiped {data_root}: the next `services start` is empty")


@services_app.command("status")
def services_status(
    as_json: Annotated[
        bool, typer.Option("--json", help='print {"kafka": URL, "redis": URL}')
    ] = False,
    cache_dir: CacheOption = None,
) -> None:
    """Show whether the local services answer; exits 1 when either is down.

    Example:

    \b
      stream-detector services status --json
    """
    from stream_detector.services.local import handle_ready, load_state

    state = load_state(_cache_dir(cache_dir))
    up = {name: state[name].url for name in ("kafka", "redis")
          if name in state and handle_ready(state[name])}
    if as_json:
        print(json.dumps({"kafka": up.get("kafka"), "redis": up.get("redis")}))
    else:
        for name in ("kafka", "redis"):
            console.print(f"{name}: {up.get(name, 'down')}")
    if len(up) != 2:
        if not as_json:
            err_console.print("start them with `stream-detector services start`",
                              highlight=False, markup=False)
        raise typer.Exit(1)

