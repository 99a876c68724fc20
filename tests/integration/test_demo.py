"""``stream-detector demo`` end to end: real broker, redis-server, worker process, report.

The first test runs the command as a person would (``--duration 60``) against the session's
services; the second interrupts a demo that started its own services and checks that
nothing it started outlives it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stream_detector.services.process import ServiceHandle

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _demo(*args: str) -> list[str]:
    return [sys.executable, "-m", "stream_detector", "demo", *args]


def _value(pattern: str, text: str) -> float:
    found = re.search(pattern, text, re.M)
    assert found, f"{pattern!r} not in:\n{text}"
    return float(found.group(1).replace(",", ""))


@pytest.mark.timeout(480)
def test_demo_series_end_to_end(
    kafka_broker: ServiceHandle, redis_server: ServiceHandle, tmp_path: Path
) -> None:
    done = _run_watching_the_explorer(
        _demo("--kind", "series", "--duration", "60", "--kafka", kafka_broker.url,
              "--redis", redis_server.url, "--out", str(tmp_path), "--no-live"), tmp_path)
    out = done.stdout
    assert done.returncode == 0, done.stderr[-3000:]
    url = re.search(r"^explorer: (http://127\.0\.0\.1:\d+/) \(up while", out, re.M)
    assert url, out  # the summary names the explorer
    assert _value(r"^records: ([\d,]+) series records", out) == 4032
    assert _value(r"^windows: ([\d,]+) scored", out) > 4000
    anomalies = _value(r"^anomalies: (\d+) events?", out)
    assert anomalies >= 1
    assert "the offline pipeline finds" in out and ": same)" in out
    assert 0 < _value(r"^precision: ([\d.]+)", out) <= 1
    assert 0 < _value(r"^recall: ([\d.]+)", out) <= 1
    assert 30 < _value(r"^throughput: ([\d,]+) records/s", out) < 200  # paced at 4032/60
    p50, p99 = _value(r"^latency: p50 ([\d.]+) ms", out), _value(r"p99 ([\d.]+) ms", out)
    assert 0 <= p50 <= p99 < 10_000
    assert "anomaly synthetic_series at" in done.stderr  # --no-live prints each event
    last = out.strip().splitlines()[-1]
    assert last.startswith("report: ")
    report = Path(last.removeprefix("report: "))
    assert report.is_file()
    text = report.read_text()
    assert "plotly" in text and len(text) > 1_000_000  # plotly.js embedded
    assert not re.search(r"<script[^>]+src=[\"']https?:", text)
    assert text.count("<div class=\"figure\">") == 4
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": kafka_broker.url.split("://", 1)[1]})
    left = [t for t in admin.list_topics(timeout=10).topics if "demo-series" in t]
    assert not left  # a broker the demo was given is left without the run's topics


def _run_watching_the_explorer(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    """Run the demo; while it replays, its explorer's page must show its anomalies live."""
    from playwright.sync_api import sync_playwright
    from ui_harness import chromium

    err, out = tmp / "stderr.txt", tmp / "stdout.txt"
    with err.open("w") as e, out.open("w") as o:
        proc = subprocess.Popen(args, stdout=o, stderr=e, text=True, cwd=REPO)
    try:
        url = None
        deadline = time.monotonic() + 300
        while url is None and proc.poll() is None and time.monotonic() < deadline:
            found = re.search(r"explorer: (http://\S+/)", err.read_text())
            url = found.group(1) if found else None
            time.sleep(0.2)
        assert url, err.read_text()[-3000:]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(url + "#anomalies")
            page.wait_for_selector("#table tbody tr a[href='#key=synthetic_series']",
                                   timeout=120_000)
            assert proc.poll() is None  # seen while the demo was still running
            browser.close()
        proc.wait(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(args, proc.returncode, out.read_text(), err.read_text())


def _children(pid: int) -> set[int]:
    """Every descendant of ``pid`` (via /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {c for c, p in parents.items() if p in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.timeout(400)
def test_ctrl_c_stops_the_worker_and_the_services(tmp_path: Path) -> None:
    log = tmp_path / "demo.err"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            _demo("--kind", "series", "--duration", "120", "--out", str(tmp_path), "--no-live"),
            stdout=subprocess.DEVNULL, stderr=sink, cwd=REPO,
        )
    try:
        deadline = time.monotonic() + 300
        while "worker ready" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.5)
        time.sleep(3)  # mid-replay
        started = _children(proc.pid)
        assert len(started) >= 3  # redis-server, the broker's JVM, the worker
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=90) == 130, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "interrupted" in log.read_text()
    time.sleep(1)
    assert not [pid for pid in started if _alive(pid)]
    assert not os.listdir(tmp_path / "state")  # the run's worker state is removed
