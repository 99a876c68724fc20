"""The explorer's thresholds against the real redis-server: read as a worker resolves them,
written (only with writes enabled, same origin, JSON) through the threshold store, whose
change announcement is what workers listen to."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from model_fixtures import window_mean_model, write_registry_model

from stream_detector.constants import REDIS_THRESHOLD_CHANNEL
from stream_detector.core.thresholds import ThresholdStore
from stream_detector.ui.run import load_cards
from stream_detector.ui.server import Explorer, make_app
from stream_detector.ui.state import ExplorerState

BODY = {"model": "tiny", "version": "1", "key": "k1", "value": 7.5}


@pytest_asyncio.fixture()
async def client(redis_client: Any, tmp_path: Path) -> AsyncIterator[Any]:
    write_registry_model(tmp_path / "tiny" / "1", window_mean_model(4, 1), window=4,
                         threshold=3.0, per_key={"k2": 9.0})
    explorer = Explorer(ExplorerState(), ThresholdStore(redis_client), load_cards([tmp_path]),
                        writes=True)
    async with TestClient(TestServer(make_app(explorer))) as c:
        yield c


async def _thresholds(client: Any, key: str) -> list[dict[str, Any]]:
    body = await (await client.get("/api/key", params={"key": key})).json()
    result: list[dict[str, Any]] = body["thresholds"]
    return result


@pytest.mark.asyncio
async def test_thresholds_resolve_like_a_worker_and_writes_announce_the_change(
    client: Any, redis_client: Any,
) -> None:
    # nothing in Redis yet: the card's values, as a worker falls back to them
    assert [(t["value"], t["scope"]) for t in await _thresholds(client, "k1")] == [
        (3.0, "card_default")]
    assert (await _thresholds(client, "k2"))[0]["scope"] == "card_key"
    ThresholdStore(redis_client).set("tiny", "1", "*", 4.0, set_by="ops")
    assert [(t["value"], t["scope"]) for t in await _thresholds(client, "k1")] == [
        (4.0, "default")]

    pubsub = redis_client.pubsub()
    pubsub.subscribe(REDIS_THRESHOLD_CHANNEL)
    pubsub.get_message(timeout=1)  # the subscription confirmation
    r = await client.post("/api/thresholds", json=BODY)
    assert r.status == 200, await r.text()
    entry = ThresholdStore(redis_client).get("tiny", "1", "k1")
    assert entry is not None and entry.value == 7.5 and entry.set_by == "stream-detector ui"
    message = pubsub.get_message(timeout=2)
    assert message is not None and json.loads(message["data"])["keys"] == ["k1"]
    pubsub.close()
    shown = (await _thresholds(client, "k1"))[0]
    assert (shown["value"], shown["scope"], shown["set_by"]) == (7.5, "key", "stream-detector ui")


@pytest.mark.asyncio
async def test_bad_or_cross_origin_writes_are_refused(client: Any, redis_client: Any) -> None:
    evil = await client.post("/api/thresholds", json=BODY,
                             headers={"Origin": "http://evil.example"})
    assert evil.status == 403
    form = await client.post("/api/thresholds", data={"model": "tiny"})
    assert form.status == 415
    for bad in ({"model": "tiny"}, {**BODY, "value": "NaN"}, {**BODY, "key": ""},
                {**BODY, "key": None}, {**BODY, "value": True}, [BODY]):
        r = await client.post("/api/thresholds", json=bad)
        assert r.status == 400 and "model" in await r.text()
    # the model default is not a key ("*" came back as scope "key"); a model the explorer
    # does not show is a typo no worker reads
    star = await client.post("/api/thresholds", json={**BODY, "key": "*"})
    assert star.status == 400 and "thresholds set tiny '*' VALUE --version 1" in await star.text()
    typo = await client.post("/api/thresholds", json={**BODY, "model": "tinny"})
    assert typo.status == 400 and "knows no model tinny version 1 (it shows tiny v1)" in (
        await typo.text())
    assert ThresholdStore(redis_client).get("tiny", "1", "k1") is None
    assert ThresholdStore(redis_client).get("tiny", "1", "*") is None
    assert ThresholdStore(redis_client).get("tiny", "1", "None") is None
