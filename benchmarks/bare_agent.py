"""The Faust ceiling: a minimal app whose agent only counts events (run as a subprocess).

Configured by environment variables (this is a benchmark child, not a product entry point):
``BENCH_KAFKA_URL``, ``BENCH_TOPIC``, ``BENCH_APP_ID``, ``BENCH_MODE`` (``take_events``, as
the worker consumes, or ``iterate``, a plain ``async for``), ``BENCH_EXPECT`` (records to
count), ``BENCH_PER_MESSAGE`` (records each event counts for, default 1: messages are not
parsed), ``BENCH_OUT`` (a JSON file written once ``BENCH_EXPECT`` records arrived, with
the wall-clock times of the first and the last event) and ``BENCH_DATADIR``.

    python -m benchmarks.bare_agent
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from benchmarks.counting import RecordCounter

__all__ = ["create_app", "main"]

BATCH_MAX = 1024  # the worker's defaults (Settings.batch_max, batch_wait)
BATCH_WAIT = 0.005


def create_app(env: dict[str, str]) -> Any:
    """The counting app; its agent reads raw bytes and does nothing else."""
    import faust

    app = faust.App(
        env["BENCH_APP_ID"], broker=env["BENCH_KAFKA_URL"], store="memory://",
        web_enabled=False, datadir=env["BENCH_DATADIR"], producer_linger_ms=1,
    )
    topic = app.topic(env["BENCH_TOPIC"], value_serializer="raw", key_serializer="raw")
    counter = RecordCounter(int(env["BENCH_EXPECT"]), Path(env["BENCH_OUT"]))
    per = int(env.get("BENCH_PER_MESSAGE", "1"))  # records in each message (not parsed)
    take = env.get("BENCH_MODE", "take_events") == "take_events"

    @app.agent(topic)
    async def count(stream: Any) -> None:
        if take:
            async for events in stream.take_events(BATCH_MAX, within=BATCH_WAIT):
                counter.add(len(events) * per)
        else:
            async for _value in stream:
                counter.add(per)

    return app


def main() -> None:
    import faust

    app = create_app(dict(os.environ))
    faust.Worker(app, loglevel="warning").execute_from_commandline()


if __name__ == "__main__":
    main()
