"""Fault isolation in the worker: an exception at any stage of a batch costs one record.

Each test injects a fault that fires on records whose value is ``POISON`` at one stage
(parse, window, score, decide, build event, persist state) and runs a batch through the
real :class:`WorkerRuntime` (real model, ONNX Runtime, a table double standing in for
Faust's changelog). The poison record must be dead-lettered naming the stage, every
other record processed exactly as in a batch without the poison record.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from model_fixtures import window_mean_model, write_registry_model

import stream_detector.core.decisions as decisions_mod
import stream_detector.worker.runtime as worker_mod
from schemas.events import DeadLetter
from stream_detector.core.key_state import KeyState
from stream_detector.core.model_runtime import ModelRuntime
from stream_detector.core.pipeline import Pipeline
from stream_detector.core.registry import load_model
from stream_detector.core.windowing import WindowState
from stream_detector.worker.messages import BatchResult, Message
from stream_detector.worker.metrics import WorkerMetrics
from stream_detector.worker.runtime import WorkerRuntime
from stream_detector.worker.table_store import TableStore
from stream_detector.worker.threshold_cache import ThresholdCache

POISON = 666.0
RAW = {"normalise": False, "warmup": 0, "suppress": 1}


class _Table:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def send_changelog(self, partition: int | None, key: bytes, value: bytes) -> None:
        pass


def tiny_model(tmp_path: Path) -> ModelRuntime:
    """A window-of-4 model on the newest value, raw scores against a threshold of 50."""
    model_dir = write_registry_model(
        tmp_path / "m", window_mean_model(4, 1, last_k=1), window=4, features=["value"],
        threshold=50.0, detection=RAW,
    )
    loaded = load_model(model_dir, preference="cpu")
    return ModelRuntime(loaded, ThresholdCache(loaded.card, client=None).lookup)  # type: ignore[arg-type]


Sender = Callable[[bytes, bytes], Awaitable[asyncio.Future[None]]]


def collecting_senders() -> tuple[Sender, Sender, list[bytes], list[bytes]]:
    """An event sender and a dead-letter sender that keep what they are given (delivered
    at once), and the two lists they append to."""
    events: list[bytes] = []
    dead: list[bytes] = []

    async def send_event(key: bytes, value: bytes) -> asyncio.Future[None]:
        events.append(value)
        return _delivered()

    async def send_dead(key: bytes, value: bytes) -> asyncio.Future[None]:
        dead.append(value)
        return _delivered()

    return send_event, send_dead, events, dead


def make_runtime(tmp_path: Path) -> tuple[WorkerRuntime, list[bytes], list[bytes]]:
    model = tiny_model(tmp_path)
    send_event, send_dead, events, dead = collecting_senders()
    rt = WorkerRuntime([model], TableStore(_Table()), WorkerMetrics(), send_event, send_dead)
    return rt, events, dead


def _delivered() -> asyncio.Future[None]:
    """What Faust's send gives back: a future of the delivery (here already done)."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


def message(offset: int, values: list[float], key: str = "k") -> Message:
    seconds = [offset * 10 + i for i in range(len(values))]
    recs = [{"kind": "series", "series": key, "value": v,
             "timestamp": f"2026-01-01T00:{s // 60:02d}:{s % 60:02d}"}
            for s, v in zip(seconds, values, strict=True)]
    raw = json.dumps(recs if len(recs) > 1 else recs[0]).encode()
    return Message(raw, "in", 0, offset)


# 30 single-record messages: flat 10s with 100s at offsets 9 and 19 (two events each
# window, as window_mean scores the newest value), the poison record at offset 14.
VALUES = [100.0 if i in (9, 19) else 10.0 for i in range(30)]


def batch(poison: bool) -> list[Message]:
    msgs = [message(i, [v]) for i, v in enumerate(VALUES)]
    if poison:
        msgs[14] = message(14, [POISON])
    return msgs


def _has_poison(values: Any) -> bool:
    return bool(np.any(np.asarray(values) == POISON))


def fault_parse(mp: pytest.MonkeyPatch) -> None:
    real = worker_mod.parse_run

    def parse(raw: bytes, *a: Any, **k: Any) -> Any:
        if str(POISON).encode() in raw:
            raise RuntimeError("injected parse fault")
        return real(raw, *a, **k)
    mp.setattr(worker_mod, "parse_run", parse)
    real_batch = worker_mod.series_runs

    def parse_batch(raws: list[bytes | None], *a: Any, **k: Any) -> Any:
        # read with its batch (series lists and lone records): the whole batch's read fails
        if any(raw is not None and str(POISON).encode() in raw for raw in raws):
            raise RuntimeError("injected parse fault")
        return real_batch(raws, *a, **k)
    mp.setattr(worker_mod, "series_runs", parse_batch)


def fault_window(mp: pytest.MonkeyPatch) -> None:
    real = WindowState.extend_run

    def extend(self: WindowState, values: Any, *a: Any, **k: Any) -> Any:
        if _has_poison(values):
            raise OverflowError("injected window fault")
        return real(self, values, *a, **k)
    mp.setattr(WindowState, "extend_run", extend)


def fault_persist(mp: pytest.MonkeyPatch) -> None:
    """A state that took the poison record cannot be serialised (until rolled back)."""
    poisoned: set[int] = set()
    real_extend, real_bytes = WindowState.extend_run, KeyState.to_bytes

    def extend(self: WindowState, values: Any, *a: Any, **k: Any) -> Any:
        if _has_poison(values):
            poisoned.add(id(self))
        return real_extend(self, values, *a, **k)

    def to_bytes(self: KeyState) -> bytes:
        if id(self.window) in poisoned:
            raise OverflowError("injected persist fault")
        return real_bytes(self)
    mp.setattr(WindowState, "extend_run", extend)
    mp.setattr(KeyState, "to_bytes", to_bytes)


def fault_score(mp: pytest.MonkeyPatch) -> None:
    real = Pipeline.score

    def score(pending: Any) -> Any:
        if any(_has_poison(p.windows.values) for p in pending):
            raise RuntimeError("injected score fault")
        return real(pending)
    mp.setattr(Pipeline, "score", staticmethod(score))


def fault_decide(mp: pytest.MonkeyPatch) -> None:
    real = decisions_mod._decide_plain

    def decide_plain(batch: Any, run: Any, *a: Any, **k: Any) -> Any:
        if _has_poison(run.windows.values[:, -1]):
            raise ZeroDivisionError("injected decide fault")
        return real(batch, run, *a, **k)
    mp.setattr(decisions_mod, "_decide_plain", decide_plain)


def fault_event(mp: pytest.MonkeyPatch) -> None:
    real = decisions_mod.build_event

    def build(*a: Any, **k: Any) -> Any:
        if _has_poison(k["observed"]):
            raise ValueError("injected event fault")
        return real(*a, **k)
    mp.setattr(decisions_mod, "build_event", build)


FAULTS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "parse": fault_parse, "window": fault_window, "score": fault_score,
    "decide": fault_decide, "event": fault_event, "persist": fault_persist,
}
STAGE = {"event": "decide"}  # events are built in the decide stage


def window_ends(events: list[bytes]) -> list[str]:
    return sorted(json.loads(e)["window_end"] for e in events)


@pytest.mark.parametrize("flush", [True, False])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_fault_at_any_stage_dead_letters_only_the_failing_record(
    fault: str, flush: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean, clean_events, _ = make_runtime(tmp_path / "clean")
    asyncio.run(clean.process(batch(poison=False)))
    expected = window_ends(clean_events)
    rt, events, dead = make_runtime(tmp_path / "faulty")
    FAULTS[fault](monkeypatch)
    # an earlier, unflushed batch must survive the rollback without sending twice
    first = batch(poison=True)

    async def scenario() -> BatchResult:  # one event loop, as in the worker: deliveries
        await rt.process(first[:5], flush=False)  # handed over here are awaited later
        result = await rt.process(first[5:], flush=flush)
        if not flush:  # the app flushes later, for several batches: persisting fails there
            await rt.flush()
        return result

    result = asyncio.run(scenario())
    letters = [DeadLetter.model_validate_json(d) for d in dead]
    assert [(d.reason, d.offset) for d in letters] == [("unprocessable", 14)]
    assert letters[0].message.startswith(f"{STAGE.get(fault, fault)} failed on the message")
    assert json.loads(letters[0].original_bytes())["value"] == POISON
    ends = window_ends(events)
    assert len(set(ends)) == len(ends)  # nothing sent twice
    if fault == "persist":  # the poison's own windows alerted before persisting failed
        assert set(expected) < set(ends)
    else:
        assert ends == expected  # nothing lost
    assert expected and len(result.dead) == (1 if flush or fault != "persist" else 0)
    assert rt.metrics.batches_split._value.get() == 1  # noqa: SLF001
    state = rt.store.get("tiny", "k")
    assert state is not None and state.window.count == 29  # every record but the poison
    # each record counted once, by the run that got through: never by a failed attempt
    # or by the replay of an earlier batch (a snapshot failing at the later flush finds
    # the poison after its batch was counted: it was consumed, then dead-lettered)
    late = fault == "persist" and not flush
    assert _count(rt.metrics.records_in, "series") == (30 if late else 29)
    assert _count(rt.metrics.windows_scored, "tiny") == _count(
        clean.metrics.windows_scored, "tiny") - (0 if late else 1)


def _count(counter: Any, label: str) -> float:
    return float(counter.labels(label)._value.get())  # noqa: SLF001


def test_the_failing_record_of_a_multi_record_message_is_isolated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt, events, dead = make_runtime(tmp_path)
    fault_score(monkeypatch)
    values = [10.0] * 9 + [100.0] + [10.0] * 3 + [POISON] + [10.0] * 6
    asyncio.run(rt.process([message(0, values)]))
    letters = [DeadLetter.model_validate_json(d) for d in dead]
    assert [d.message.split(":")[0] for d in letters] == [
        "score failed on record 13 of the message"]
    assert len(events) == 4  # the 100.0 still alerts, in each of the 4 windows holding it
    state = rt.store.get("tiny", "k")
    assert state is not None and state.window.count == len(values) - 1


def test_out_of_range_timestamps_are_dead_lettered_and_the_batch_goes_on(tmp_path: Path) -> None:
    rt, events, dead = make_runtime(tmp_path)
    msgs = batch(poison=False)
    for i, text in ((3, "0001-01-01T00:00:00Z"), (4, "9999-12-31T23:59:59Z"),
                    (5, "2262-04-12T00:00:00")):
        msgs[i] = Message(json.dumps({"kind": "series", "series": "k", "value": 5.0,
                                      "timestamp": text}).encode(), "in", 0, i)
    asyncio.run(rt.process(msgs))
    letters = [DeadLetter.model_validate_json(d) for d in dead]
    assert [(d.reason, d.offset) for d in letters] == [("timestamp_range", i) for i in (3, 4, 5)]
    assert "[1900-01-01, 2200-01-01)" in letters[0].message
    assert len(events) == 8 and rt.metrics.batches_split._value.get() == 0  # noqa: SLF001


def test_dead_letters_keep_the_message_key_and_headers_and_are_keyed_by_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dead letter from the parse, from fault isolation or a message without key or
    headers: the letter holds what the message had and goes out under the message's key."""
    sent: list[tuple[bytes, bytes]] = []

    async def send(key: bytes, value: bytes) -> asyncio.Future[None]:
        sent.append((key, value))
        return _delivered()

    rt = WorkerRuntime([tiny_model(tmp_path)], TableStore(_Table()), WorkerMetrics(), send, send)
    fault_score(monkeypatch)
    msgs = batch(poison=True)
    msgs[3] = Message(b'{"kind": "series", broken', "in", 0, 3, key=b"\x00bin\xff",
                      headers=[("trace-id", b"abc"), ("empty", None), ("trace-id", b"d")])
    msgs[14] = dataclasses.replace(msgs[14], key=b"k", headers={"origin": b"sensor-7"})
    msgs[20] = Message(b"[]", "in", 0, 20)  # no key, no headers
    asyncio.run(rt.process(msgs))
    dead = {DeadLetter.model_validate_json(v).offset: (k, v) for k, v in sent
            if b'"reason"' in v}
    assert sorted(dead) == [3, 14, 20]
    parse = DeadLetter.model_validate_json(dead[3][1])
    assert parse.reason == "malformed_json" and dead[3][0] == b"\x00bin\xff"
    assert parse.key_bytes() == b"\x00bin\xff" and not parse.truncated
    assert parse.header_bytes() == [("trace-id", b"abc"), ("empty", b""), ("trace-id", b"d")]
    poison = DeadLetter.model_validate_json(dead[14][1])
    assert poison.reason == "unprocessable" and dead[14][0] == b"k"
    assert poison.key_bytes() == b"k" and poison.header_bytes() == [("origin", b"sensor-7")]
    bare = json.loads(dead[20][1])
    assert dead[20][0] == b"" and "original_key" not in bare and "headers" not in bare
