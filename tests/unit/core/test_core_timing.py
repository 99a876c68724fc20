"""The event-time policy (stream_detector.core.timing): one outlier cannot drag the watermark,
repeated and out-of-order times are kept and flagged, gaps are flagged, online and offline.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from model_fixtures import window_mean_model, write_registry_model

from schemas.events import DeadLetter, SourceRef
from schemas.records import parse_message
from stream_detector.core.key_state import DictStore, KeyState
from stream_detector.core.model_runtime import ModelRuntime
from stream_detector.core.pipeline import Pipeline
from stream_detector.core.registry import load_model
from stream_detector.core.timing import GAP, LATE, REPEATED, SKEWED, TimePolicy, Watermark, observe
from stream_detector.worker.messages import Message
from stream_detector.worker.metrics import WorkerMetrics
from stream_detector.worker.runtime import WorkerRuntime
from stream_detector.worker.table_store import TableStore
from stream_detector.worker.threshold_cache import ThresholdCache

T0 = datetime(2026, 3, 1, tzinfo=UTC)
FIVE_MIN = {"cadence_s": 300.0}
RAW = {"normalise": False, "warmup": 0, "suppress": 1}


def model(tmp_path: Path, time: dict[str, Any] | None = FIVE_MIN, skew_dl: float = 0.0,
          window: int = 4) -> ModelRuntime:
    d = write_registry_model(tmp_path / "m", window_mean_model(window, 1, last_k=1),
                             window=window, features=["value"], threshold=1e9, detection=RAW,
                             time=time)
    loaded = load_model(d, preference="cpu")
    cache = ThresholdCache(loaded.card, client=None)  # type: ignore[arg-type]
    return ModelRuntime(loaded, cache.lookup, skew_dl)


def rec(at: datetime, value: float = 10.0) -> dict[str, Any]:
    return {"kind": "series", "series": "k", "value": value,
            "timestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ")}


def skewed_feed() -> list[dict[str, Any]]:
    """40 records every 5 minutes, one stamped a day ahead, 40 more continuing normally."""
    step = timedelta(minutes=5)
    first = [rec(T0 + i * step) for i in range(40)]
    outlier = rec(T0 + 40 * step + timedelta(days=1))
    rest = [rec(T0 + (40 + i) * step) for i in range(40)]
    return [*first, outlier, *rest]


def run(pipe: Pipeline, feed: list[dict[str, Any]], offset0: int = 0) -> list[Any]:
    pending = []
    for i, r in enumerate(feed):
        records = parse_message(json.dumps(r).encode())
        runs = pipe.ingest(records, SourceRef(topic="t", partition=0, offset=offset0 + i))
        pending += [r.item(j) for r in runs for j in range(len(r.windows))]  # one per window
    return pending


def test_one_record_from_a_fast_clock_flags_itself_not_the_honest_ones(tmp_path: Path) -> None:
    pipe = Pipeline([model(tmp_path)], DictStore())
    windows = [p.window for p in run(pipe, skewed_feed())]
    assert len(windows) == 78
    assert not any(w.flags & LATE for w in windows)  # was: every window after the outlier
    holding = [w for w in windows if w.flags & SKEWED]
    assert len(holding) == 4  # the 4 windows (window=4) that hold the skewed record
    assert all(w.flags & GAP for w in holding[:1])
    assert windows[-1].flags == 0
    assert pipe.flag_counts == {SKEWED: 1, GAP: 1}


def test_the_watermark_survives_a_restart(tmp_path: Path) -> None:
    rt = model(tmp_path)
    store = DictStore()
    feed = skewed_feed()
    run(Pipeline([rt], store), feed[:42])  # the outlier and one honest record
    restored = DictStore()
    restored.states[("tiny", "k")] = KeyState.from_bytes(store.states[("tiny", "k")].to_bytes())
    later = [p.window for p in run(Pipeline([rt], restored), feed[42:], offset0=42)]
    assert not any(w.flags & LATE for w in later)


def test_without_a_cadence_in_the_card_the_outlier_still_drags_lateness(tmp_path: Path) -> None:
    """Older cards carry no time section: the policy then judges only late and repeated."""
    pipe = Pipeline([model(tmp_path, time=None)], DictStore())
    windows = [p.window for p in run(pipe, skewed_feed())]
    assert sum(bool(w.flags & LATE) for w in windows) == 40


def test_skew_beyond_the_dead_letter_tolerance_is_refused(tmp_path: Path) -> None:
    pipe = Pipeline([model(tmp_path, skew_dl=6 * 3600.0)], DictStore())
    windows = [p.window for p in run(pipe, skewed_feed())]
    assert len(windows) == 77 and not any(w.flags for w in windows)
    (source, index, reason, text), = pipe.refused
    assert (source.offset, index, reason) == (40, 0, "clock_skew")
    assert "86700 s ahead" in text and "21600 s" in text


def test_a_real_jump_is_accepted_after_confirm_records() -> None:
    p = TimePolicy.from_cadence(300.0, confirm=3)
    w = Watermark()
    day = 86_400 * 10**9
    step = 300 * 10**9
    times = [0, step, 2 * step] + [4 * day + i * step for i in range(4)]
    flags = [observe(w, t, p) for t in times]
    # the first two after the jump are judged skewed; the third confirms a real gap
    assert flags == [0, 0, 0, SKEWED | GAP, SKEWED, 0, 0]
    assert w.newest_ns == times[-1]


def test_repeated_timestamps_are_kept_and_flagged(tmp_path: Path) -> None:
    """A clock step at a daylight-saving change: 12 rows stamped 2014-03-09 03:00:00."""
    pipe = Pipeline([model(tmp_path, time={"cadence_s": 300.0})], DictStore())
    at = datetime(2014, 3, 9, 2, 0, tzinfo=UTC)
    feed = [rec(at + timedelta(minutes=5 * i)) for i in range(12)]
    feed += [rec(datetime(2014, 3, 9, 3, 0, tzinfo=UTC))] * 12
    feed += [rec(datetime(2014, 3, 9, 3, 5, tzinfo=UTC) + timedelta(minutes=5 * i))
             for i in range(12)]
    windows = [p.window for p in run(pipe, feed)]
    assert len(windows) == len(feed) - 3
    assert pipe.flag_counts == {REPEATED: 11}
    assert windows[-1].flags == 0 and sum(bool(w.flags & REPEATED) for w in windows) == 14


def _delivered() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


class _Table:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def send_changelog(self, partition: int | None, key: bytes, value: bytes) -> None:
        pass


@pytest.mark.parametrize("dead_letter_skew", [0.0, 3600.0])
def test_worker_counts_flags_and_dead_letters_skew_when_told(
    tmp_path: Path, dead_letter_skew: float
) -> None:
    dead: list[bytes] = []
    dead_keys: list[bytes] = []

    async def send_event(key: bytes, value: bytes) -> asyncio.Future[None]:
        return _delivered()

    async def send_dead(key: bytes, value: bytes) -> asyncio.Future[None]:
        dead.append(value)
        dead_keys.append(key)
        return _delivered()

    rt = WorkerRuntime([model(tmp_path, skew_dl=dead_letter_skew)], TableStore(_Table()),
                       WorkerMetrics(), send_event, send_dead)
    msgs = [Message(json.dumps(r).encode(), "in", 0, i, key=b"k",
                    headers=[("trace", f"t{i}".encode())])
            for i, r in enumerate(skewed_feed())]
    asyncio.run(rt.process(msgs))
    metrics = rt.metrics.render().decode()
    if dead_letter_skew:
        (letter,) = [DeadLetter.model_validate_json(d) for d in dead]
        assert (letter.reason, letter.offset) == ("clock_skew", 40)
        # the refused record's own message: its Kafka key and headers, keyed as it was
        assert letter.key_bytes() == b"k" and letter.header_bytes() == [("trace", b"t40")]
        assert dead_keys == [b"k"]
    else:
        assert dead == []
    assert 'stream_detector_record_flags_total{flag="skewed"} 1.0' in metrics
    assert 'flag="late"' not in metrics


def test_times_are_checked_in_arrays_as_one_record_at_a_time() -> None:
    from stream_detector.core.timing import observe_many

    rng = np.random.default_rng(3)
    base = np.cumsum(rng.integers(1, 400, 500)) * 10**9
    base[100] += 86_400 * 10**9  # a fast clock
    base[200:205] = base[199]  # repeats
    base[300] -= 5_000 * 10**9  # late
    p = TimePolicy.from_cadence(200.0)
    one, many = Watermark(), Watermark()
    expected = [observe(one, int(t), p) for t in base]
    assert observe_many(many, base, p).tolist() == expected and one == many


def test_windows_across_a_four_day_hole_carry_the_gap_flag(tmp_path: Path) -> None:
    pipe = Pipeline([model(tmp_path)], DictStore())
    step = timedelta(minutes=5)
    hole = timedelta(days=4)
    feed = [rec(T0 + i * step) for i in range(30)]
    feed += [rec(T0 + hole + i * step) for i in range(30, 60)]
    windows = [p.window for p in run(pipe, feed)]
    gapped = [i for i, w in enumerate(windows) if w.flags & GAP]
    # window i ends at record i + 3: windows ending at records 30..32 hold records 29 and 30
    assert gapped == [27, 28, 29]
    assert not any(w.flags & LATE for w in windows)
    # the first two records after the hole wait for the third to confirm the jump
    assert [i for i, w in enumerate(windows) if w.flags & SKEWED] == list(range(27, 32))


def test_daily_sales_with_a_three_week_reporting_gap(tmp_path: Path) -> None:
    d = write_registry_model(tmp_path / "s", window_mean_model(7, 1, last_k=1), window=7,
                             features=["sales"], record_kind="sales", threshold=1e9,
                             detection=RAW, time={"cadence_s": 86_400.0})
    loaded = load_model(d, preference="cpu")
    rt = ModelRuntime(loaded, ThresholdCache(loaded.card, client=None).lookup)  # type: ignore[arg-type]
    pipe = Pipeline([rt], DictStore())
    days = [*range(60), *range(81, 120)]
    feed = [{"kind": "sales", "date": (T0 + timedelta(days=d)).date().isoformat(), "store": 1,
             "item": 7, "sales": 20.0} for d in days]
    windows = [p.window for p in run(pipe, feed)]
    gapped = [w.end_text for w in windows if w.flags & GAP]
    assert gapped[0] == (T0 + timedelta(days=81)).date().isoformat() and len(gapped) == 6
    # 21 days is beyond the allowed skew (12 days): the first two records after the gap
    # cannot be told from a fast clock until the third confirms the jump
    skewed = [w.end_text for w in windows if w.flags & SKEWED]
    assert skewed[0] == gapped[0] and len(skewed) == 7 + 1 and not any(
        w.flags & LATE for w in windows)


def test_a_window_across_a_gap_is_judged_but_not_learnt(tmp_path: Path) -> None:
    from stream_detector.core.detection import DetectionParams, DetectorState, decide

    p = DetectionParams(halflife=4, warmup=0, suppress=1)
    a, b = DetectorState(), DetectorState()
    for s in (1.0, 1.1, 0.9, 1.0):
        decide(a, s, 4.0, p)
        decide(b, s, 4.0, p)
    judged = decide(a, 50.0, 4.0, p, learn=False)
    learnt = decide(b, 50.0, 4.0, p)
    assert judged.detection_score == learnt.detection_score and judged.alert
    assert a.mean != b.mean and a.seen == b.seen == 5


def test_imputed_records_flag_their_windows(tmp_path: Path) -> None:
    pipe = Pipeline([model(tmp_path)], DictStore())
    step = timedelta(minutes=5)
    feed = [rec(T0 + i * step) for i in range(10)]
    feed[5] = {**feed[5], "imputed": True}
    windows = [p.window for p in run(pipe, feed)]
    from stream_detector.core.events import quality_flags
    from stream_detector.core.timing import IMPUTED

    assert [bool(w.flags & IMPUTED) for w in windows] == [False, False, True, True, True,
                                                          True, False]
    assert quality_flags(False, False, False, windows[3].flags).imputed


@settings(max_examples=300, deadline=None)
@given(plain=st.lists(st.integers(1, 250), min_size=40, max_size=80),
       odd=st.lists(st.tuples(st.integers(0, 79), st.integers(-400, 5_000)), max_size=2),
       start=st.sampled_from([None, 0, 10_000]), ahead=st.sampled_from([0, 1, 2]),
       cadence=st.sampled_from([None, 100.0, 300.0]))
def test_plain_steps_is_observe_when_it_says_so_and_changes_nothing_otherwise(
    plain: list[int], odd: list[tuple[int, int]], start: int | None, ahead: int,
    cadence: float | None,
) -> None:
    from stream_detector.core.timing import NO_TIME, plain_steps

    steps = list(plain)
    for at, step in odd:  # a repeat, a late record or a long step somewhere (or none)
        steps[at % len(steps)] = step
    p = TimePolicy.from_cadence(cadence)
    newest = NO_TIME if start is None else start
    one = Watermark(newest, ahead, newest + 20_000 if ahead else NO_TIME)
    fast = Watermark(one.newest_ns, one.ahead, one.ahead_ns)
    times = [int(t) for t in np.cumsum(steps) + (start or 0)]
    before = Watermark(fast.newest_ns, fast.ahead, fast.ahead_ns)
    flags = [observe(one, t, p) for t in times]
    from_array = Watermark(fast.newest_ns, fast.ahead, fast.ahead_ns)
    took = plain_steps(fast, times, p)
    if took:
        assert flags == [0] * len(times) and fast == one
    else:
        assert fast == before
    # the same times as the int64 array a message's bulk parse gives: same answer and
    # watermark, which stays a Python int (it is serialised with the key's state)
    assert plain_steps(from_array, np.array(times, dtype=np.int64), p) == took
    assert from_array == fast and type(from_array.newest_ns) is int
    if not odd and start is not None and not ahead and len(times) >= 48:
        assert took  # every step plain: the fast path takes the run


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(st.integers(-50, 400), min_size=1, max_size=20),
       start=st.sampled_from([0, 10_000]), short_step=st.booleans())
def test_plain_steps_on_short_runs_matches_observe_for_lists_and_arrays(
    steps: list[int], start: int, short_step: bool
) -> None:
    """Runs of 1-20 records (a key's messages grouped: ``min_run=1``; lists of up to
    FEW_STEPS are checked in Python, longer ones and arrays by numpy), the first step
    alone out of range included: list and array answers agree with record-by-record
    observe, with steps over the plain step (``short_step``) and without."""
    from stream_detector.core.timing import FEW_STEPS, plain_steps

    assert 3 < FEW_STEPS < 20  # both paths drawn
    p = TimePolicy(300) if short_step else TimePolicy.from_cadence(300.0)
    times = [int(t) for t in np.cumsum(steps) + start]
    one = Watermark(start)
    flags = [observe(one, t, p) for t in times]
    for given_times in (times, np.array(times, dtype=np.int64)):
        w = Watermark(start)
        took = plain_steps(w, given_times, p, min_run=1)
        assert took == (all(0 < s <= p.plain_step_ns for s in steps))
        if took:
            assert flags == [0] * len(times) and w == one
        else:
            assert w == Watermark(start)
