"""Start the explorer: model cards, Redis, the Kafka follower and the web server together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.card import ModelCard
from stream_detector.core.detection import DetectionParams
from stream_detector.exceptions import ServiceError
from stream_detector.settings import Settings
from stream_detector.ui.follow import Follower
from stream_detector.ui.server import Explorer, make_app
from stream_detector.ui.state import ExplorerState

__all__ = ["UiOptions", "build_explorer", "check_kafka", "load_cards", "serve", "serve_app"]

_QUIET = logging.getLogger("stream_detector.ui.kafka")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False  # client errors while a broker restarts: the follower retries


@dataclass(frozen=True)
class UiOptions:
    """What ``stream-detector ui`` was asked for (see its ``--help``)."""

    models: Sequence[Path] = ()
    allow_writes: bool = False
    from_end: bool = False
    port: int | None = None  # None: the settings' ui_port; 0: any free port
    events_topic: str | None = None
    records_topic: str | None = None  # "" follows no input topic


def load_cards(paths: Sequence[Path]) -> dict[tuple[str, str], ModelCard]:
    """Every valid version's card under each model dir or registry root (unreadable ones
    are skipped: the explorer still shows what the events say)."""
    from stream_detector.core.registry import read_card

    cards: dict[tuple[str, str], ModelCard] = {}
    for root in paths:
        for path in sorted(Path(root).glob("**/card.json")):
            if ".partial" in path.parts[-2]:
                continue
            with contextlib.suppress(Exception):
                card = read_card(path)
                cards[(card.name, card.version)] = card
    return cards


def build_explorer(settings: Settings, opts: UiOptions) -> tuple[Explorer, Follower]:
    from stream_detector.core.thresholds import ThresholdStore

    state = ExplorerState(points_per_key=settings.ui_points_per_key)
    cards = load_cards(opts.models)
    for (name, version), card in cards.items():
        state.set_quiet_windows(name, version, DetectionParams.from_card(card.detection).suppress)
    events = opts.events_topic or settings.output_topic
    records = settings.input_topic if opts.records_topic is None else opts.records_topic or None
    store = ThresholdStore(settings.redis_client(socket_timeout=2), settings.namespace)
    explorer = Explorer(state, store, cards, writes=opts.allow_writes,
                        topics={"events": events, "records": records})
    follower = Follower(settings.confluent_config(), events, records, state, explorer.lock,
                        explorer.publish, from_end=opts.from_end)
    return explorer, follower


async def serve_app(app: Any, host: str, port: int, ready: Callable[[str], None]) -> None:
    """Serve ``app`` on ``host``:``port`` (0: any free port) until cancelled; ``ready`` gets
    the URL once bound.

    Raises
    ------
    ServiceError
        The address cannot be bound (in use, not this machine's, no such host).
    """
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:  # in use, not this machine's address, or no such host name
        await runner.cleanup()
        raise ServiceError(
            f"the explorer cannot listen on {host}:{port} ({exc.strerror or exc}); set "
            "--port or STREAM_DETECTOR_UI_PORT (0: any free port), or "
            "STREAM_DETECTOR_UI_HOST") from None
    bound = runner.addresses[0][1] if runner.addresses else port
    shown = f"[{host}]" if ":" in host else host
    ready(f"http://{shown}:{bound}/")
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def check_kafka(settings: Settings, timeout: float = 5.0) -> None:
    """Raises :class:`ServiceError` in one line when no broker answers in ``timeout``."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(settings.confluent_config(logger=_QUIET))
    try:
        admin.list_topics(timeout=timeout)
    except KafkaException:
        raise ServiceError(
            f"Kafka at {settings.bootstrap_servers} did not answer within {timeout:.0f} s; start"
            " it (`stream-detector services start`) or give --kafka URL") from None


def serve(settings: Settings, opts: UiOptions, ready: Callable[[str], None]) -> None:
    """Follow the topics and serve the page on the settings' ``ui_host`` until interrupted;
    ``ready`` gets the page's URL once the port is bound.

    Raises :class:`ServiceError` when Kafka does not answer (Redis may be down: the
    page then says so where thresholds would be).
    """
    check_kafka(settings)
    explorer, follower = build_explorer(settings, opts)
    port = settings.ui_port if opts.port is None else opts.port
    follower.start()
    try:
        asyncio.run(serve_app(make_app(explorer), settings.ui_host, port, ready))
    finally:
        follower.stop()
