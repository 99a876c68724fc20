"""Online equals offline on a file with odd rows: Twitter_volume_AAPL.csv rewritten with
repeated and out-of-order rows, a gap, empty values (imputed), timestamps in other layouts
(``Z``, a space, ``+02:00``, `` UTC``, a fraction of a second, which makes every replayed
timestamp carry milliseconds) is replayed through Kafka twice, one record a message (lone
records: the worker reads them with their batch) and seven a message (lists), under two
keys. The worker's events equal `stream-detector score`'s alerts on the same file (same
windows, scores, event ids, quality flags) and it writes no dead letter."""

from __future__ import annotations

import csv
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from worker_harness import consume, run_worker

from offline_training.train import train
from offline_training.train_options import TrainOptions
from offline_training.trainer import TrainConfig
from stream_detector.files.batch import load_runtime, score_records
from stream_detector.files.history import load_source
from stream_detector.services.process import ServiceHandle

pytestmark = pytest.mark.slow

_FLAGS = ("late", "repeated", "skewed", "gap", "imputed")


def _odd_copy(source: Path, out: Path) -> Path:
    """The file with odd rows (see the module docstring), as a CSV."""
    with source.open() as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    for i in range(900, len(body) - 20, 1500):  # gaps: 10 rows (50 minutes) missing
        body[i : i + 10] = [[]] * 10
    for i in range(2000, len(body) - 2, 150):  # out of order: two rows swapped
        if body[i] and body[i + 1]:
            body[i], body[i + 1] = body[i + 1], body[i]
    for i in range(3001, len(body), 130):  # repeated timestamps
        if body[i] and body[i - 1]:
            body[i] = [body[i - 1][0], body[i][1]]
    for i in range(4002, len(body), 170):  # empty values (imputed on --missing impute)
        if body[i]:
            body[i] = [body[i][0], ""]
    layouts = ["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S+00:00", "%Y-%m-%d %H:%M:%S UTC"]
    for i in range(100, len(body), 97):
        if body[i]:
            t = datetime.fromisoformat(body[i][0])
            body[i][0] = t.strftime(layouts[i % len(layouts)])
    for i in (6000, 10000):
        if body[i]:
            t = datetime.fromisoformat(body[i][0].removesuffix("Z").removesuffix(" UTC"))
            body[i][0] = (t + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")
    t = datetime.fromisoformat(body[13000][0])  # half a second: milliseconds everywhere
    body[13000][0] = (t + timedelta(milliseconds=500)).isoformat()
    with out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(r for r in body if r)
    return out


def test_a_replayed_file_with_odd_rows_gives_the_offline_anomalies(
    kafka_broker: ServiceHandle, redis_server: ServiceHandle, redis_client: Any,
    nab_dir: Path, tmp_path: Path,
) -> None:
    clean = nab_dir / "data" / "realTweets" / "Twitter_volume_AAPL.csv"
    data = _odd_copy(clean, tmp_path / "odd.csv")
    report = train(TrainOptions(data=clean, out=tmp_path / "registry", train_fraction=0.15,
                                serves="all", plots=False,
                                train=TrainConfig(max_epochs=4, progress=False)))
    runtime = load_runtime(report.path, "cpu")
    batches = {"odd-lone": 1, "odd-lists": 7}
    offline: dict[tuple[str, str], Any] = {}
    flagged = set()
    for key in batches:
        source = load_source(data, key=key, missing="impute")
        assert source.imputed > 50
        records = list(source.records)
        texts = {r.timestamp_text for r in records}
        assert all(t.endswith(".000") or t.endswith(".500") for t in texts)  # ms layout
        for _, row in score_records(runtime, records):
            flagged |= {f for f in _FLAGS if f in row.flags.split(";")}
            if row.alert:
                offline[(key, row.timestamp)] = row
    assert len(offline) >= 6
    assert {"late", "repeated", "gap", "imputed"} <= flagged  # odd rows reach the windows

    with run_worker(kafka_broker, redis_server, [report.path.parent], tmp_path) as worker:
        for key, batch in batches.items():
            replay = subprocess.run(
                [sys.executable, "-m", "stream_detector", "replay", str(data), "--topic",
                 worker.topics["input"], "--key", key, "--batch", str(batch),
                 "--missing", "impute", "--no-progress"],
                env=worker.env, capture_output=True, text=True, timeout=180, check=False,
            )
            assert replay.returncode == 0, replay.stderr
        events = consume(kafka_broker, worker.topics["output"], len(offline), 180, settle=3)
        dead = consume(kafka_broker, worker.topics["dead"], 1, 3)

    assert dead == []
    online = {(e["key"], e["window_end"]): e for e in events}
    assert online.keys() == offline.keys()
    for at, e in online.items():
        row = offline[at]
        assert abs(e["score"] - row.score) <= 1e-5
        assert abs(e["raw_score"] - row.raw_score) <= 1e-5
        assert e["event_id"] == row.event_id
        quality = {f for f in _FLAGS if e["quality"][f]}
        assert quality == {f for f in _FLAGS if f in row.flags.split(";")} | (
            {"late"} if row.late else set()), at
