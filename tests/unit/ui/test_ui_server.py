"""The explorer's endpoints through aiohttp's test client (no network, no Redis)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from ui_events import event

from stream_detector.ui.server import Explorer, make_app, plotly_js
from stream_detector.ui.state import EventRow, ExplorerState

Served = tuple[Any, Explorer]  # aiohttp's TestClient, and what its handlers share


@pytest_asyncio.fixture()
async def served() -> AsyncIterator[Served]:
    state = ExplorerState()
    state.add_values("a", [(0, 1.0)])
    state.add_event(EventRow.from_event(event("a", 5, 70)))
    explorer = Explorer(state, store=None, topics={"events": "out", "records": "in"})
    async with TestClient(TestServer(make_app(explorer))) as client:
        yield client, explorer


@pytest.mark.asyncio
async def test_page_and_assets_are_served_locally_with_a_strict_policy(served: Served) -> None:
    client, _ = served
    page = await client.get("/")
    html = await page.text()
    assert page.status == 200 and "/static/plotly.min.js" in html
    assert "http://" not in html and "https://" not in html
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy
    js = await client.get("/static/plotly.min.js")
    assert js.status == 200 and len(await js.read()) == plotly_js().stat().st_size
    for name in ("app.js", "app.css"):
        assert (await client.get(f"/static/{name}")).status == 200
    assert (await client.get("/static/../server.py")).status == 404
    assert (await client.get("/static/__init__.py")).status == 404


@pytest.mark.asyncio
async def test_json_endpoints(served: Served) -> None:
    client, _ = served
    summary = await (await client.get("/api/summary")).json()
    assert summary["anomalies"] == 1 and summary["keys"] == 1 and summary["records"] == 1
    assert summary["writes"] is False and summary["models"] == [{"model": "m", "version": "1"}]
    overview = await (await client.get("/api/overview", params={"buckets": "3"})).json()
    assert overview["keys"] == ["a"] and len(overview["cells"][0]) == 3
    table = await (await client.get("/api/anomalies", params={"range": "1h"})).json()
    assert table["total"] == 1 and table["rows"][0]["severity"] == 70
    key = await (await client.get("/api/key", params={"key": "a"})).json()
    assert key["seen"] and key["events"][0]["expected"] == [10.0]
    assert key["thresholds"] == "no Redis configured"


@pytest.mark.asyncio
async def test_bad_requests_say_what_to_send(served: Served) -> None:
    client, _ = served
    for path, params, words in (
        ("/api/overview", {"range": "2y"}, "range must be one of"),
        ("/api/overview", {"sort": "x"}, "sort must be"),
        ("/api/overview", {"page": "one"}, "page must be an integer"),
        ("/api/anomalies", {"min_severity": "high"}, "min_severity must be a number"),
        ("/api/key", {}, "give the key"),
    ):
        r = await client.get(path, params=params)
        assert r.status == 400 and words in await r.text(), path


@pytest.mark.asyncio
async def test_writes_are_refused_without_the_flag(served: Served) -> None:
    client, _ = served
    r = await client.post("/api/thresholds", json={"model": "m", "version": "1", "key": "a",
                                                   "value": 5})
    assert r.status == 403 and "--allow-writes" in await r.text()


@pytest.mark.asyncio
async def test_new_events_are_pushed_to_open_pages(served: Served) -> None:
    client, explorer = served
    response = await client.get("/api/stream")
    assert response.headers["Content-Type"] == "text/event-stream"
    assert await response.content.readuntil(b"\n\n") == b"event: hello\ndata: {}\n\n"
    row = EventRow.from_event(event("b", 9, 33))
    await asyncio.to_thread(explorer.publish, [row])  # as the follower's thread does
    pushed = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
    kind, data = pushed.decode().strip().split("\n")
    assert kind == "event: anomalies"
    assert json.loads(data.removeprefix("data: "))[0]["key"] == "b"
    response.close()


def test_a_namespace_prefixes_the_topics_and_the_threshold_keys() -> None:
    from stream_detector.settings import Settings
    from stream_detector.ui.run import UiOptions, build_explorer

    settings = Settings(namespace="team-a", output_topic="anomalies")
    explorer, follower = build_explorer(settings, UiOptions())
    assert (follower.events_topic, follower.records_topic) == ("team-a.anomalies",
                                                               "team-a.records")
    assert explorer.store is not None and explorer.store.namespace == "team-a"
    _, bare = build_explorer(settings, UiOptions(records_topic=""))
    assert bare.records_topic is None


@pytest.mark.asyncio
async def test_a_port_in_use_is_one_error_naming_the_settings() -> None:
    """aiohttp's OSError came out of `ui` as a traceback."""
    import socket

    from aiohttp import web

    from stream_detector.exceptions import ServiceError
    from stream_detector.ui.run import serve_app

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        urls: list[str] = []
        with pytest.raises(ServiceError, match=rf"cannot listen on 127.0.0.1:{port} \(.*\); "
                                               r"set --port or STREAM_DETECTOR_UI_PORT"):
            await serve_app(web.Application(), "127.0.0.1", port, urls.append)
        assert urls == []  # no URL printed for a page that is not served
