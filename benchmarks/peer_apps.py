"""Peers of the worker doing the same job, for the throughput table (benchmark children).

Each consumes a pre-produced topic of series records (one per message, or JSON lists of
one key), parses the JSON, keeps a window of ``BENCH_WINDOW`` values per key, scores every
full window with ONNX Runtime (one intra-op thread, the same model file), compares the
score with ``BENCH_THRESHOLD`` and produces an event per alert to ``<topic>-peer-out``:

- ``plain``: a confluent-kafka consumer loop, numpy windows, ORT in batches per poll;
- ``quix_state``: quixstreams, per-record scoring, windows in its State API (RocksDB);
- ``quix_dict``: quixstreams, per-record scoring, windows in a Python dict.

They run in the peers' own virtual environment (``benchmarks/requirements-peers.txt``,
built by :mod:`benchmarks.peers`), so they import neither stream_detector nor Faust.
Configured like :mod:`benchmarks.bare_agent`: ``BENCH_KAFKA_URL``, ``BENCH_TOPIC``,
``BENCH_EXPECT`` (records to count), ``BENCH_OUT`` (JSON with the times of the first and
the last record), ``BENCH_DATADIR``, plus ``BENCH_MODE``, ``BENCH_MODEL`` (model.onnx),
``BENCH_WINDOW`` and ``BENCH_THRESHOLD``.

    <peer venv>/bin/python -m benchmarks.peer_apps
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from benchmarks.counting import RecordCounter

__all__ = ["main"]


def _session(model: str) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _rows(doc: Any) -> list[dict[str, Any]]:
    return doc if isinstance(doc, list) else [doc]


def plain(env: dict[str, str], counter: RecordCounter) -> None:
    """confluent-kafka consume loop; per key the last window-1 values; ORT per poll."""
    import numpy as np
    import orjson
    from confluent_kafka import Consumer, Producer

    w, threshold = int(env["BENCH_WINDOW"]), float(env["BENCH_THRESHOLD"])
    session = _session(env["BENCH_MODEL"])
    consumer = Consumer({"bootstrap.servers": env["BENCH_KAFKA_URL"],
                         "group.id": f"peer-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest"})
    producer = Producer({"bootstrap.servers": env["BENCH_KAFKA_URL"], "linger.ms": 5})
    consumer.subscribe([env["BENCH_TOPIC"]])
    out_topic = env["BENCH_TOPIC"] + "-peer-out"
    held: dict[str, Any] = {}
    empty = np.empty(0, np.float32)
    while True:
        batch, keys, records = [], [], 0
        for msg in consumer.consume(1000, 0.05):
            if msg.error():
                continue
            rows = _rows(orjson.loads(msg.value() or b"null"))
            key = rows[0]["series"]
            values = np.concatenate([held.get(key, empty),
                                     np.array([r["value"] for r in rows], np.float32)])
            if len(values) >= w:
                wins = np.lib.stride_tricks.sliding_window_view(values, w)
                batch.append(wins)
                keys += [key] * len(wins)
            held[key] = values[-(w - 1):]
            records += len(rows)
        if batch:
            x = np.concatenate(batch)[:, :, None]
            scores = session.run(["score"], {"windows": x})[0]
            for i in np.flatnonzero(scores > threshold).tolist():
                producer.produce(out_topic, key=keys[i].encode(),
                                 value=orjson.dumps({"key": keys[i], "score": float(scores[i])}))
            producer.poll(0)
        if records and counter.add(records):
            producer.flush(10)


def quix(env: dict[str, str], counter: RecordCounter, use_state: bool) -> None:
    """quixstreams: one record at a time, scored alone, window in State or in a dict."""
    import numpy as np
    from quixstreams import Application

    w, threshold = int(env["BENCH_WINDOW"]), float(env["BENCH_THRESHOLD"])
    session = _session(env["BENCH_MODEL"])
    app = Application(broker_address=env["BENCH_KAFKA_URL"],
                      consumer_group=f"quix-{uuid.uuid4().hex[:8]}",
                      auto_offset_reset="earliest", state_dir=env["BENCH_DATADIR"],
                      loglevel="WARNING")
    source = app.topic(env["BENCH_TOPIC"], value_deserializer="json")
    sink = app.topic(env["BENCH_TOPIC"] + "-peer-out", value_serializer="json")
    windows: dict[str, list[float]] = {}

    def score(key: str, window: list[float]) -> dict[str, Any] | None:
        x = np.asarray(window, np.float32).reshape(1, w, 1)
        s = float(session.run(["score"], {"windows": x})[0][0])
        return {"key": key, "score": s} if s > threshold else None

    def step(value: Any, state: Any = None) -> list[dict[str, Any]]:
        rows = _rows(value)
        key = rows[0]["series"]
        window = state.get("w", []) if use_state else windows.get(key, [])
        alerts = []
        for r in rows:
            window.append(r["value"])
            if len(window) > w:
                del window[0]
            if len(window) == w and (alert := score(key, window)) is not None:
                alerts.append(alert)
        if use_state:
            state.set("w", window)
        else:
            windows[key] = window
        counter.add(len(rows))
        return alerts

    sdf = app.dataframe(source)
    sdf = sdf.apply(step, stateful=use_state) if use_state else sdf.apply(step)
    sdf = sdf.filter(bool)
    sdf.to_topic(sink)
    app.run()


def main() -> None:
    env = dict(os.environ)
    counter = RecordCounter(int(env["BENCH_EXPECT"]), Path(env["BENCH_OUT"]))
    mode = env["BENCH_MODE"]
    if mode == "plain":
        plain(env, counter)
    elif mode in ("quix_state", "quix_dict"):
        quix(env, counter, use_state=mode == "quix_state")
    else:
        raise SystemExit(f"unknown BENCH_MODE {mode!r}; use plain, quix_state or quix_dict")


if __name__ == "__main__":
    main()
