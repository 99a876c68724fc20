"""Key states over the worker's Faust table: live objects in memory, bytes in the changelog.

The pipeline reads and writes :class:`~stream_detector.core.pipeline.KeyState` objects
through :class:`TableStore`; nothing reaches Kafka until :meth:`TableStore.flush`, which the
worker calls after a batch's output is delivered (or every ``state_flush_interval``, see
:mod:`stream_detector.worker.acks`). A state is written to the changelog partition of its
record's source partition, which is what Faust restores for the worker that owns it.
"""

from __future__ import annotations

from typing import Any, Protocol

from schemas.events import SourceRef
from stream_detector.core.key_state import KeyState

__all__ = ["TableStore", "table_key"]


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
        blobs = [(k, state.to_bytes(), partition)
                 for k, (state, partition) in self.dirty.items()]
        for k, blob, partition in blobs:
            self.table.data[k] = blob
            self.table.send_changelog(partition, k, blob)
        n = len(self.dirty)
        self.dirty.clear()
        return n

    def forget(self) -> None:
        """Drop live objects (after a rebalance: partitions may have moved; or to roll
        back to the last flush: the table still holds the states as flushed)."""
        self.live.clear()
        self.dirty.clear()
