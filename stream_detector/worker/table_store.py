"""Key states over the worker's Faust table: live objects in memory, bytes in the changelog.

The pipeline reads and writes :class:`~stream_detector.core.pipeline.KeyState` objects
through :class:`TableStore`; nothing reaches Kafka until :meth:`TableStore.flush`, which the
worker calls after a batch's output is delivered (or every ``state_flush_interval``, see
:mod:`stream_detector.worker.acks`). A state is written to the changelog partition of its
record's source partition, which is what Faust restores for the worker that owns it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from schemas.events import SourceRef
from stream_detector.core.key_state import KeyState

__all__ = ["Blob", "TableStore", "table_key"]

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

    Live states are kept as objects (no decoding per record); the table holds their bytes
    for recovery. Writes go to the changelog partition of the record's source partition,
    which is what Faust restores for a worker that owns that partition.
    """

    def __init__(self, table: _Table) -> None:
        self.table = table
        self.live: dict[bytes, KeyState] = {}
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
        self.live[k] = state
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
        return len(blobs)

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
