"""Thresholds in Redis: the stored entries, the hash and channel layout, and the store.

Redis layout (constants in :mod:`stream_detector.constants`)::

    HASH  sd:threshold:<model name>:<model version>
          field <key>  -> {"value": 0.12, "method": "percentile", "set_at": "...", "set_by": "..."}
          field "*"    -> the model-wide default
    PUBSUB sd:thresholds:changed  <- {"model": name, "version": version, "keys": [..] | null}

Writers (CLI, training export, operators) go through :class:`ThresholdStore`; workers read
through :class:`stream_detector.worker.threshold_cache.ThresholdCache`, which never asks Redis per
record. Both share the entry model and the layout defined here.
"""

from __future__ import annotations

import getpass
import json
import logging
import math
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis import Redis

from schemas.card import DEFAULT_KEY, ModelCard
from schemas.events import ThresholdSource, utc_now_iso
from schemas.kinds import ThresholdMethod
from stream_detector.constants import (
    REDIS_THRESHOLD_CHANNEL,
    REDIS_THRESHOLD_PREFIX,
    namespaced,
)

__all__ = [
    "CardThresholds",
    "DEFAULT_KEY",
    "ResolvedThreshold",
    "ThresholdEntry",
    "ThresholdStore",
    "change_message",
    "decode_entries",
    "change_channel",
    "hash_name",
    "parse_change",
]

log = logging.getLogger(__name__)


class ThresholdEntry(BaseModel):
    """One threshold as stored in a Redis hash field."""

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    value: float
    method: ThresholdMethod = "manual"
    set_at: str = Field(default_factory=utc_now_iso)
    set_by: str = ""

    def to_json(self) -> str:
        """The hash field's value."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, raw: str | bytes) -> ThresholdEntry:
        """Parse a hash field's value; raises ``pydantic.ValidationError`` if malformed."""
        return cls.model_validate_json(raw)


@dataclass(frozen=True, slots=True)
class ResolvedThreshold:
    """The threshold that applies to a key, and where it came from (for the event)."""

    value: float
    source: ThresholdSource


class CardThresholds:
    """A model card's calibrated thresholds as a lookup: the key's own, else the card default.

    Pure (no Redis): offline scoring decides with it, and the worker's threshold cache falls
    back to it when Redis holds nothing for a key. Sources say ``scope="card_key"`` or
    ``"card_default"``, ``set_by="card"``.

    Examples
    --------
    >>> from schemas.card import ModelCard
    >>> card = ModelCard.model_construct(name="m", version="1", created_at="2026-01-01T00:00:00Z",
    ...     thresholds=type("T", (), {"method": "fpr", "default": 4.0, "per_key": {"a": 2.5}})())
    >>> lookup = CardThresholds(card).lookup
    >>> (lookup("a").value, lookup("a").source.scope, lookup("b").value, lookup("b").source.scope)
    (2.5, 'card_key', 4.0, 'card_default')
    """

    def __init__(self, card: ModelCard) -> None:
        th = card.thresholds
        per_key = ThresholdSource(method=th.method, version=card.version, scope="card_key",
                                  set_by="card", set_at=card.created_at)
        self._by_key = {k: ResolvedThreshold(v, per_key) for k, v in th.per_key.items()}
        self.default = ResolvedThreshold(
            th.default, per_key.model_copy(update={"scope": "card_default"})
        )

    def lookup(self, key: str) -> ResolvedThreshold:
        """The card's threshold for ``key`` (per key when calibrated per key)."""
        return self._by_key.get(key, self.default)


def hash_name(model_name: str, model_version: str, namespace: str = "") -> str:
    """Redis hash holding one model version's thresholds (in a deployment's namespace).

    >>> hash_name("nab", "3")
    'sd:threshold:nab:3'
    >>> hash_name("nab", "3", "team-a")
    'sd:team-a:threshold:nab:3'
    """
    return f"{namespaced(REDIS_THRESHOLD_PREFIX, namespace)}{model_name}:{model_version}"


def change_channel(namespace: str = "") -> str:
    """The pub/sub channel announcing threshold changes of a namespace."""
    return namespaced(REDIS_THRESHOLD_CHANNEL, namespace)


def change_message(model_name: str, model_version: str, keys: Iterable[str] | None) -> str:
    """Pub/sub payload announcing changed ``keys`` (None: reload everything)."""
    body: dict[str, Any] = {"model": model_name, "version": model_version, "keys": None}
    if keys is not None:
        body["keys"] = sorted(keys)
    return json.dumps(body)


def parse_change(raw: str | bytes, model_name: str, model_version: str) -> list[str] | None:
    """Keys a change message asks this model's cache to refetch.

    Returns ``[]`` for messages about other models (or unreadable ones) and ``None`` when
    the whole hash should be reloaded.

    >>> parse_change('{"model": "m", "version": "1", "keys": ["a"]}', "m", "1")
    ['a']
    >>> parse_change('{"model": "m", "version": "2", "keys": ["a"]}', "m", "1")
    []
    """
    try:
        body = json.loads(raw)
        if body.get("model") != model_name or body.get("version") != model_version:
            return []
        keys = body.get("keys")
        return None if keys is None else [str(k) for k in keys]
    except (ValueError, AttributeError, TypeError):
        log.warning("ignoring malformed threshold change message %r", raw[:200])
        return []


def _default_setter() -> str:
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except (OSError, KeyError):
        return "unknown"


def decode_entries(raw: Mapping[Any, Any]) -> dict[str, ThresholdEntry]:
    """Entries of a hash as Redis returned them; malformed ones are logged and skipped."""
    out = {}
    for field, value in raw.items():
        key = field.decode() if isinstance(field, bytes) else str(field)
        try:
            out[key] = ThresholdEntry.from_json(value)
        except ValidationError:
            log.warning("ignoring malformed threshold entry %r: %r", key, value)
    return out


class ThresholdStore:
    """Read and write thresholds in Redis (CLI, training export, operators).

    Every write runs in one transaction with its change notification, so workers hear
    of each change exactly when it becomes visible.
    """

    def __init__(self, client: Redis, namespace: str = "") -> None:
        self.client = client
        self.namespace = namespace
        self.channel = change_channel(namespace)

    def _hash(self, name: str, version: str) -> str:
        return hash_name(name, version, self.namespace)

    def get(self, name: str, version: str, key: str = DEFAULT_KEY) -> ThresholdEntry | None:
        """One entry, or None when the key has none of its own."""
        raw = self.client.hget(self._hash(name, version), key)
        return None if raw is None else ThresholdEntry.from_json(raw)

    def list(self, name: str, version: str) -> dict[str, ThresholdEntry]:
        """Every entry of a model version (``*`` is the default)."""
        return decode_entries(self.client.hgetall(self._hash(name, version)))

    def model_versions(self, most: int = 1000) -> tuple[tuple[str, str], ...]:
        """(name, version) of the model versions with thresholds in Redis, sorted (at most
        ``most``, read with SCAN, which never blocks the server)."""
        prefix = self._hash("", "")[:-1]  # "sd:threshold:" in the namespace
        found = set()
        for raw in self.client.scan_iter(match=f"{prefix}*", count=500):
            name, _, version = (raw.decode() if isinstance(raw, bytes) else str(raw))[
                len(prefix):].rpartition(":")
            found.add((name, version))
            if len(found) >= most:
                break
        return tuple(sorted(found))

    def set_many(self, name: str, version: str, entries: Mapping[str, ThresholdEntry]) -> None:
        """Write several entries and announce them in one transaction."""
        if not entries:
            return
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self._hash(name, version), mapping={k: e.to_json() for k, e in entries.items()})
        pipe.publish(self.channel, change_message(name, version, entries))
        pipe.execute()

    def set(
        self,
        name: str,
        version: str,
        key: str,
        value: float,
        *,
        method: ThresholdMethod = "manual",
        set_by: str | None = None,
    ) -> ThresholdEntry:
        """Set one key's threshold (``key="*"`` sets the model default)."""
        if not math.isfinite(value):
            raise ValueError(f"threshold must be finite, got {value}")
        entry = ThresholdEntry(value=value, method=method, set_by=set_by or _default_setter())
        self.set_many(name, version, {key: entry})
        return entry

    def delete(self, name: str, version: str, key: str) -> bool:
        """Remove a key's own threshold (it falls back to the default); True if it existed."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(self._hash(name, version), key)
        pipe.publish(self.channel, change_message(name, version, [key]))
        removed, _ = pipe.execute()
        return bool(removed)

    def publish_from_card(self, card: ModelCard, *, set_by: str = "model-card",
                          replace: bool = False) -> int:
        """Write the card's calibrated default and per-key thresholds; returns the count.

        Keys given a threshold of their own since (``thresholds set``, the explorer) keep
        it, ahead of the published default (:meth:`kept` lists them), unless ``replace``:
        then the version's hash is rewritten in the same transaction, holding exactly the
        card's thresholds, and workers reload it whole."""
        th = card.thresholds
        values = {DEFAULT_KEY: th.default, **th.per_key}
        now = utc_now_iso()  # when they were set in Redis (the card keeps when it was made)
        entries = {k: ThresholdEntry(value=v, method=th.method, set_at=now, set_by=set_by)
                   for k, v in values.items()}
        if not replace:
            self.set_many(card.name, card.version, entries)
            return len(entries)
        name = self._hash(card.name, card.version)
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(name)
        pipe.hset(name, mapping={k: e.to_json() for k, e in entries.items()})
        pipe.publish(self.channel, change_message(card.name, card.version, None))
        pipe.execute()
        return len(entries)

    def kept(self, card: ModelCard) -> dict[str, ThresholdEntry]:
        """Entries of the card's version in Redis for keys the card does not calibrate:
        thresholds set since, which a worker applies ahead of the card's default."""
        ours = {DEFAULT_KEY, *card.thresholds.per_key}
        return {k: e for k, e in self.list(card.name, card.version).items() if k not in ours}
