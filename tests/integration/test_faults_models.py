"""Model faults against the real broker and redis-server (issue 12, items 2, 3, 4 and 5).

- ``stream-detector train --out`` into a served registry: the worker never sees the staging
  folder, loads the finished version, and later versions keep coming after a bad one.
- A corrupted newest version: a (re)started worker serves the newest valid one, with one
  error line naming the refused folder and a metric.
- A hot swap between compatible versions keeps every key's window and detection history.
- Two models of one kind: each record is scored by the one serving its key; records of no
  model's key and empty ``[]`` messages are dead letters.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from model_fixtures import window_mean_model, write_registry_model
from worker_harness import Worker, consume, produce, run_worker, topic_names

from stream_detector.services.process import ServiceHandle

pytestmark = pytest.mark.slow
FAST_POLL = {"STREAM_DETECTOR_MODEL_POLL_INTERVAL": "0.3"}
REFUSED = "stream_detector_model_versions_refused_total"


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.2)


def spikes(key: str, start: int, count: int, every: int = 10) -> list[tuple[bytes, bytes]]:
    """Flat 10s with a 100 every ``every`` records (one raw-score alert per spike)."""
    return [(key.encode(), json.dumps({
        "kind": "series", "series": key, "value": 100.0 if i % every == every - 1 else 10.0,
        "timestamp": f"2026-01-01T00:00:00.{i:06d}"}).encode())
        for i in range(start, start + count)]


def raw_model(path: Path, version: str, warmup: int = 0, **kw: Any) -> Path:
    detection = {"normalise": False, "warmup": warmup, "suppress": 4}
    return write_registry_model(path, window_mean_model(4, 1, last_k=1), version=version,
                                window=4, features=["value"], threshold=5.0,
                                detection=detection, **kw)


def wait_version(worker: Worker, version: str, timeout: float = 90.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if [m["version"] for m in worker.health()["models"]] == [version]:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"never served version {version}: {worker.health()}")


def corrupt(version_dir: Path) -> None:
    onnx = version_dir / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[:20])  # a truncated copy: sha256 no longer matches


def test_publishing_is_atomic_and_bad_versions_never_block_good_ones(
    kafka_broker: ServiceHandle, redis_server: ServiceHandle, tmp_path: Path
) -> None:
    registry = tmp_path / "registry"
    raw_model(registry / "cpu" / "1", "1", name="cpu")
    history = tmp_path / "cpu.csv"
    history.write_text("timestamp,value\n" + "".join(
        f"2026-01-01 {i // 60:02d}:{i % 60:02d}:00,{10 + 3 * math.sin(i / 10):.3f}\n"
        for i in range(300)))
    topics = topic_names("publish")
    with run_worker(kafka_broker, redis_server, [registry / "cpu"], tmp_path, topics=topics,
                    extra_env=FAST_POLL) as w:
        # the README's way of publishing, into the served registry, polled every 0.3 s
        done = subprocess.run(
            [sys.executable, "-m", "stream_detector", "train", "--data", str(history),
             "--out", str(registry), "--epochs", "1", "--no-progress"],
            env=w.env, capture_output=True, text=True, check=False, timeout=240)
        assert done.returncode == 0, done.stderr[-2000:]
        wait_version(w, "2")
        corrupt(raw_model(registry / "cpu" / "3", "3", name="cpu"))
        wait_until(lambda: w.metric(REFUSED, 'version="3"') == 1)
        raw_model(registry / "cpu" / "4", "4", name="cpu")  # published after a bad one
        wait_version(w, "4")
        produce(kafka_broker, topics["input"], spikes("cpu", 0, 40))
        events = consume(kafka_broker, topics["output"], 4, 60, settle=1)
    log = w.log.read_text()
    assert ".partial" not in log  # the staging folder was never looked at
    refused = [line for line in log.splitlines() if "refused" in line]
    assert len(refused) == 1 and str(registry / "cpu" / "3") in refused[0]
    assert len(events) == 4 and {e["model"]["version"] for e in events} == {"4"}

    # a worker (re)started now must not trip over the bad newest version
    corrupt(raw_model(registry / "cpu" / "5", "5", name="cpu"))
    (tmp_path / "restart").mkdir()
    with run_worker(kafka_broker, redis_server, [registry / "cpu"], tmp_path / "restart",
                    topics=topic_names("publish2")) as w2:
        assert [m["version"] for m in w2.health()["models"]] == ["4"]
        assert w2.metric(REFUSED, 'version="5"') == 1
    refused = [line for line in w2.log.read_text().splitlines() if "refused" in line]
    assert len(refused) == 1 and str(registry / "cpu" / "5") in refused[0]


def test_compatible_hot_swap_keeps_windows_and_history(
    kafka_broker: ServiceHandle, redis_server: ServiceHandle, tmp_path: Path
) -> None:
    registry = tmp_path / "registry" / "cpu"
    raw_model(registry / "1", "1", name="cpu", warmup=30)  # 30 windows before any alert
    topics = topic_names("carry")
    with run_worker(kafka_broker, redis_server, [registry], tmp_path, topics=topics,
                    extra_env=FAST_POLL) as w:
        produce(kafka_broker, topics["input"], spikes("cpu", 0, 40))
        first = consume(kafka_broker, topics["output"], 1, 60, settle=1)
        raw_model(registry / "2", "2", name="cpu", warmup=30)
        wait_version(w, "2")
        produce(kafka_broker, topics["input"], spikes("cpu", 40, 20))
        events = consume(kafka_broker, topics["output"], 3, 60, settle=1)
    assert [(e["model"]["version"], e["window_end"][-6:]) for e in first] == [("1", "000039")]
    # a cold start would be blind for 30 windows; carried over, v2 alerts at the next spikes
    assert [(e["model"]["version"], e["window_end"][-6:]) for e in events[1:]] == [
        ("2", "000049"), ("2", "000059")]


def test_a_hot_swap_says_which_hand_set_thresholds_stop_applying(
    kafka_broker: ServiceHandle, redis_server: ServiceHandle, redis_client: Any, tmp_path: Path
) -> None:
    """An operator's threshold on v1 silently gave way to v2's card when v2 was published:
    the only trace was 'thresholds: model card' in a later summary."""
    from stream_detector.core.thresholds import ThresholdStore

    registry = tmp_path / "registry" / "cpu"
    raw_model(registry / "1", "1", name="cpu")
    with run_worker(kafka_broker, redis_server, [registry], tmp_path,
                    extra_env=FAST_POLL) as w:
        ThresholdStore(redis_client).set("cpu", "1", "*", 3.0, set_by="operator")
        raw_model(registry / "2", "2", name="cpu")
        wait_version(w, "2")
        wait_until(lambda: "do not apply to v2" in w.log.read_text())
    line = next(x for x in w.log.read_text().splitlines() if "do not apply to v2" in x)
    assert "thresholds set by hand on cpu v1 do not apply to v2, which uses its card's: " \
        "* 3 (by operator); set them for v2 with `stream-detector thresholds set cpu KEY " \
        "VALUE --version 2`" in line
    assert "WARNING" in line


def test_each_record_goes_to_exactly_one_model_or_to_the_dead_letters(
    kafka_broker: ServiceHandle, redis_server: ServiceHandle, tmp_path: Path
) -> None:
    a = raw_model(tmp_path / "reg" / "a" / "1", "1", name="a", serves={"keys": ["AAPL"]})
    b = raw_model(tmp_path / "reg" / "b" / "1", "1", name="b", serves={"pattern": "GO+G"})
    topics = topic_names("route")
    with run_worker(kafka_broker, redis_server, [a, b], tmp_path, topics=topics) as w:
        produce(kafka_broker, topics["input"],
                spikes("AAPL", 0, 40) + spikes("GOOG", 0, 40) + spikes("IBM", 0, 30)
                + [(b"AAPL", b"[]"), (b"x", b" [ ] ")])
        events = consume(kafka_broker, topics["output"], 8, 60, settle=2)
        dead = consume(kafka_broker, topics["dead"], 32, 60, settle=1)
        unrouted = w.metric("stream_detector_unrouted_records_total", 'kind="series"')
    assert Counter((e["key"], e["model"]["name"]) for e in events) == {
        ("AAPL", "a"): 4, ("GOOG", "b"): 4}
    assert len({e["event_id"] for e in events}) == len(events)
    assert Counter(d["reason"] for d in dead) == {"unrouted": 30, "empty_message": 2}
    assert all("IBM" in d["message"] for d in dead if d["reason"] == "unrouted")
    assert unrouted == 30
