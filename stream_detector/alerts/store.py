"""Open incidents between runs: a Redis hash per consumer group, written before commits.

The consumer calls :func:`persist` after a message's posts and before its offset is
committed, so a restarted consumer resumes the incidents still going on
(:meth:`~stream_detector.alerts.incidents.IncidentTracker.resume`) instead of paging again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from stream_detector.alerts.incidents import IncidentTracker, incident_state
from stream_detector.constants import REDIS_ALERTS_PREFIX, namespaced

__all__ = ["IncidentStore", "RedisIncidentStore", "persist"]


class IncidentStore(Protocol):
    """Where open incidents live between runs (JSON per key, see ``incident_state``)."""

    def save(self, states: dict[str, str]) -> None: ...

    def delete(self, keys: list[str]) -> None: ...


class RedisIncidentStore:
    """Open incidents of one consumer group in the Redis hash ``sd:[NS:]alerts:GROUP``.

    Under the project's ``sd:`` prefix like every key, so one ACL rule (``~sd:* &sd:*``)
    covers all that stream-detector touches.

    Parameters
    ----------
    client
        A ``redis.Redis`` client (errors are ``redis.RedisError``).
    group
        The alerts consumer group whose incidents these are.
    namespace
        The settings' namespace (teams sharing one Redis), "" for none.
    """

    def __init__(self, client: Any, group: str, namespace: str = "") -> None:
        self._redis = client
        self.name = f"{namespaced(REDIS_ALERTS_PREFIX, namespace)}{group}"

    def load(self) -> list[bytes]:
        """Every saved incident state (JSON bytes, one per key)."""
        return list(self._redis.hvals(self.name))

    def save(self, states: dict[str, str]) -> None:
        """Write states by series key (replacing those keys' earlier states)."""
        self._redis.hset(self.name, mapping=states)

    def delete(self, keys: list[str]) -> None:
        """Forget the states of these series keys (their incidents closed)."""
        self._redis.hdel(self.name, *keys)


def persist(tracker: IncidentTracker, store: IncidentStore | None, wall_now: float,
            log: Callable[[str], None]) -> None:
    """Save what changed since the last call; a Redis outage costs the restart memory,
    never the paging (logged, not raised).

    Parameters
    ----------
    wall_now
        Wall-clock epoch seconds, saved with each state (another process resumes from it).
    """
    opened, closed = tracker.take_changes()
    if store is None or not (opened or closed):
        return
    try:
        if opened:
            store.save({k: incident_state(i, tracker.now(), wall_now) for k, i in opened.items()})
        if closed:
            store.delete(closed)
    except Exception as exc:  # noqa: BLE001 - any store failure: log it and keep alerting
        log(f"incident state not saved ({type(exc).__name__}: {exc}); alerting goes on")
