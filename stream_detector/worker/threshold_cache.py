"""The worker's in-memory cache of one model version's thresholds (see :mod:`.thresholds`).

Workers never ask Redis per record. :class:`ThresholdCache` loads a model's hash once,
answers :meth:`~ThresholdCache.lookup` from memory (per-key entry, then the Redis default,
then the model card's calibrated per-key value and default), and a background task applies
change notifications within a second. If Redis goes away the cache keeps the last values
it saw, reports ``degraded`` and reconnects by itself; a full resync after reconnecting
(and every ``resync_interval`` seconds) covers notifications missed meanwhile, since
pub/sub delivers at most once.

Contact is proven, not assumed: only an answer from Redis (a reload, a notification, or a
``PING`` sent every ``ping_interval`` seconds and bounded by ``ping_timeout``) counts. A
server that stops answering (crashed, or frozen with its sockets still open) is reported
degraded within ``ping_interval + ping_timeout`` seconds (1.5 s by default).

:attr:`ThresholdCache.source` says where lookups are answered from: ``redis`` (a Redis
default covers every key), ``redis+card`` (some keys from Redis, the rest from the card) or
``card`` (nothing in Redis: e.g. a Redis restarted without persistence).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError, ResponseError

from schemas.card import DEFAULT_KEY, ModelCard
from schemas.events import ThresholdSource
from stream_detector.core.thresholds import (
    CardThresholds,
    ResolvedThreshold,
    ThresholdEntry,
    change_channel,
    decode_entries,
    hash_name,
    parse_change,
)
from stream_detector.worker.console import threshold_changes

__all__ = ["ThresholdCache"]

# the threshold stage's logger, as before the cache had its own module: log filters keep working
log = logging.getLogger("stream_detector.core.thresholds")
_MIN_BACKOFF: Final = 0.1
_MAX_BACKOFF: Final = 2.0  # also the worst delay before noticing Redis is back


class ThresholdCache:
    """A worker's in-memory view of one model version's thresholds.

    Parameters
    ----------
    card
        The served model's card: its calibrated thresholds are the last fallback.
    client
        An asyncio Redis client; give it ``socket_timeout`` and
        ``socket_connect_timeout`` so a hung server is noticed (see :meth:`from_url`).
    resync_interval
        Seconds between full reloads, a safety net for lost notifications.
    stale_after
        Seconds without an answer from Redis after which the cache calls itself degraded.
    ping_interval, ping_timeout
        How often Redis is asked for a ``PING`` while no notification arrives, and how long
        an answer may take before the connection counts as lost.
    namespace
        The deployment's namespace (settings' ``namespace``): its hashes and channel.
    """

    def __init__(
        self,
        card: ModelCard,
        client: AsyncRedis,
        *,
        resync_interval: float = 30.0,
        stale_after: float = 1.5,
        poll_timeout: float = 0.2,
        ping_interval: float = 0.5,
        ping_timeout: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        namespace: str = "",
        refusal: Callable[[BaseException], str | None] | None = None,
    ) -> None:
        self.card = card
        # what Redis refused (credentials, ACL), as connectivity.redis_refusal words it
        self._refusal = refusal
        self.refused: str | None = None  # the last error's refusal, until a reconnect
        self.channel = change_channel(namespace)
        self.client = client
        self.resync_interval = resync_interval
        self.stale_after = stale_after
        self.poll_timeout = poll_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self._clock = clock
        self._hash = hash_name(card.name, card.version, namespace)
        self._last_contact = -math.inf
        self._connected = False
        self._task: asyncio.Task[None] | None = None
        self._backoff = _MIN_BACKOFF
        self._wrong_type = False  # the hash's key holds another type (said once)
        self._entries: dict[str, ThresholdEntry] = {}
        self._by_key: dict[str, ResolvedThreshold] = {}
        self._default: ResolvedThreshold | None = None
        self._card = CardThresholds(card)

    @classmethod
    def from_url(
        cls,
        card: ModelCard,
        url: str,
        *,
        redis_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> ThresholdCache:
        """A cache with its own client, with timeouts that surface a dead server.

        ``redis_kwargs`` go to the client (e.g. ``Settings.redis_kwargs()``: credentials,
        TLS); other keyword arguments go to the cache.
        """
        options: dict[str, Any] = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}
        options.update(redis_kwargs or {})
        return cls(card, AsyncRedis.from_url(url, **options), **kwargs)

    # --- lookups (hot path: no I/O, no allocation) -------------------------------------
    def lookup(self, key: str) -> ResolvedThreshold:
        """Threshold for ``key``: Redis per-key, Redis default, card per-key, card default."""
        found = self._by_key.get(key)
        if found is not None:
            return found
        if self._default is not None:
            return self._default
        return self._card.lookup(key)

    @property
    def entries(self) -> dict[str, ThresholdEntry]:
        """The Redis entries currently cached (a copy)."""
        return dict(self._entries)

    @property
    def age_seconds(self) -> float:
        """Seconds since Redis last answered (``inf`` before the first answer)."""
        return self._clock() - self._last_contact

    @property
    def source(self) -> str:
        """Where lookups come from: ``redis``, ``redis+card`` or ``card``."""
        if self._default is not None:
            return "redis"
        return "redis+card" if self._by_key else "card"

    @property
    def started(self) -> bool:
        """Whether :meth:`start` has run (a worker starts its caches once its partitions
        are assigned and restored; before, it reads nothing from Redis)."""
        return self._task is not None

    @property
    def degraded(self) -> bool:
        """True while Redis is unreachable or silent, once started: thresholds may be
        stale (before :meth:`start`, the worker scores nothing yet)."""
        return self.started and (not self._connected or self.age_seconds > self.stale_after)

    # --- applying changes (pure) ---------------------------------------------------------
    def _resolve(self, key: str, entry: ThresholdEntry) -> ResolvedThreshold:
        source = ThresholdSource(
            method=entry.method,
            version=self.card.version,
            scope="default" if key == DEFAULT_KEY else "key",
            set_by=entry.set_by,
            set_at=entry.set_at,
        )
        return ResolvedThreshold(entry.value, source)

    def replace_all(self, entries: Mapping[str, ThresholdEntry]) -> None:
        """Install a full snapshot of the hash (what a reload read)."""
        self._install(dict(entries))

    def update(self, changes: Mapping[str, ThresholdEntry | None]) -> None:
        """Apply per-key changes; None removes a key's entry."""
        entries = dict(self._entries)
        for key, entry in changes.items():
            if entry is None:
                entries.pop(key, None)
            else:
                entries[key] = entry
        self._install(entries)

    def _install(self, entries: dict[str, ThresholdEntry]) -> None:
        resolved = {k: self._resolve(k, e) for k, e in entries.items()}
        default = resolved.pop(DEFAULT_KEY, None)
        # one assignment each: a lookup between them sees old or new, never a mix of keys
        self._entries, self._by_key, self._default = entries, resolved, default

    # --- talking to Redis ----------------------------------------------------------------
    async def reload(self) -> None:
        """Read the whole hash; raises ``RedisError`` when Redis cannot be reached.

        A key that is not a hash (Redis answers WRONGTYPE) keeps the last values and says
        so once: Redis is reachable, and reporting it unreachable sent operators to debug
        the network."""
        had = bool(self._entries)
        try:
            raw = await self.client.hgetall(self._hash)
        except ResponseError as exc:  # Redis answered: the data is wrong, not the network
            self._last_contact = self._clock()
            if not self._wrong_type:
                log.warning("Redis key %s is not a hash of thresholds (%s); keeping the last "
                            "known values; delete the key and run `stream-detector thresholds "
                            "publish` for %s version %s", self._hash, exc, self.card.name,
                            self.card.version)
            self._wrong_type = True
            return
        self._wrong_type = False
        self.replace_all(decode_entries(raw))
        self._last_contact = self._clock()
        if had and not self._entries:
            why = (f"malformed: none of its {len(raw)} field(s) is a threshold (see the "
                   "warnings above)" if raw else
                   "gone from Redis (restarted without persistence, or deleted)")
            log.warning("thresholds of %s %s are %s; using the card's until they are "
                        "published again (stream-detector thresholds publish)",
                        self.card.name, self.card.version, why)

    async def _refetch(self, keys: list[str]) -> None:
        values = await self.client.hmget(self._hash, keys) if keys else []
        changes: dict[str, ThresholdEntry | None] = {}
        for key, raw in zip(keys, values, strict=True):
            changes[key] = None if raw is None else decode_entries({key: raw}).get(key)
        self.update(changes)

    async def _on_message(self, data: Any) -> None:
        keys = parse_change(data, self.card.name, self.card.version)
        before, values = self._entries, {k: self.lookup(k).value for k in keys or ()}
        if keys is None:
            await self.reload()
        elif keys:
            try:
                await self._refetch(keys)
            except ResponseError:  # the key is not a hash: reload says so, once
                await self.reload()
        line = threshold_changes(self.card.name, self.card.version, before, self._entries,
                                 values)
        if line is not None:  # an operator's `thresholds set` shows in the worker's console
            logging.getLogger("stream_detector.console").info(line)

    async def _listen(self) -> None:
        pubsub = self.client.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            await self.reload()  # after subscribing: no change can slip in between
            self._connected = True
            self._backoff = _MIN_BACKOFF
            self.refused = None
            next_resync = self._clock() + self.resync_interval
            while True:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=self.poll_timeout
                )
                if message is not None:
                    self._last_contact = self._clock()
                    await self._on_message(message["data"])
                if self._clock() >= next_resync:
                    await self.reload()
                    next_resync = self._clock() + self.resync_interval
                elif self._clock() - self._last_contact >= self.ping_interval:
                    await self._ping()
        finally:
            self._connected = False
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py stub gap

    async def _ping(self) -> None:
        """Ask Redis for an answer; a silent server raises ``TimeoutError`` (an OSError)."""
        await asyncio.wait_for(self.client.ping(), timeout=self.ping_timeout)
        self._last_contact = self._clock()

    async def _drop_connections(self) -> None:
        """Forget pooled sockets: after a restart of Redis they are dead, not idle."""
        pool = getattr(self.client, "connection_pool", None)
        if pool is not None:
            with contextlib.suppress(RedisError, OSError):
                await pool.disconnect()

    async def run(self) -> None:
        """Listen for changes forever, reconnecting with backoff; cancel to stop."""
        while True:
            try:
                await self._listen()
            except (RedisError, OSError) as exc:
                # warn once per outage, not once per retry
                first = self._backoff == _MIN_BACKOFF
                refused = self._refusal(exc) if self._refusal is not None else None
                if refused is not None:  # Redis answered: the credentials are the problem
                    log.log(logging.WARNING if refused != self.refused else logging.DEBUG,
                            "threshold cache: %s; keeping last known values", refused)
                else:
                    log.log(
                        logging.WARNING if first else logging.DEBUG,
                        "threshold cache cannot reach Redis (%s); keeping last known values",
                        str(exc) or f"{type(exc).__name__}: no answer within "
                        f"{self.ping_timeout:g} s",  # a timeout says nothing of itself: "()"
                    )
                self.refused = refused
                await self._drop_connections()
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, _MAX_BACKOFF)

    async def start(self) -> None:
        """Try one load (so the first lookups use Redis values), then listen in the background."""
        try:
            await self.reload()
        except (RedisError, OSError) as exc:
            log.warning("threshold cache starts degraded, using the card: %s", exc)
        self._task = asyncio.create_task(self.run(), name=f"thresholds:{self._hash}")

    async def stop(self) -> None:
        """Stop the listener (idempotent)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
