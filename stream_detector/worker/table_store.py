"""Key states over the worker's Faust table: live objects in memory, bytes in the changelog.

The pipeline reads and writes :class:`~stream_detector.core.pipeline.KeyState` objects
through :class:`TableStore`; nothing reaches Kafka until :meth:`TableStore.flush`, which the
worker calls after a batch's output is delivered (or every ``state_flush_interval``, see
:mod:`stream_detector.worker.acks`). A state is written to the changelog partition of its
record's source partition, which is what Faust restores for the worker that owns it.

A decoded state costs several times its bytes (100,000 keys, a window of 24 values: 4.7 KB
a key with every state decoded, 1.1 KB with 10,000 of them; tracemalloc), so at most
``max_live`` are kept decoded. Once a write has put every snapshot in the table, the states
updated longest ago beyond that count are dropped from memory (never one with changes not
yet snapshotted); their key's next record decodes its bytes again, the same state.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice
from typing import Any, Protocol

from schemas.events import SourceRef
from stream_detector.core.key_state import KeyState

__all__ = ["DEFAULT_MAX_LIVE", "Blob", "TableStore", "table_key"]

DEFAULT_MAX_LIVE = 100_000  # decoded key states (Settings.state_cache_keys)

Blob = tuple[bytes, bytes, int | None]  # (table key, serialised state, changelog partition)


def table_key(model: str, key: str) -> bytes:
    """Changelog key of one model's state for one series key."""
    return f"{model}\x1f{key}".encode()


class _Table(Protocol):
    """What is needed of a Faust table: its data and a changelog write."""

    data: Any

    def send_changelog(self, partition: int | None, key: Any, value: Any) -> Any: ...


class TableStore:
    """Key states over a Faust table, written to its changelog only when told to flush.

    Live states are kept as objects (no decoding per record), at most ``max_live`` of them
    after each write, the most recently updated (module docstring); the table holds their
    bytes for recovery. Writes go to the changelog partition of the record's source
    partition, which is what Faust restores for a worker that owns that partition.
    Raises ``ValueError`` for ``max_live`` < 1.
    """

    def __init__(self, table: _Table, max_live: int = DEFAULT_MAX_LIVE) -> None:
        if max_live < 1:
            raise ValueError(f"max_live must be at least 1, got {max_live!r}")
        self.table = table
        self.max_live = max_live
        self.live: dict[bytes, KeyState] = {}  # in order of last update, oldest first
        self.dirty: dict[bytes, tuple[KeyState, int | None]] = {}

    def get(self, model: str, key: str) -> KeyState | None:
        k = table_key(model, key)
        state = self.live.get(k)
        if state is None:
            raw = self.table.data.get(k)
            if raw is not None:
                state = KeyState.from_bytes(bytes(raw))
                self.live[k] = state
        return state

    def put(self, model: str, key: str, state: KeyState, source: SourceRef) -> None:
        k = table_key(model, key)
        live = self.live
        live.pop(k, None)  # to the end: the order of last update
        live[k] = state
        self.dirty[k] = (state, source.partition)

    def flush(self) -> int:
        """Persist every touched state; returns how many.

        Every state is serialised before any is written, so a state that cannot be
        serialised leaves the table as it was (the worker then rolls back and isolates).
        """
        return self.write(self.serialize())

    def serialize(self) -> list[Blob]:
        """Every touched state as bytes, the touched set emptied (a snapshot that later
        changes of the live states do not alter); raises, changing nothing, when a state
        cannot be serialised."""
        blobs = [(k, state.to_bytes(), partition)
                 for k, (state, partition) in self.dirty.items()]
        self.dirty.clear()
        return blobs

    def write(self, blobs: Sequence[Blob]) -> int:
        """Put serialised states in the table (all of them first: it is the rollback
        point), then in its changelog; returns how many."""
        for k, blob, _ in blobs:
            self.table.data[k] = blob
        for k, blob, partition in blobs:
            self.table.send_changelog(partition, k, blob)
        self._evict()
        return len(blobs)

    def _evict(self) -> None:
        """Drop decoded states beyond ``max_live``, updated longest ago first, none with
        changes not yet snapshotted. Called once a snapshot is in the table: one flush is
        in flight at a time, so every other state's newest bytes are there."""
        live, dirty = self.live, self.dirty
        excess = len(live) - self.max_live
        if excess <= 0:
            return
        drop = [k for k in islice(live, excess + len(dirty)) if k not in dirty][:excess]
        for k in drop:
            del live[k]

    def touch_again(self, blobs: Sequence[Blob]) -> None:
        """Mark the states of ``blobs`` touched again (their write failed): the next
        flush writes their live states, which hold everything the blobs held."""
        for k, _, partition in blobs:
            state = self.live.get(k)
            if state is not None and k not in self.dirty:
                self.dirty[k] = (state, partition)

    def forget(self) -> None:
        """Drop live objects (after a rebalance: partitions may have moved; or to roll
        back to the last flush: the table still holds the states as flushed)."""
        self.live.clear()
        self.dirty.clear()
