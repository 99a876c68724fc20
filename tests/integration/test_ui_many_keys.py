"""The explorer with 10,000 keys in a real browser: the swim lane pages and searches on the
server, sorts by severity, and a page of 40 keys draws quickly. Events are produced straight
to the anomaly topic (valid AnomalyEvents), records to the input topic: no worker needed."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from ui_events import event
from ui_harness import chromium, run_ui
from worker_harness import produce, topic_names

from stream_detector.services.process import ServiceHandle

pytestmark = pytest.mark.slow

KEYS = [f"store-{i // 100:02d}/item-{i % 100:02d}" for i in range(10_000)]


def test_ten_thousand_keys_page_search_and_sort(
    kafka_broker: ServiceHandle, redis_server: ServiceHandle, tmp_path: Path,
) -> None:
    from playwright.sync_api import sync_playwright

    topics = topic_names("uik")
    records = [(k.encode(), json.dumps([
        {"kind": "series", "series": k, "timestamp": f"2026-01-01T{h:02d}:00:00", "value": h}
        for h in range(0, 24, 6)]).encode()) for k in KEYS]
    events = [(k.encode(), event(k, 60 * (i % 24), float(i % 100)).model_dump_json().encode())
              for i, k in enumerate(KEYS) if i % 7 == 0]
    produce(kafka_broker, topics["input"], records)
    produce(kafka_broker, topics["output"], events)
    with run_ui(kafka_broker, redis_server, topics, [], tmp_path) as ui, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(ui.url + "#overview")
        page.wait_for_function("() => document.getElementById('counts').textContent"
                               f".includes('{len(events):,} anomalies')", timeout=60_000)
        page.wait_for_selector("#pageinfo:has-text('of 10,000')")
        keys = _shown(page)
        assert len(keys) == 40
        severities = [event_severity(k) for k in keys]
        assert severities == sorted(severities, reverse=True) and severities[0] == 99
        page.screenshot(path=str(tmp_path / "overview-10000-keys.png"), full_page=True)
        started = time.monotonic()
        page.click("#next")
        page.wait_for_selector("#pageinfo:has-text('keys 41-80 of 10,000')")
        print(f"\nnext page of the swim lane drawn in {time.monotonic() - started:.2f} s")
        page.fill("#search", "store-42/")
        page.wait_for_selector("#pageinfo:has-text('of 100 ')")
        assert all(k.startswith("store-42/") for k in _shown(page))
        page.select_option("#sort", "key")
        page.wait_for_function("() => JSON.parse(document.getElementById('swimlane')"
                               ".dataset.keys)[0] === 'store-42/item-00'")
        browser.close()
    print(f"screenshot: {tmp_path / 'overview-10000-keys.png'}")


def _shown(page: Any) -> list[str]:
    keys: list[str] = page.evaluate(
        "JSON.parse(document.getElementById('swimlane').dataset.keys)")
    return keys


def event_severity(key: str) -> int:
    """The severity the test gave ``key``'s event (-1: none)."""
    i = KEYS.index(key)
    return i % 100 if i % 7 == 0 else -1
