"""Online equals offline: Twitter_volume_AAPL.csv replayed through Kafka and the worker yields
exactly the anomalies `stream-detector score` computes on the same file (same windows,
scores within 1e-5)."""

from __future__ import annotations

import subprocess
import sys
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


def test_replayed_aapl_gives_the_offline_anomalies(
    kafka_broker: ServiceHandle, redis_server: ServiceHandle, redis_client: Any,
    nab_dir: Path, tmp_path: Path,
) -> None:
    data = nab_dir / "data" / "realTweets" / "Twitter_volume_AAPL.csv"
    report = train(TrainOptions(data=data, out=tmp_path / "registry", train_fraction=0.15,
                                train=TrainConfig(max_epochs=4, progress=False), plots=False))
    runtime = load_runtime(report.path, "cpu")
    records = list(load_source(data).records)
    offline = {row.timestamp: row for _, row in score_records(runtime, records) if row.alert}
    assert len(offline) >= 3  # the file has real anomalies the model flags

    with run_worker(kafka_broker, redis_server, [report.path.parent], tmp_path) as worker:
        replay = subprocess.run(
            [sys.executable, "-m", "stream_detector", "replay", str(data), "--topic",
             worker.topics["input"], "--batch", "20", "--no-progress"],
            env=worker.env, capture_output=True, text=True, timeout=120, check=False,
        )
        assert replay.returncode == 0, replay.stderr
        assert f"sent {len(records):,} series records" in replay.stdout
        events = consume(kafka_broker, worker.topics["output"], len(offline), 120, settle=3)

    online = {e["window_end"]: e for e in events}
    assert online.keys() == offline.keys()
    for end, e in online.items():
        assert abs(e["score"] - offline[end].score) <= 1e-5
        assert abs(e["raw_score"] - offline[end].raw_score) <= 1e-5
        assert e["event_id"] == offline[end].event_id
        assert e["key"] == "Twitter_volume_AAPL"
