"""Thresholds: entry encoding, lookup order, change messages, and the cache's listener
against an in-memory stand-in for Redis (no network)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError

from schemas.card import ModelCard
from stream_detector.constants import REDIS_THRESHOLD_CHANNEL
from stream_detector.core.thresholds import (
    ThresholdEntry,
    change_message,
    hash_name,
    parse_change,
)
from stream_detector.worker.threshold_cache import ThresholdCache

CARD = ModelCard.model_validate(
    {
        "name": "m",
        "version": "1",
        "family": "dense",
        "created_at": "2026-11-22T07:00:00Z",
        "onnx_sha256": "ab" * 32,
        "record_kind": "series",
        "window": 4,
        "features": ["value"],
        "scaler": {"method": "none"},
        "thresholds": {
            "method": "fpr",
            "value_param": 0.01,
            "default": 1.0,
            "per_key": {"card-key": 3.0},
        },
        "data_sha256": "0" * 64,
    }
)
HASH = hash_name("m", "1")


def entry(value: float, method: str = "manual") -> ThresholdEntry:
    return ThresholdEntry.model_validate({"value": value, "method": method, "set_by": "ops"})


# --- pure parts -----------------------------------------------------------------------


def test_entry_json_round_trip() -> None:
    e = ThresholdEntry(value=0.25, method="percentile", set_by="alice", set_at="2026-01-01T00:00Z")
    raw = e.to_json()
    assert json.loads(raw) == {
        "value": 0.25,
        "method": "percentile",
        "set_at": "2026-01-01T00:00Z",
        "set_by": "alice",
    }
    assert ThresholdEntry.from_json(raw.encode()) == e
    assert ThresholdEntry(value=1.0).set_at.endswith("Z")


@pytest.mark.parametrize(
    "raw", ['{"value": NaN}', '{"value": "high"}', '{"method": "manual"}', "[]", "nope"]
)
def test_malformed_entries_are_rejected(raw: str) -> None:
    with pytest.raises(ValidationError):
        ThresholdEntry.from_json(raw)


def test_change_messages() -> None:
    msg = change_message("m", "1", ["b", "a"])
    assert json.loads(msg) == {"model": "m", "version": "1", "keys": ["a", "b"]}
    assert parse_change(msg, "m", "1") == ["a", "b"]
    assert parse_change(change_message("m", "1", None), "m", "1") is None
    assert parse_change(msg, "m", "2") == []
    assert parse_change(b"\xff garbage", "m", "1") == []
    assert parse_change("[1, 2]", "m", "1") == []
    assert hash_name("m", "1") == "sd:threshold:m:1"


def test_lookup_order_key_then_default_then_card() -> None:
    cache = ThresholdCache(CARD, client=None)  # type: ignore[arg-type]
    assert cache.lookup("card-key").value == 3.0
    assert cache.lookup("card-key").source.scope == "card_key"
    assert cache.lookup("other").value == 1.0
    assert cache.lookup("other").source.scope == "card_default"
    assert cache.lookup("other").source.method == "fpr"

    cache.replace_all({"*": entry(2.0, "percentile"), "k": entry(5.0)})
    assert (cache.lookup("k").value, cache.lookup("k").source.scope) == (5.0, "key")
    assert cache.lookup("k").source.set_by == "ops"
    # a Redis default beats the card's per-key value
    assert (cache.lookup("card-key").value, cache.lookup("card-key").source.scope) == (
        2.0,
        "default",
    )
    assert cache.lookup("other").source.method == "percentile"
    assert cache.lookup("other").source.version == "1"

    cache.update({"*": None, "k": entry(6.0)})
    assert cache.lookup("k").value == 6.0
    assert cache.lookup("other").value == 1.0  # back to the card
    assert set(cache.entries) == {"k"}


@pytest.mark.asyncio
async def test_cache_is_degraded_from_its_start_until_redis_answers() -> None:
    """Before start (a worker restoring its key states) it is starting, not degraded:
    /health said "redis: unreachable" while Redis was fine."""
    server = FakeRedis()
    server.down = True
    cache = ThresholdCache(CARD, server, poll_timeout=0.05)  # type: ignore[arg-type]
    assert not cache.started and not cache.degraded and cache.age_seconds == float("inf")
    await cache.start()
    try:
        assert cache.started and cache.degraded
    finally:
        await cache.stop()


# --- the listener, against an in-memory Redis ------------------------------------------


class FakeRedis:
    """Just enough of redis.asyncio.Redis: hashes, pub/sub, and an outage switch."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, str]] = {}
        self.down = False
        self.subscribers: list[FakePubSub] = []
        self.reloads = 0

    def check(self) -> None:
        if self.down:
            raise RedisConnectionError("connection refused")

    async def hgetall(self, name: str) -> dict[bytes, bytes]:
        self.check()
        self.reloads += 1
        return {k.encode(): v.encode() for k, v in self.hashes.get(name, {}).items()}

    async def hmget(self, name: str, keys: list[str]) -> list[bytes | None]:
        self.check()
        h = self.hashes.get(name, {})
        return [h[k].encode() if k in h else None for k in keys]

    def pubsub(self) -> FakePubSub:
        return FakePubSub(self)

    def write(self, key: str, value: ThresholdEntry | None, announce: bool = True) -> None:
        h = self.hashes.setdefault(HASH, {})
        if value is None:
            h.pop(key, None)
        else:
            h[key] = value.to_json()
        if announce:
            for sub in self.subscribers:
                sub.queue.put_nowait(change_message("m", "1", [key]).encode())


class FakePubSub:
    def __init__(self, server: FakeRedis) -> None:
        self.server = server
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    async def subscribe(self, channel: str) -> None:
        assert channel == REDIS_THRESHOLD_CHANNEL
        self.server.check()
        self.server.subscribers.append(self)

    async def get_message(
        self, ignore_subscribe_messages: bool, timeout: float
    ) -> dict[str, Any] | None:
        self.server.check()
        try:
            data = await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            self.server.check()
            return None
        return {"type": "message", "data": data}

    async def aclose(self) -> None:
        if self in self.server.subscribers:
            self.server.subscribers.remove(self)


async def wait_for(condition: Any, seconds: float = 1.0) -> None:
    """Poll until ``condition()`` holds; fail after ``seconds`` (the 1 s promise)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest_asyncio.fixture
async def running() -> AsyncIterator[tuple[FakeRedis, ThresholdCache]]:
    server = FakeRedis()
    server.write("*", entry(2.0), announce=False)
    cache = ThresholdCache(CARD, server, poll_timeout=0.05, stale_after=0.5)  # type: ignore[arg-type]
    await cache.start()
    yield server, cache
    await cache.stop()


@pytest.mark.asyncio
async def test_start_loads_and_changes_arrive_within_a_second(
    running: tuple[FakeRedis, ThresholdCache],
) -> None:
    server, cache = running
    assert cache.lookup("x").value == 2.0  # loaded before start() returned
    await wait_for(lambda: not cache.degraded)
    server.write("x", entry(9.0))
    await wait_for(lambda: cache.lookup("x").value == 9.0)
    server.write("x", None)
    await wait_for(lambda: cache.lookup("x").value == 2.0)


@pytest.mark.asyncio
async def test_outage_keeps_values_then_reconnects_and_resyncs(
    running: tuple[FakeRedis, ThresholdCache],
) -> None:
    server, cache = running
    await wait_for(lambda: not cache.degraded)
    server.down = True
    await wait_for(lambda: cache.degraded)
    assert cache.lookup("x").value == 2.0  # last known value, not the card's 1.0
    server.down = False
    server.write("*", entry(4.0), announce=False)  # changed while we were away
    await wait_for(lambda: not cache.degraded, seconds=2.0)
    await wait_for(lambda: cache.lookup("x").value == 4.0)
    assert cache.age_seconds < 0.5


@pytest.mark.asyncio
async def test_start_without_redis_uses_the_card() -> None:
    server = FakeRedis()
    server.down = True
    cache = ThresholdCache(CARD, server, poll_timeout=0.05)  # type: ignore[arg-type]
    await cache.start()
    try:
        assert cache.degraded
        assert cache.lookup("card-key").source.scope == "card_key"
        server.down = False
        server.write("card-key", entry(7.0), announce=False)
        await wait_for(lambda: cache.lookup("card-key").value == 7.0, seconds=2.0)
    finally:
        await cache.stop()
        await cache.stop()  # idempotent


@pytest.mark.asyncio
async def test_periodic_resync_catches_lost_notifications() -> None:
    server = FakeRedis()
    cache = ThresholdCache(CARD, server, poll_timeout=0.02, resync_interval=0.1)  # type: ignore[arg-type]
    await cache.start()
    try:
        await wait_for(lambda: not cache.degraded)
        server.write("k", entry(8.0), announce=False)  # notification lost
        await wait_for(lambda: cache.lookup("k").value == 8.0)
    finally:
        await cache.stop()
