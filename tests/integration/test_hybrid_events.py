"""The hybrid detector end to end: train on background events, serve with the real worker.

A hybrid model (events AE + NPLM reference) is trained on generated background events. Two
sources then stream 57-feature events through the real broker: ``det-bkg`` background only
(one record per message), ``det-sig`` background plus an injected dijet resonance (ten
records per message). The worker must report NPLM p-values below 0.01 for ``det-sig`` and
never for ``det-bkg``, and those events must be exactly the ones offline batch scoring of
the same records gives (same event ids, p-values within 1e-6).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from worker_harness import consume, produce, run_worker

from offline_training.synthetic_events import EventsConfig, make_events, write_events
from offline_training.train import train
from offline_training.train_options import TrainOptions
from offline_training.trainer import TrainConfig
from schemas.events import AnomalyEvent
from schemas.records import parse_message
from stream_detector.files.batch import load_runtime, score_records
from stream_detector.services.process import ServiceHandle

EVENTS = 1000
ALPHA = 0.01


def event_dicts(source: str, signal: float, seed: int) -> list[dict[str, Any]]:
    features = make_events(EventsConfig(events=EVENTS, signal_fraction=signal), seed=seed)
    return [{"kind": "events", "source": source, "event_id": f"{source}-{i}",
             "timestamp": f"2026-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}",
             "features": [round(v, 4) for v in row]}
            for i, row in enumerate(features.features.tolist())]


def train_hybrid(tmp: Path) -> tuple[Path, float]:
    data = write_events(tmp / "background.csv",
                        make_events(EventsConfig(events=4000, signal_fraction=0.0), seed=3))
    started = time.perf_counter()
    report = train(TrainOptions(
        data=data, out=tmp / "registry", family="hybrid", name="hyb", version="1",
        plots=False, nplm={"sample_size": 200, "every": 50},
        train=TrainConfig(max_epochs=4, progress=False, device="cpu", num_threads=2),
    ))
    return report.path.parent.parent, time.perf_counter() - started


def offline(registry: Path, records: list[dict[str, Any]]) -> list[AnomalyEvent]:
    runtime = load_runtime(registry, "cpu")
    parsed = [r for rec in records for r in parse_message(json.dumps(rec).encode())]
    return [s.event for s, _ in score_records(runtime, parsed) if s.event is not None]


def low(events: list[Any]) -> dict[str, float]:
    """event_id -> p-value of the events whose p-value is below alpha."""
    out: dict[str, float] = {}
    for e in events:
        e = e if isinstance(e, dict) else e.model_dump()
        if e["p_value"] is not None and e["p_value"] < ALPHA:
            out[e["event_id"]] = e["p_value"]
    return out


@pytest.mark.slow
def test_worker_reports_nplm_p_values_for_the_signal_only(
    kafka_broker: ServiceHandle, redis_server: ServiceHandle, redis_client: Any, tmp_path: Path
) -> None:
    registry, seconds = train_hybrid(tmp_path)
    print(f"hybrid training took {seconds:.1f} s")  # noqa: T201
    bkg, sig = event_dicts("det-bkg", 0.0, seed=11), event_dicts("det-sig", 0.25, seed=12)
    expected_bkg, expected_sig = offline(registry, bkg), offline(registry, sig)
    assert not low(expected_bkg) and len(low(expected_sig)) >= 3  # offline: the acceptance

    messages: list[tuple[bytes | None, bytes]] = []
    for i in range(0, EVENTS, 10):
        messages += [(b"det-bkg", json.dumps(r).encode()) for r in bkg[i : i + 10]]
        messages.append((b"det-sig", json.dumps(sig[i : i + 10]).encode()))
    with run_worker(kafka_broker, redis_server, [registry], tmp_path) as worker:
        produce(kafka_broker, worker.topics["input"], messages)
        total = len(expected_bkg) + len(expected_sig)
        events = consume(kafka_broker, worker.topics["output"], total, 90, settle=2)

    by_key = {k: [e for e in events if e["key"] == k] for k in ("det-bkg", "det-sig")}
    assert not low(by_key["det-bkg"])
    got, want = low(by_key["det-sig"]), low(expected_sig)
    print(f"det-sig p-values {sorted(got.values())[:3]}...; {len(got)} events")  # noqa: T201
    assert got.keys() == want.keys()
    for event_id, p in got.items():
        assert abs(p - want[event_id]) <= 1e-6
    assert {e["event_id"] for e in events} == {e.event_id for e in expected_bkg + expected_sig}
