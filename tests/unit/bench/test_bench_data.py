"""The benchmarks' synthetic messages are valid records and their model is a valid entry."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.bench_models import window_mean_model, write_registry_model
from benchmarks.e2e_support import series_messages
from schemas.records import parse_message
from stream_detector.core.registry import load_model


def test_single_record_messages_parse_and_interleave_keys_in_time_order() -> None:
    msgs = list(series_messages(records=30, keys=3))
    assert len(msgs) == 30
    records = [parse_message(value) for _, value in msgs]
    assert all(len(r) == 1 for r in records)
    assert [key for key, _ in msgs[:4]] == [b"k0", b"k1", b"k2", b"k0"]
    k0 = [r[0] for (key, _), r in zip(msgs, records, strict=True) if key == b"k0"]
    stamps = [r.epoch_ns for r in k0]
    assert stamps == sorted(stamps) and len(set(stamps)) == 10


def test_batched_messages_carry_consecutive_records_of_one_key() -> None:
    msgs = list(series_messages(records=250, keys=2, per_message=100))
    sizes = [len(parse_message(value)) for _, value in msgs]
    assert sizes == [100, 100, 25, 25]  # 125 records per key
    for key, value in msgs:
        assert {r.key for r in parse_message(value)} == {key.decode()}


def test_window_mean_entry_loads_and_scores_a_jump_highest(tmp_path: Path) -> None:
    entry = write_registry_model(tmp_path / "m", window_mean_model(8, 1), name="m", window=8)
    loaded = load_model(entry, preference="cpu")
    flat = np.zeros((1, 8, 1), np.float32)
    jump = flat.copy()
    jump[0, -1, 0] = 5.0
    scores = loaded.scorer.score(np.concatenate([flat, jump])).scores
    assert scores[0] == 0.0 and scores[1] > 1.0


def test_first_step_continues_a_series_where_it_stopped() -> None:
    before = [parse_message(v)[0] for _, v in series_messages(records=4, keys=1)]
    after = [parse_message(v)[0] for _, v in series_messages(records=4, keys=1, first_step=4)]
    stamps = [r.epoch_ns for r in before + after]
    assert stamps == sorted(stamps) and len(set(stamps)) == 8
