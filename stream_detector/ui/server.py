"""The explorer's web server (aiohttp): the page, its JSON endpoints and a live event stream.

Endpoints (all GET unless said; times are ns since the epoch, ``range`` one of
:data:`stream_detector.ui.views.RANGES`):

- ``/``: the page; ``/static/<file>``: its script, style and plotly.js (from the installed
  plotly package: nothing is fetched from the internet, and the Content-Security-Policy
  header forbids the page to try);
- ``/api/summary``: counts, latest data time, topics, models, whether writes are enabled;
- ``/api/overview?range&q&sort&page&size&buckets``: one page of the swim lane;
- ``/api/anomalies?range&q&key&min_severity&limit&offset``: the anomaly table;
- ``/api/key?key&range``: one key's values, anomalies, quiet periods, versions, thresholds;
- ``/api/stream``: server-sent events, ``event: anomalies`` with new table rows as JSON;
- ``POST /api/thresholds`` ``{"model", "version", "key", "value"}``: sets a key's threshold
  in Redis, only when the server was started with writes enabled (else 403).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from schemas.card import ModelCard
from stream_detector.core.thresholds import ThresholdStore
from stream_detector.exceptions import ConfigurationError
from stream_detector.ui import views
from stream_detector.ui.state import EventRow, ExplorerState
from stream_detector.ui.thresholds import set_threshold, thresholds_for

__all__ = ["Explorer", "make_app", "plotly_js"]

STATIC: Final = Path(__file__).parent / "static"
_CSP: Final = ("default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
_QUEUE: Final = 256
_KEEPALIVE_S: Final = 15.0
EXPLORER: Final = web.AppKey("explorer", object)


def plotly_js() -> Path:
    """plotly.min.js as the installed plotly package ships it (found without importing it).

    Raises :class:`ConfigurationError` when plotly is not installed.
    """
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise ConfigurationError("plotly is not installed; run `make setup` (it is a dependency)")
    return Path(spec.origin).parent / "package_data" / "plotly.min.js"


@dataclass
class Explorer:
    """What the handlers share: the state (behind ``lock``), Redis, and the live pages."""

    state: ExplorerState
    store: ThresholdStore | None
    cards: dict[tuple[str, str], ModelCard] = field(default_factory=dict)
    writes: bool = False
    topics: dict[str, str | None] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    queues: set[asyncio.Queue[list[dict[str, Any]] | None]] = field(default_factory=set)
    loop: asyncio.AbstractEventLoop | None = None

    def publish(self, rows: list[EventRow]) -> None:
        """Called from the follower's thread: hand new events to every open page."""
        if self.loop is not None:
            payload = [r.as_json() for r in rows]
            self.loop.call_soon_threadsafe(self._fan_out, payload)

    def _fan_out(self, payload: list[dict[str, Any]]) -> None:
        for queue in list(self.queues):
            if queue.full():  # a stalled page: it resynchronises on the None marker
                with contextlib.suppress(asyncio.QueueEmpty):
                    while True:
                        queue.get_nowait()
                queue.put_nowait(None)
            else:
                queue.put_nowait(payload)

    def models(self) -> set[tuple[str, str]]:
        with self.lock:
            seen = {(r.model, r.version) for r in self.state.events[-1000:]}
        return seen | set(self.cards)


def _explorer(request: web.Request) -> Explorer:
    explorer: Explorer = request.app[EXPLORER]  # type: ignore[assignment]
    return explorer


def _range(request: web.Request, ex: Explorer) -> views.TimeRange:
    name = request.query.get("range", "all")
    if name not in views.RANGES:
        raise web.HTTPBadRequest(text=f"range must be one of {', '.join(views.RANGES)}")
    return views.time_range(ex.state, name)


def _int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    try:
        value = int(request.query.get(name, default))
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer") from None
    return min(max(value, lo), hi)


async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html")


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    path = plotly_js() if name == "plotly.min.js" else STATIC / name
    if name not in {"plotly.min.js", "app.js", "app.css"} or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Cache-Control": "max-age=3600"})


async def summary(request: web.Request) -> web.Response:
    ex = _explorer(request)
    models = sorted(ex.models())
    with ex.lock:
        s = ex.state
        body: dict[str, Any] = {
            "records": s.records, "anomalies": len(s.events), "keys": len(s.keys()),
            "duplicates": s.duplicates, "latest_ns": s.latest_ns, "earliest_ns": s.earliest_ns}
    body |= {"writes": ex.writes, "topics": ex.topics, "ranges": list(views.RANGES),
             "models": [{"model": m, "version": v} for m, v in models]}
    return web.json_response(body)


async def overview(request: web.Request) -> web.Response:
    ex = _explorer(request)
    sort = request.query.get("sort", "severity")
    if sort not in ("severity", "recent", "key"):
        raise web.HTTPBadRequest(text="sort must be severity, recent or key")
    with ex.lock:
        body = views.overview(
            ex.state, _range(request, ex), buckets=_int(request, "buckets", 60, 1, 500),
            query=request.query.get("q", ""), sort=sort,  # type: ignore[arg-type]
            page=_int(request, "page", 0, 0, 10**9), size=_int(request, "size", 50, 1, 500))
    return web.json_response(body)


async def anomalies(request: web.Request) -> web.Response:
    ex = _explorer(request)
    try:
        min_severity = float(request.query.get("min_severity", 0))
    except ValueError:
        raise web.HTTPBadRequest(text="min_severity must be a number") from None
    with ex.lock:
        body = views.anomalies(
            ex.state, _range(request, ex), query=request.query.get("q", ""),
            key=request.query.get("key"), min_severity=min_severity,
            limit=_int(request, "limit", 100, 1, 1000), offset=_int(request, "offset", 0, 0,
                                                                      10**9))
    return web.json_response(body)


async def key(request: web.Request) -> web.Response:
    ex = _explorer(request)
    name = request.query.get("key", "")
    if not name:
        raise web.HTTPBadRequest(text="give the key: /api/key?key=NAME")
    with ex.lock:
        body = views.key_view(ex.state, name, _range(request, ex))
    body["thresholds"] = await _thresholds(ex, name)
    return web.json_response(body)


async def _thresholds(ex: Explorer, key_name: str) -> list[dict[str, Any]] | str:
    if ex.store is None:
        return "no Redis configured"
    store, models = ex.store, ex.models()
    try:
        found = await asyncio.to_thread(thresholds_for, store, key_name, models, ex.cards)
    except Exception as exc:  # noqa: BLE001 - shown on the page, the rest still works
        return f"Redis unreachable: {type(exc).__name__}"
    return [t.as_json() for t in found]


async def post_threshold(request: web.Request) -> web.Response:
    ex = _explorer(request)
    if not ex.writes or ex.store is None:
        raise web.HTTPForbidden(text="writes are disabled: start `stream-detector ui "
                                     "--allow-writes` to set thresholds from the page")
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        raise web.HTTPForbidden(text="cross-origin writes are refused")
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="send application/json")
    try:
        body = await request.json()
        changed = await asyncio.to_thread(set_threshold, ex.store, body, ex.models())
    except (ValueError, ConfigurationError) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return web.json_response(changed.as_json())


async def stream(request: web.Request) -> web.StreamResponse:
    ex = _explorer(request)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
    await response.prepare(request)
    queue: asyncio.Queue[list[dict[str, Any]] | None] = asyncio.Queue(_QUEUE)
    ex.queues.add(queue)
    try:
        await response.write(b"event: hello\ndata: {}\n\n")
        while True:
            try:
                rows = await asyncio.wait_for(queue.get(), _KEEPALIVE_S)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            kind, data = ("resync", "{}") if rows is None else ("anomalies", json.dumps(rows))
            await response.write(f"event: {kind}\ndata: {data}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        ex.queues.discard(queue)
    return response


@web.middleware
async def _headers(request: web.Request, handler: Any) -> web.StreamResponse:
    response: web.StreamResponse = await handler(request)
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def make_app(explorer: Explorer) -> web.Application:
    """The aiohttp application; ``explorer.loop`` is set when it starts."""
    app = web.Application(middlewares=[_headers], client_max_size=64 * 1024)
    app[EXPLORER] = explorer

    async def on_startup(_: web.Application) -> None:
        explorer.loop = asyncio.get_running_loop()

    app.on_startup.append(on_startup)
    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/api/summary", summary)
    app.router.add_get("/api/overview", overview)
    app.router.add_get("/api/anomalies", anomalies)
    app.router.add_get("/api/key", key)
    app.router.add_post("/api/thresholds", post_threshold)
    app.router.add_get("/api/stream", stream)
    return app
