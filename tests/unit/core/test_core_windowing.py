"""Sliding windows: timelines, stride, late records, bounds, serialisation, properties."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_detector.core import windowing, windows
from stream_detector.core.windowing import WindowState
from stream_detector.core.windows import Window


def feed(state: WindowState, values: list[float], start: int = 0) -> list[Window | None]:
    return [state.push([v], start + i, f"t{start + i}") for i, v in enumerate(values)]


def test_module_doctests_pass() -> None:
    for module in (windowing, windows):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0


def test_timeline_window3_stride2() -> None:
    # record   r0 r1 r2 r3 r4 r5 r6 r7
    # emits          W0    W1    W2
    state = WindowState(window=3, features=1, stride=2)
    out = feed(state, [float(i) for i in range(8)])
    emitted = [(i, w.values.ravel().tolist()) for i, w in enumerate(out) if w is not None]
    assert emitted == [(2, [0.0, 1.0, 2.0]), (4, [2.0, 3.0, 4.0]), (6, [4.0, 5.0, 6.0])]
    w2 = out[6]
    assert w2 is not None
    assert (w2.start_text, w2.end_text, w2.start_ns, w2.end_ns, w2.seq) == ("t4", "t6", 4, 6, 7)


def test_stride_larger_than_window_skips_records() -> None:
    state = WindowState(window=2, features=1, stride=3)
    out = feed(state, [float(i) for i in range(9)])
    emitted = [w.values.ravel().tolist() for w in out if w is not None]
    assert emitted == [[0.0, 1.0], [3.0, 4.0], [6.0, 7.0]]


def test_window_of_one_event_with_many_features() -> None:
    state = WindowState(window=1, features=57)
    win = state.push(np.arange(57.0), 10, "t")
    assert win is not None and win.values.shape == (1, 57) and win.values.dtype == np.float32
    assert win.values[0, 56] == 56.0


def test_emitted_window_is_a_copy() -> None:
    state = WindowState(window=2, features=1)
    feed(state, [1.0])
    first = state.push([2.0], 1)
    feed(state, [3.0, 4.0], start=2)
    assert first is not None and first.values.ravel().tolist() == [1.0, 2.0]


def test_late_record_is_kept_in_order_and_flags_its_windows() -> None:
    # times:  0  1  2  1(late)  4  5  6
    # window 3, stride 1: windows ending at index 3, 4, 5 contain the late record
    state = WindowState(window=3, features=1)
    times = [0, 1, 2, 1, 4, 5, 6]
    out = [state.push([float(i)], t) for i, t in enumerate(times)]
    flags = [None if w is None else w.late for w in out]
    assert flags == [None, None, False, True, True, True, False]
    w3 = out[3]
    assert w3 is not None and w3.values.ravel().tolist() == [1.0, 2.0, 3.0]  # not reordered
    assert state.late_count == 1 and state.newest_ns == 6


def test_equal_timestamps_are_not_late() -> None:
    state = WindowState(window=2, features=1)
    out = [state.push([1.0], 5), state.push([2.0], 5)]
    assert out[1] is not None and not out[1].late


def test_wrong_width_is_rejected_not_broadcast() -> None:
    state = WindowState(window=2, features=3)
    with pytest.raises(ValueError, match="expected 3 values"):
        state.push([1.0], 0)
    state1 = WindowState(window=2, features=1)
    with pytest.raises(ValueError, match="expected 1 values"):
        state1.push([1.0, 2.0], 0)


@pytest.mark.parametrize(
    ("window", "features", "stride"),
    [(0, 1, 1), (4097, 1, 1), (2, 0, 1), (2, 4097, 1), (2, 1, 0), (2, 1, 4097)],
)
def test_bounds(window: int, features: int, stride: int) -> None:
    with pytest.raises(ValueError, match="must be in"):
        WindowState(window, features, stride)


def test_extend_matches_push() -> None:
    a, b = WindowState(4, 2, 2), WindowState(4, 2, 2)
    rows = np.arange(20.0).reshape(10, 2)
    got = a.extend(rows, list(range(10)), [f"t{i}" for i in range(10)])
    want = [w for i, r in enumerate(rows) if (w := b.push(r, i, f"t{i}")) is not None]
    assert len(got) == len(want) == 4
    for x, y in zip(got, want, strict=True):
        assert np.array_equal(x.values, y.values) and x.start_text == y.start_text
    with pytest.raises(ValueError, match="one timestamp"):
        a.extend(rows, [0])


def test_serialisation_is_compact_binary() -> None:
    state = WindowState(window=50, features=1, stride=1)
    feed(state, [float(i) for i in range(120)])
    blob = state.to_bytes()
    assert isinstance(blob, bytes) and blob[:4] == b"SDW2"
    # 50 float32 + 50 int64 + short texts + header: far below a JSON list of lists
    assert len(blob) < 50 * 4 + 50 * 8 + 50 * 5 + 128


@pytest.mark.parametrize("cut", [0, 1, 2, 3, 4, 7, 11])
def test_round_trip_at_any_point_continues_identically(cut: int) -> None:
    values = [float(i) * 1.5 for i in range(15)]
    a = WindowState(window=4, features=1, stride=3)
    feed(a, values[:cut])
    b = WindowState.from_bytes(a.to_bytes())
    assert b.to_bytes() == a.to_bytes()
    rest_a, rest_b = feed(a, values[cut:], cut), feed(b, values[cut:], cut)
    for x, y in zip(rest_a, rest_b, strict=True):
        assert (x is None) == (y is None)
        if x is not None and y is not None:
            assert np.array_equal(x.values, y.values)
            assert (x.start_text, x.start_ns, x.late, x.seq) == (
                y.start_text,
                y.start_ns,
                y.late,
                y.seq,
            )


def test_states_written_before_the_timing_flags_still_load() -> None:
    import struct

    a = WindowState(window=3, features=1)
    for i, t in enumerate([0, 5, 3]):
        a.push([float(i)], t, f"t{i}")
    body = a.to_bytes()[struct.calcsize("<4sIIIqqqq5q5qI"):]
    sdw1 = struct.pack("<4sIIIqqqqI", b"SDW1", 3, 1, 1, 3, 5, 2, 1, len(b"t0\nt1\nt2")) + body
    b = WindowState.from_bytes(sdw1)
    assert (b.late_count, b.newest_ns, b.count) == (1, 5, 3)
    w = b.push([9.0], 6)
    assert w is not None and w.late and w.flags == 1


def test_round_trip_keeps_late_state() -> None:
    a = WindowState(window=3, features=1)
    for i, t in enumerate([0, 5, 3]):
        a.push([float(i)], t)
    b = WindowState.from_bytes(a.to_bytes())
    assert (b.late_count, b.newest_ns) == (1, 5)
    w = b.push([9.0], 6)
    assert w is not None and w.late


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b[:10],
        lambda b: b"XXXX" + b[4:],
        lambda b: b + b"\x00",
        lambda b: b[:-1],
        lambda b: b[:4] + (0).to_bytes(4, "little") + b[8:],  # window 0
        lambda b: b[:4] + (5000).to_bytes(4, "little") + b[8:],  # window over the bound
    ],
)
def test_malformed_state_is_rejected(mutate: object) -> None:
    state = WindowState(window=3, features=2)
    state.extend(np.ones((5, 2)), list(range(5)))
    with pytest.raises(ValueError):
        WindowState.from_bytes(mutate(state.to_bytes()))  # type: ignore[operator]


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(st.floats(-1e6, 1e6, width=32), min_size=0, max_size=60),
    window=st.integers(1, 8),
    stride=st.integers(1, 10),
)
def test_windows_equal_naive_slicing(values: list[float], window: int, stride: int) -> None:
    state = WindowState(window=window, features=1, stride=stride)
    got = [w.values.ravel().tolist() for w in feed(state, values) if w is not None]
    arr = np.asarray(values, dtype=np.float32)
    want = [arr[i : i + window].tolist() for i in range(0, len(values) - window + 1, stride)]
    assert got == want


@settings(max_examples=100, deadline=None)
@given(
    data=st.data(),
    window=st.integers(1, 6),
    features=st.integers(1, 3),
    stride=st.integers(1, 4),
)
def test_round_trip_property(data: st.DataObject, window: int, features: int, stride: int) -> None:
    n = data.draw(st.integers(0, 30))
    cut = data.draw(st.integers(0, n))
    rows = np.asarray(
        data.draw(
            st.lists(st.floats(-1e3, 1e3, width=32), min_size=n * features, max_size=n * features)
        ),
        dtype=np.float32,
    ).reshape(n, features)
    times = data.draw(st.lists(st.integers(0, 100), min_size=n, max_size=n))
    texts = [f"t{t}" for t in times]
    whole = WindowState(window, features, stride)
    expected = whole.extend(rows, times, texts)
    part = WindowState(window, features, stride)
    first = part.extend(rows[:cut], times[:cut], texts[:cut])
    resumed = WindowState.from_bytes(part.to_bytes())
    got = first + resumed.extend(rows[cut:], times[cut:], texts[cut:])
    assert len(got) == len(expected)
    for x, y in zip(got, expected, strict=True):
        assert np.array_equal(x.values, y.values)
        assert (x.start_ns, x.end_ns, x.start_text, x.end_text, x.late, x.seq) == (
            y.start_ns,
            y.end_ns,
            y.start_text,
            y.end_text,
            y.late,
            y.seq,
        )


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(0, 40),
    window=st.integers(1, 7),
    stride=st.integers(1, 9),
    features=st.integers(1, 3),
)
def test_offline_sliding_windows_equal_online(
    n: int, window: int, stride: int, features: int
) -> None:
    rows = np.random.default_rng(n).normal(size=(n, features)).astype(np.float32)
    offline = windows.sliding_windows(rows, window, stride)
    online = WindowState(window, features, stride).extend(rows, list(range(n)))
    assert offline.shape == (len(online), window, features)
    for a, b in zip(offline, online, strict=True):
        assert np.array_equal(a, b.values)


def test_sliding_windows_checks_input() -> None:
    with pytest.raises(ValueError, match="must be"):
        windows.sliding_windows(np.zeros(5), 2)
    with pytest.raises(ValueError, match="window must be"):
        windows.sliding_windows(np.zeros((5, 1)), 0)
