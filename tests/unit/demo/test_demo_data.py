"""Demo data and model cache: generated once with labels, a model key that tracks the
data and the options, label times that match the records replay sends."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pytest

import stream_detector.demo.data as demo
from stream_detector.demo.data import (
    DemoOptions,
    event_ends,
    plan_model,
    prepare_data,
    quality_of,
    train_options,
)
from stream_detector.files.history import load_source


def test_doctests() -> None:
    failures, tried = doctest.testmod(demo)
    assert tried > 0 and failures == 0


def test_series_data_is_generated_once_with_labels_in_record_time(tmp_path: Path) -> None:
    opts = DemoOptions(kind="series", out=tmp_path)
    first = prepare_data(opts)
    assert first.labels is not None and len(first.labels["synthetic_series"]) == 6
    stamp = first.path.stat().st_mtime_ns
    again = prepare_data(opts)
    assert again.path.stat().st_mtime_ns == stamp  # reused, not rewritten
    assert again.labels == first.labels and again.sha256 == first.sha256
    records = list(load_source(first.path).records)
    assert {r.key for r in records} == {"synthetic_series"}
    times = {r.epoch_ns for r in records}
    for lo, hi in first.labels["synthetic_series"]:  # every window edge is a record's time
        assert lo in times and hi in times and lo <= hi


def test_event_labels_are_the_signal_events_replay_times(tmp_path: Path) -> None:
    data = prepare_data(DemoOptions(kind="events", out=tmp_path))
    assert data.labels is not None
    windows = data.labels["events"]
    assert 0 < len(windows) < 500  # about 1% of 10,000 events
    records = list(load_source(data.path, kind="events").records)
    signal = {lo for lo, _ in windows}
    # replay stamps row i at epoch + i s: a labelled time is a signal row's record time
    assert signal <= {r.epoch_ns for r in records}


def test_given_data_has_no_labels(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("timestamp,value\n2020-01-01 00:00:00,1\n")
    data = prepare_data(DemoOptions(data=path, out=tmp_path))
    assert data.labels is None and len(data.sha256) == 64
    assert quality_of(data, [("mine", "2020-01-01T00:00:00")]) is None


def test_given_data_that_cannot_be_read_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    """The demo started Kafka and Redis (~10 s) and then failed in the training child."""
    from stream_detector.exceptions import DataError

    path = tmp_path / "mine.csv"
    path.write_text("2020-01-01 00:00:00,1\n2020-01-01 00:05:00,2\n")
    with pytest.raises(DataError, match="looks like data, not column names"):
        prepare_data(DemoOptions(data=path, out=tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_model_is_cached_by_data_and_options(tmp_path: Path) -> None:
    opts = DemoOptions(kind="series", out=tmp_path)
    data = prepare_data(opts)
    plan = plan_model(opts, data)
    assert not plan.cached and plan.command is not None
    assert "--epochs" in plan.command and str(data.path) in plan.command
    card = plan.entry / "1" / "card.json"
    card.parent.mkdir(parents=True)
    card.write_text("{}")
    assert plan_model(opts, data) == type(plan)(plan.entry, True, None)
    fewer = DemoOptions(kind="series", out=tmp_path, epochs=5)
    assert plan_model(fewer, data).entry != plan.entry


def test_a_half_trained_entry_is_cleared(tmp_path: Path) -> None:
    opts = DemoOptions(kind="series", out=tmp_path)
    data = prepare_data(opts)
    entry = plan_model(opts, data).entry
    (entry / ".1.partial").mkdir(parents=True)
    plan = plan_model(opts, data)
    assert not plan.cached and not (entry / ".1.partial").exists()


@pytest.mark.parametrize("kind", ["series", "sales", "events"])
def test_every_kind_has_training_options(kind: str) -> None:
    options = train_options(DemoOptions(kind=kind))  # type: ignore[arg-type]
    # events train on a file of their own (background only): all of it
    assert options["kind"] == kind and 0 < options["train_fraction"] <= 1
    assert (options["train_fraction"] == 1.0) == (kind == "events")


def test_events_model_trains_on_separate_background_not_the_played_file(
    tmp_path: Path
) -> None:
    """As benchmarks/events_quality.py: background only, another seed, never the signal."""
    opts = DemoOptions(kind="events", out=tmp_path)
    data = prepare_data(opts)
    assert data.train_path is not None and data.train_path != data.path
    import h5py

    with h5py.File(data.path) as f, h5py.File(data.train_path) as g:
        played, train = f["features"][:], g["features"][:]
        assert f["labels"][:].sum() > 0 and g["labels"][:].sum() == 0  # background only
    assert train.shape == played.shape  # as many events as the played file
    shared = {r.tobytes() for r in train} & {r.tobytes() for r in played}
    assert not shared  # another sample (seed): no event of the played file
    plan = plan_model(opts, data)
    assert plan.command is not None
    command = plan.command
    assert command[command.index("--data") + 1] == str(data.train_path)
    assert command[command.index("--train-fraction") + 1] == "1.0"
    assert prepare_data(opts).train_path == data.train_path  # kept with the cached data
    assert prepare_data(DemoOptions(kind="series", out=tmp_path)).train_path is None


def test_quality_matches_event_ends_to_labels(tmp_path: Path) -> None:
    data = prepare_data(DemoOptions(kind="series", out=tmp_path))
    assert data.labels is not None
    lo, hi = data.labels["synthetic_series"][0]
    inside = str(np.datetime64(lo, "ns").astype("datetime64[s]"))
    q = quality_of(data, [("synthetic_series", inside), ("synthetic_series", "2000-01-01")])
    assert q is not None and (q.events, q.true_positives, q.detected, q.windows) == (2, 1, 1, 6)
    assert event_ends([("k", "2017-01-02")]) == {"k": [1483315200 * 10**9]}
