"""ThresholdStore and ThresholdCache against a real redis-server.

Marked ``integration``: the ``redis_server`` fixture (an object with ``.url``, started once
per session and flushed between tests) comes from ``tests/conftest.py``; until it exists
these tests skip rather than error.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
import redis
from redis.asyncio import Redis as AsyncRedis

from schemas.card import ModelCard
from stream_detector.constants import REDIS_THRESHOLD_CHANNEL
from stream_detector.core.thresholds import ThresholdStore
from stream_detector.worker.threshold_cache import ThresholdCache

pytestmark = pytest.mark.integration

CARD = ModelCard.model_validate(
    {
        "name": "itest",
        "version": "1",
        "family": "dense",
        "created_at": "2026-11-22T07:00:00Z",
        "onnx_sha256": "ab" * 32,
        "record_kind": "sales",
        "window": 7,
        "features": ["sales"],
        "scaler": {"method": "none"},
        "thresholds": {
            "method": "percentile",
            "value_param": 99.0,
            "default": 1.5,
            "per_key": {"1/7": 2.5},
        },
        "data_sha256": "0" * 64,
    }
)


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    try:
        server: Any = request.getfixturevalue("redis_server")
    except pytest.FixtureLookupError:
        pytest.skip("needs the redis_server fixture (tests/conftest.py)")
    return str(server.url)


@pytest.fixture
def store(redis_url: str) -> ThresholdStore:
    client = redis.Redis.from_url(redis_url)
    client.delete("sd:threshold:itest:1")
    return ThresholdStore(client)


def test_store_round_trip_and_notifications(store: ThresholdStore) -> None:
    pubsub = store.client.pubsub()
    pubsub.subscribe(REDIS_THRESHOLD_CHANNEL)
    assert pubsub.get_message(timeout=1.0)["type"] == "subscribe"
    assert store.publish_from_card(CARD) == 2
    assert {k: e.value for k, e in store.list("itest", "1").items()} == {"*": 1.5, "1/7": 2.5}
    published = store.list("itest", "1")["*"]  # when it went to Redis, not the card's date
    assert published.set_at > CARD.created_at and published.set_by == "model-card"
    entry = store.set("itest", "1", "2/3", 0.75, method="manual", set_by="alice")
    assert store.get("itest", "1", "2/3") == entry
    assert store.delete("itest", "1", "2/3") and not store.delete("itest", "1", "2/3")
    assert store.get("itest", "1", "2/3") is None
    messages = [pubsub.get_message(timeout=1.0) for _ in range(4)]
    assert all(m is not None and m["type"] == "message" for m in messages)
    pubsub.close()
    with pytest.raises(ValueError, match="finite"):
        store.set("itest", "1", "k", float("nan"))


@pytest.mark.asyncio
async def test_cache_follows_store_within_a_second(store: ThresholdStore, redis_url: str) -> None:
    store.publish_from_card(CARD)
    cache = ThresholdCache(CARD, AsyncRedis.from_url(redis_url), poll_timeout=0.1)
    await cache.start()
    try:
        assert cache.lookup("1/7").value == 2.5 and cache.lookup("1/7").source.scope == "key"
        store.set("itest", "1", "1/7", 9.0, set_by="bob")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0
        while cache.lookup("1/7").value != 9.0:
            assert loop.time() < deadline, "change not applied within 1 s"
            await asyncio.sleep(0.01)
        assert cache.lookup("1/7").source.set_by == "bob"
        assert not cache.degraded
    finally:
        await cache.stop()
        await cache.client.aclose()


@pytest.mark.asyncio
async def test_bad_data_in_redis_is_said_as_bad_data_not_as_an_outage(
    store: ThresholdStore, redis_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """A threshold hash turned into a string made the worker report Redis unreachable
    (/health degraded), and malformed entries were reported "gone from Redis"."""
    store.publish_from_card(CARD)
    cache = ThresholdCache(CARD, AsyncRedis.from_url(redis_url), poll_timeout=0.1)
    await cache.start()
    try:
        store.client.hset("sd:threshold:itest:1", mapping={"*": "garbage", "1/7": "{"})
        await cache.reload()
        assert "thresholds of itest 1 are malformed: none of its 2 field(s) is a threshold" \
            in caplog.text
        store.client.delete("sd:threshold:itest:1")
        store.client.set("sd:threshold:itest:1", "a string")
        store.client.publish(REDIS_THRESHOLD_CHANNEL, "itest\t1\t1/7")
        await asyncio.sleep(1.0)
        assert "Redis key sd:threshold:itest:1 is not a hash of thresholds" in caplog.text
        assert caplog.text.count("is not a hash of thresholds") == 1  # said once
        assert "cannot reach Redis" not in caplog.text
        assert not cache.degraded  # Redis answers: the network is fine
    finally:
        await cache.stop()
        await cache.client.aclose()
        store.client.delete("sd:threshold:itest:1")


@pytest.mark.asyncio
async def test_credentials_refused_under_a_running_cache_are_said_as_such(
    store: ThresholdStore, redis_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis starting to require a password under a running worker was reported as
    "cannot reach Redis" and /health "unreachable": Redis answered; the credentials are
    the problem. Once they fit again, the cache is back by itself."""
    from stream_detector.connectivity import redis_refusal
    from stream_detector.settings import Settings
    from stream_detector.worker.health import health_document
    from stream_detector.worker.kafka_health import KafkaStatus

    settings = Settings(redis_url=redis_url)
    store.publish_from_card(CARD)
    cache = ThresholdCache(CARD, AsyncRedis.from_url(redis_url, socket_timeout=2.0),
                           poll_timeout=0.1, refusal=lambda exc: redis_refusal(settings, exc))
    admin = store.client
    await cache.start()
    try:
        await asyncio.sleep(0.5)
        admin.config_set("requirepass", "s3cret")
        admin.execute_command("AUTH", "s3cret")
        admin.client_kill_filter(_type="pubsub")
        admin.client_kill_filter(_type="normal", skipme=True)
        for _ in range(50):
            if cache.refused and cache.degraded:
                break
            await asyncio.sleep(0.1)
        assert cache.refused == (f"Redis at {redis_url} requires authentication; set "
                                 "STREAM_DETECTOR_REDIS_USERNAME and "
                                 "STREAM_DETECTOR_REDIS_PASSWORD")
        served = SimpleNamespace(name="itest", card=CARD, provider="CPUExecutionProvider")
        health = health_document([served], [cache], KafkaStatus(True, [], 0, None))  # type: ignore[list-item]
        assert (health["status"], health["redis"]) == ("degraded", "refused")
        assert "threshold cache: Redis at" in caplog.text
        assert "cannot reach Redis" not in caplog.text
    finally:
        admin.config_set("requirepass", "")
    for _ in range(100):  # the backoff doubles up to its cap: back within seconds
        if not cache.degraded:
            break
        await asyncio.sleep(0.1)
    try:
        assert not cache.degraded and cache.refused is None
    finally:
        await cache.stop()
        await cache.client.aclose()
