"""When a consumer that should stop once idle may stop: when it has read every assigned
partition to its end and then seen nothing for the idle time.

``tail --exit-when-idle`` and ``alerts --exit-when-idle`` counted the idle time from their
start: a short one ran out before the first fetch (or the group join) came back, and
``tail`` said a topic holding 41 events had none. The consumer needs
``enable.partition.eof`` so that reaching a partition's end is reported.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["PARTITION_EOF", "ReadToEnd"]

PARTITION_EOF: Final = -191  # confluent_kafka.KafkaError._PARTITION_EOF
# KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC: the topic does not exist
_NO_TOPIC: Final = frozenset({3, -188})


class ReadToEnd:
    """N idle seconds, counted once every assigned partition has been read to its end
    (:meth:`over`). A topic the broker does not know counts as read; without any answer
    (no assignment) it stops 10 s after N.

    >>> idle = ReadToEnd(now=0.0)
    >>> idle.assigned(None, [type("TP", (), {"partition": 0})()])
    >>> idle.over(5.0, 1.0)  # assigned, not yet read to the end
    False
    >>> idle.at_end(0); idle.over(5.0, 1.0)
    True
    >>> idle.message(0, 5.0); idle.at_end(0); idle.over(5.5, 1.0), idle.over(6.0, 1.0)
    (False, True)
    """

    GRACE = 10.0

    def __init__(self, now: float) -> None:
        self.started = self.last = now
        self.partitions: set[int] | None = None  # None: not assigned yet
        self.ended: set[int] = set()

    def assigned(self, consumer: Any, partitions: list[Any]) -> None:
        self.partitions = {p.partition for p in partitions}
        self.ended.clear()

    def no_topic(self) -> None:
        """The broker says the topic does not exist: nothing to read to its end."""
        if self.partitions is None:
            self.partitions = set()

    def at_end(self, partition: int) -> None:
        self.ended.add(partition)

    def error(self, code: int, partition: int) -> bool:
        """Note a polled error event (``msg.error().code()``): a partition read to its end,
        or a topic the broker does not know. False for any other error (the caller's)."""
        if code == PARTITION_EOF:
            self.at_end(partition)
        elif code in _NO_TOPIC:
            self.no_topic()
        else:
            return False
        return True

    def message(self, partition: int, now: float) -> None:
        self.ended.discard(partition)
        self.last = now

    def over(self, now: float, seconds: float) -> bool:
        if self.partitions is None:
            return now - self.started >= seconds + self.GRACE
        return self.partitions <= self.ended and now - self.last >= seconds
