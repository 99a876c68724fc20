"""The transport's own produce-to-consume latency, the floor under the worker's: a plain
confluent-kafka consumer that does nothing with the messages (a benchmark child, started by
:func:`benchmarks.latency.transport_floor`, not a product entry point).

    python -m benchmarks.latency_probe BOOTSTRAP TOPIC MESSAGES OUT

It writes ``OUT.ready`` once its partitions are assigned, then ``OUT``: a JSON list, per
message, of the wall-clock ms at which ``poll`` returned it minus its CreateTime, after
``MESSAGES`` messages or 30 s without one. It fetches as the worker does by default (wait
at most 20 ms) but answers every record at once (``fetch.min.bytes`` 1) and polls one
message at a time, so nothing of its own batches the records.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

__all__ = ["main", "probe"]

SILENCE_S = 30.0
FETCH_WAIT_MS = 20  # Settings().fetch_max_wait


def probe(bootstrap: str, topic: str, messages: int, out: Path) -> list[float]:
    """Consume ``messages`` of ``topic`` and return their latencies (ms); see the module."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"probe-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "fetch.wait.max.ms": FETCH_WAIT_MS, "fetch.min.bytes": 1})
    ready = out.with_name(out.name + ".ready")

    def assigned(_consumer: Any, _partitions: Any) -> None:
        ready.touch()

    consumer.subscribe([topic], on_assign=assigned)
    got: list[float] = []
    last = time.monotonic()
    try:
        while len(got) < messages and time.monotonic() - last < SILENCE_S:
            msg = consumer.poll(0.1)
            if msg is None or msg.error() is not None:
                continue
            got.append(time.time() * 1000.0 - msg.timestamp()[1])
            last = time.monotonic()
    finally:
        consumer.close()
    return got


def main(argv: list[str] | None = None) -> None:
    bootstrap, topic, messages, out = (argv if argv is not None else sys.argv[1:])
    path = Path(out)
    got = probe(bootstrap, topic, int(messages), path)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(got))
    tmp.replace(path)  # whole or absent: the benchmark waits for it to exist


if __name__ == "__main__":
    main()
