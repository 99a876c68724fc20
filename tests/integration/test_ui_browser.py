"""The explorer in a real browser (Debian's headless Chromium, driven by Playwright) against
a real worker, broker and redis-server: anomalies show up live in the table and the swim
lane within 2 s of being emitted, the key view draws the expected band, a threshold set on
the page reaches the worker, and the page fetches nothing from outside 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from confluent_kafka import Consumer
from model_fixtures import window_mean_model, write_registry_model
from ui_harness import WATCH_JS, chromium, first_time_at_least, run_ui, series_messages
from worker_harness import bootstrap, produce, run_worker, topic_names

from stream_detector.core.thresholds import ThresholdStore
from stream_detector.services.process import ServiceHandle

pytestmark = pytest.mark.slow

KEY = "ui-series"
SPIKES = (60, 120, 180, 240)  # indices of 4 spikes among 300 points: 4 anomalies
THRESHOLD = 30.0


def values(n: int, spikes: tuple[int, ...], seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    v = 10 + rng.normal(0, 0.5, n)
    for i in spikes:
        v[i] += 60
    return [round(float(x), 3) for x in v]


@pytest.fixture()
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def _emitted(kafka: ServiceHandle, topic: str, stop: threading.Event,
             out: dict[str, float]) -> None:
    """event_id -> the anomaly message's Kafka timestamp (ms): when the worker emitted it."""
    import json

    consumer = Consumer({"bootstrap.servers": bootstrap(kafka), "group.id": f"t-{topic}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    try:
        while not stop.is_set():
            msg = consumer.poll(0.1)
            if msg is not None and not msg.error():
                out[json.loads(msg.value())["event_id"]] = float(msg.timestamp()[1])
    finally:
        consumer.close()


def _paced(kafka: ServiceHandle, topic: str, messages: list[tuple[bytes, bytes]],
           seconds: float) -> None:
    chunks = np.array_split(np.arange(len(messages)), 20)
    for idx in chunks:
        produce(kafka, topic, [messages[i] for i in idx])
        time.sleep(seconds / len(chunks))


def test_explorer_live_key_view_thresholds_and_no_outside_requests(
    kafka_broker: ServiceHandle, redis_server: ServiceHandle, redis_client: Any, tmp_path: Path,
    browser: Any,
) -> None:
    registry = tmp_path / "registry"
    write_registry_model(registry / "tiny" / "1", window_mean_model(8, 1), window=8,
                         threshold=THRESHOLD,
                         detection={"normalise": False, "warmup": 0, "suppress": 10})
    ThresholdStore(redis_client).set("tiny", "1", "*", THRESHOLD, set_by="test")
    topics = topic_names("ui")
    emitted: dict[str, float] = {}
    stop = threading.Event()
    with run_worker(kafka_broker, redis_server, [registry], tmp_path, topics=topics), \
            run_ui(kafka_broker, redis_server, topics, [registry], tmp_path,
                   "--allow-writes") as ui:
        watcher = threading.Thread(target=_emitted,
                                   args=(kafka_broker, topics["output"], stop, emitted))
        watcher.start()
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        requests: list[str] = []
        context.on("request", lambda r: requests.append(r.url))
        table, lane = context.new_page(), context.new_page()
        table.goto(ui.url + "#anomalies")
        lane.goto(ui.url + "#overview")
        for page in (table, lane):
            page.wait_for_selector("#live.on", timeout=10_000)
            page.evaluate(WATCH_JS)
        try:
            # 1. live: 300 points with 4 spikes over about 6 s
            _paced(kafka_broker, topics["input"], series_messages(KEY, values(300, SPIKES, 0)),
                   6.0)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (len(emitted) < len(SPIKES) or len(
                    table.evaluate("window.__rows")) < len(SPIKES)):
                time.sleep(0.2)
            time.sleep(2.5)
            rows: dict[str, float] = table.evaluate("window.__rows")
            lane_seen: list[list[Any]] = lane.evaluate("window.__lane")
            assert len(emitted) == len(SPIKES), emitted
            assert set(rows) == set(emitted)
            ordered = sorted(emitted.items(), key=lambda kv: kv[1])
            table_delay = [rows[eid] - at for eid, at in ordered]
            lane_delay = [(first_time_at_least(lane_seen, i + 1) or 1e18) - at
                          for i, (_, at) in enumerate(ordered)]
            print(f"\ntable delay ms {table_delay}\nswim lane delay ms {lane_delay}")
            assert max(table_delay) < 2000, table_delay
            assert max(lane_delay) < 2000, lane_delay
            assert lane.evaluate("JSON.parse(document.getElementById('swimlane')"
                                 ".dataset.keys)") == [KEY]

            # 2. the key view draws the observed values and the expected band
            key_page = context.new_page()
            key_page.goto(f"{ui.url}#key={KEY}")
            key_page.wait_for_function(
                "() => document.getElementById('keychart').data?.[3]?.x?.length === 4")
            traces = {t["name"]: t for t in key_page.evaluate(
                "document.getElementById('keychart').data.map(t => "
                "({name: t.name, x: t.x.length, y: t.y}))")}
            assert traces["observed"]["x"] == 300
            assert len([y for y in traces["expected band"]["y"] if y is not None]) == 4 * 5
            # the model's expectation: the window mean, the spike counted in (10 + 60 / 8)
            assert all(abs(y - 17.5) < 1 for y in traces["expected"]["y"]), traces["expected"]
            assert key_page.locator("#thresholds tbody tr").count() == 1

            # 3. a threshold set on the page reaches the worker
            key_page.fill("#setvalue", "1e6")
            key_page.click("#setform button")
            key_page.wait_for_selector("#setresult:has-text('set;')")
            entry = ThresholdStore(redis_client).get("tiny", "1", KEY)
            assert entry is not None and entry.value == 1e6
            assert entry.set_by == "stream-detector ui"
            key_page.wait_for_selector("#thresholds td:has-text('1.000e+6')")
            time.sleep(1.5)  # the worker applies pub/sub changes within a second
            before = len(emitted)
            produce(kafka_broker, topics["input"],
                    series_messages(KEY, values(40, (20,), 1), first=300))
            produce(kafka_broker, topics["input"],
                    series_messages("other", values(40, (20,), 2), first=300))
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(emitted) < before + 1:
                time.sleep(0.2)
            time.sleep(2)
            events = _events(kafka_broker, topics["output"])
            late = [e for e in events if e["window_end"] >= "2026-01-02T01:00"]
            assert {e["key"] for e in late} == {"other"}, late  # KEY's spike is now below

            # 4. a threshold that still alerts: the key's next anomaly carries it, and the
            # key view's threshold line shows it once the worker has applied it
            key_page.fill("#setvalue", "35")
            key_page.click("#setform button")
            key_page.wait_for_selector("#thresholds td:has-text('35.000')")
            time.sleep(1.5)
            produce(kafka_broker, topics["input"],
                    series_messages(KEY, values(40, (20,), 3), first=340))
            key_page.wait_for_function(
                "() => (document.getElementById('scorechart').data?.[1]?.y || []).includes(35)",
                timeout=20_000)
            shown = key_page.evaluate("fetch('/api/anomalies?key=' + encodeURIComponent("
                                      f"'{KEY}')).then(r => r.json())")
            newest = shown["rows"][0]
            assert (newest["threshold"], newest["threshold_by"]) == (35, "stream-detector ui")
        finally:
            stop.set()
            watcher.join()
    local = ui.url.rstrip("/")
    assert requests and all(u.startswith(local + "/") for u in requests), [
        u for u in requests if not u.startswith(local)]


def _events(kafka: ServiceHandle, topic: str) -> list[dict[str, Any]]:
    from worker_harness import consume

    return consume(kafka, topic, expected=10**6, timeout=5)
