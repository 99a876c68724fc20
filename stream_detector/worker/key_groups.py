"""Which messages of a batch go to one key's window together.

A busy key sends several messages into one batch (its messages share a partition), and
ingesting each one alone costs the same state look-up, time check and window bookkeeping
whatever its size (about 30 us a message on 2 cores, against 0.14 us a record). The worker
therefore hands a key's whole messages of a batch to
:meth:`~stream_detector.core.pipeline.Pipeline.ingest_group` in one call, at the place of the
key's first message: the key's records stay in order; keys are independent, so moving one
key's later messages ahead of other keys' changes no window, state or event (only the order
in which different keys' events are handed to the producer, which Kafka does not keep
across partitions anyway).
"""

from __future__ import annotations

from collections.abc import Sequence

from stream_detector.core.record_runs import RecordRun
from stream_detector.worker.messages import Message

__all__ = ["Parsed", "key_groups"]

Parsed = tuple[Message, list[RecordRun]]  # a message and its runs


def key_groups(parsed: Sequence[Parsed | None]) -> dict[int, list[int]]:
    """Groups of two or more whole messages (one run each, not a slice of a message) of
    one record kind and key, all from one topic partition: the index of each group's first
    message -> the indices of all its messages, in batch order. A key whose messages of the
    batch come from several partitions (a producer that does not key by it) or that also
    has other messages (slices, several runs) is not grouped: its records keep the batch's
    order. ``None`` entries (messages that became dead letters) belong to no group.

    >>> import numpy as np
    >>> def entry(key, offset):
    ...     run = RecordRun("series", key, np.zeros((1, 1), np.float32), [0], ["t"])
    ...     return Message(b"", "in", 0, offset), [run]
    >>> key_groups([entry("a", 0), entry("b", 1), None, entry("a", 3), entry("c", 4)])
    {0: [0, 3]}
    >>> other = (Message(b"", "in", 1, 5), entry("a", 5)[1])  # a in another partition
    >>> key_groups([entry("a", 0), entry("a", 3), other])
    {}
    """
    by_key: dict[tuple[str, str], list[int]] = {}
    where: dict[tuple[str, str], tuple[str, int | None] | None] = {}
    for i, entry in enumerate(parsed):
        if entry is None:
            continue
        msg, runs = entry
        for run in runs:
            k = (run.kind, run.key)
            part = (msg.topic, msg.partition)
            whole = len(runs) == 1 and not msg.first_record and msg.stop_record is None
            where[k] = part if whole and where.get(k, part) == part else None
            by_key.setdefault(k, []).append(i)
    return {members[0]: members for k, members in by_key.items()
            if len(members) > 1 and where[k] is not None}
