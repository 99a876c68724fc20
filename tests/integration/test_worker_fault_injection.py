"""A fault at any stage of the worker's batch costs one record, never the worker.

The real worker (its own process, the session's Kafka broker and redis-server) runs with
faults injected at start-up (a ``sitecustomize`` module the test writes): a record whose
value is 601 fails parsing, 602 windowing, 603 scoring, 604 deciding, 605 building its
event, 606 persisting its key's state; three records carry timestamps outside the allowed
range (years 1, 9999 and 2262). Each must reach the dead-letter topic with the stage or
the range named, every spike around them must still alert, and a restarted worker (same
faults) must not meet any of them again: their offsets were committed.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from model_fixtures import window_mean_model, write_registry_model
from worker_harness import consume, produce, run_worker, topic_names

from stream_detector.services.process import ServiceHandle

pytestmark = pytest.mark.slow

INJECT = '''
import numpy as np
import stream_detector.core.decisions as decisions_mod
import stream_detector.worker.runtime as worker_mod
from stream_detector.core.key_state import KeyState
from stream_detector.core.pipeline import Pipeline
from stream_detector.core.windowing import WindowState

def has(values, poison):
    return bool(np.any(np.asarray(values) == poison))

real_parse = worker_mod.parse_run
def parse(raw, *a, **k):
    if b"601.0" in raw:
        raise RuntimeError("injected parse fault")
    return real_parse(raw, *a, **k)
worker_mod.parse_run = parse
real_batch = worker_mod.series_runs
def parse_batch(raws, *a, **k):  # the batch's shared read fails: the batch is split
    if any(raw is not None and b"601.0" in raw for raw in raws):
        raise RuntimeError("injected parse fault")
    return real_batch(raws, *a, **k)
worker_mod.series_runs = parse_batch

poisoned = set()
real_extend = WindowState.extend_run
def extend(self, values, *a, **k):
    if has(values, 602.0):
        raise OverflowError("injected window fault")
    if has(values, 606.0):
        poisoned.add(id(self))
    return real_extend(self, values, *a, **k)
WindowState.extend_run = extend

real_score = Pipeline.score
def score(pending):
    if any(has(p.windows.values, 603.0) for p in pending):
        raise RuntimeError("injected score fault")
    return real_score(pending)
Pipeline.score = staticmethod(score)

real_decide = decisions_mod._decide_plain
def decide_plain(batch, run, *a, **k):
    if has(run.windows.values[:, -1], 604.0):
        raise ZeroDivisionError("injected decide fault")
    return real_decide(batch, run, *a, **k)
decisions_mod._decide_plain = decide_plain

real_build = decisions_mod.build_event
def build(*a, **k):
    if has(k["observed"], 605.0):
        raise ValueError("injected event fault")
    return real_build(*a, **k)
decisions_mod.build_event = build

real_bytes = KeyState.to_bytes
def to_bytes(self):
    if id(self.window) in poisoned:
        raise OverflowError("injected persist fault")
    return real_bytes(self)
KeyState.to_bytes = to_bytes
'''
RAW = {"normalise": False, "warmup": 0, "suppress": 4}  # one alert per spike
POISONS = {20: (601.0, "parse"), 40: (602.0, "window"), 60: (603.0, "score"),
           80: (604.0, "decide"), 100: (605.0, "decide"), 117: (606.0, "persist")}
OUT_OF_RANGE = {25: "0001-01-01T00:00:00Z", 45: "9999-12-31T23:59:59Z",
                65: "2262-04-12T00:00:00"}


def stamp(i: int) -> str:
    return f"2026-01-01T{i // 60:02d}:{i % 60:02d}:00"


def records(start: int, stop: int) -> list[tuple[bytes, bytes]]:
    out = []
    for i in range(start, stop):
        value = 100.0 if i % 20 == 10 else POISONS.get(i, (10.0, ""))[0]
        rec = {"kind": "series", "series": "cpu", "value": value,
               "timestamp": OUT_OF_RANGE.get(i, stamp(i))}
        out.append((b"cpu", json.dumps(rec).encode()))
    return out


def test_faults_at_every_stage_are_dead_lettered_and_never_replayed(
    kafka_broker: ServiceHandle, redis_server: ServiceHandle, redis_client: Any, tmp_path: Path
) -> None:
    model = write_registry_model(tmp_path / "registry" / "cpu" / "1",
                                 window_mean_model(4, 1, last_k=1), name="cpu", window=4,
                                 features=["value"], threshold=50.0, detection=RAW)
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(INJECT)
    repo = str(Path(__file__).resolve().parents[2])
    env = {"PYTHONPATH": os.pathsep.join([str(inject), repo])}
    topics = topic_names("faults")
    spikes = {stamp(i) for i in range(10, 120, 20)}
    with run_worker(kafka_broker, redis_server, [model], tmp_path, topics=topics,
                    extra_env=env) as worker:
        produce(kafka_broker, topics["input"], records(0, 120))
        dead = consume(kafka_broker, topics["dead"], 9, 90, settle=2)
        events = consume(kafka_broker, topics["output"], 7, 60, settle=1)
        assert worker.proc.poll() is None
        metrics = worker.get("/metrics")[1].decode()
        time.sleep(6)  # let Faust commit the offsets (every 2.8 s)
    letters = sorted((d["offset"], d["reason"], d["message"]) for d in dead)
    assert [(r, m.split(" failed")[0]) for _, r, m in letters if r == "unprocessable"] == [
        ("unprocessable", stage) for _, stage in POISONS.values()]
    ranged = [m for _, r, m in letters if r == "timestamp_range"]
    assert len(ranged) == 3 and all("[1900-01-01, 2200-01-01)" in m for m in ranged)
    ends = [e["window_end"] for e in events]
    # each spike alerts once; the 606 record alerted before its state failed to persist
    assert set(ends) - {stamp(117)} == spikes and len(ends) == len(set(ends))
    assert "stream_detector_batches_split_total" in metrics

    with run_worker(kafka_broker, redis_server, [model], tmp_path, topics=topics,
                    extra_env=env):
        produce(kafka_broker, topics["input"], records(120, 140))
        later = consume(kafka_broker, topics["output"], len(events) + 1, 60, settle=2)
        dead_again = consume(kafka_broker, topics["dead"], len(dead), 30, settle=2)
    assert {e["window_end"] for e in later} - set(ends) == {stamp(130)}
    assert len(dead_again) == len(dead)  # no poison was met again
