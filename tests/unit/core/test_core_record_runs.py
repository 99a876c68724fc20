"""parse_run gives the runs and the dead-letter errors of the reference parse, always."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.records import RecordError, parse_message
from stream_detector.core.record_runs import RecordRun, check_widths, parse_run, runs_of

WIDTHS = {"series": 1, "sales": 1, "events": 3}


def _reference(raw: bytes) -> list[RecordRun] | tuple[str, str]:
    try:
        records = parse_message(raw)
        check_widths(records, WIDTHS)
    except RecordError as exc:
        return (exc.reason, exc.message)
    return runs_of(records)


def _fast(raw: bytes) -> list[RecordRun] | tuple[str, str]:
    try:
        return parse_run(raw, WIDTHS)
    except RecordError as exc:
        return (exc.reason, exc.message)


def _assert_same(raw: bytes) -> None:
    want, got = _reference(raw), _fast(raw)
    if isinstance(want, tuple) or isinstance(got, tuple):
        assert got == want, raw
        return
    assert len(got) == len(want), raw
    for g, w in zip(got, want, strict=True):
        assert (g.kind, g.key, g.epoch_ns, g.texts, g.imputed) == (
            w.kind, w.key, w.epoch_ns, w.texts, w.imputed), raw
        assert g.values.dtype == np.float32 and g.values.tobytes() == w.values.tobytes(), raw
        if g.ns_array is not None:  # the times read at once, also as an array: the same
            assert g.ns_array.dtype == np.int64 and g.ns_array.tolist() == g.epoch_ns, raw


_TIMES = st.sampled_from([
    "2015-02-26T21:42:53", "2015-02-26T21:42:53Z", "2015-02-26T21:42:53.123456+02:00",
    "2017-01-01", "2015-02-30", "2015", "20150226T214253", "2015-02-26 21:42", "x" * 70,
    "1-01-01", "9999-12-31T23:59:59", "2015-02-26T24:00:00", "", "2015-13-01",
])
_NUMBERS = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=64),
                     st.integers(-(2**70), 2**70), st.sampled_from([True, None, "1", 1e400]))


@st.composite
def _record(draw: Any, key: str, kind: str) -> dict[str, Any]:
    if kind == "series":
        rec: dict[str, Any] = {"kind": "series", "series": key, "timestamp": draw(_TIMES),
                               "value": draw(_NUMBERS)}
    elif kind == "sales":
        rec = {"kind": "sales", "date": draw(_TIMES), "store": draw(st.integers(-1, 2**31 + 1)),
               "item": draw(st.sampled_from([7, 7.0, True, 2**31 + 1])), "sales": draw(_NUMBERS)}
    else:
        width = draw(st.sampled_from([3, 3, 3, 2, 0]))
        rec = {"kind": "events", "source": key, "timestamp": draw(_TIMES),
               "features": [draw(_NUMBERS) for _ in range(width)]}
        if draw(st.booleans()):
            rec["event_id"] = draw(st.sampled_from(["e1", 5, "x" * 300]))
    change = draw(st.sampled_from(["none"] * 6 + ["drop", "extra", "version", "badversion",
                                                  "imputed", "badimputed", "swap"]))
    if change in ("drop", "swap"):
        rec.pop(draw(st.sampled_from(sorted(rec))))
    if change == "swap":  # as many fields, one of them another
        rec[draw(st.sampled_from(["imputed", "schema_version", "unexpected"]))] = draw(
            st.sampled_from([True, 1, "x"]))
    elif change == "extra":
        rec["unexpected"] = 1
    elif change in ("imputed", "badimputed"):
        rec["imputed"] = draw(st.booleans()) if change == "imputed" else draw(
            st.sampled_from([1, "true", None]))
    elif change in ("version", "badversion"):
        rec["schema_version"] = 1 if change == "version" else draw(st.sampled_from([2, 1.0, "1"]))
    return rec


@st.composite
def _message(draw: Any) -> bytes:
    kind = draw(st.sampled_from(["series", "sales", "events", "other"]))
    key = draw(st.sampled_from(["k1", "", "x" * 257, "k2"]))
    n = draw(st.integers(0, 12))
    recs = [draw(_record(draw(st.sampled_from([key, key, key, "k9"])),
                         "series" if kind == "other" else kind)) for _ in range(n)]
    if kind == "other" and recs:
        recs[0]["kind"] = draw(st.sampled_from(["bogus", 3]))
    if n == 1 and draw(st.booleans()):
        return json.dumps(recs[0]).encode()
    return json.dumps(recs).encode()


@settings(max_examples=600, deadline=None)
@given(raw=_message())
def test_fast_parse_equals_reference_on_random_messages(raw: bytes) -> None:
    _assert_same(raw)


@pytest.mark.parametrize("raw", [
    b"", b"[", b"null", b"3", b"[1]", b"[[]]", b"{}", b'"x"', b"\xff\xfe", b"[]",
    b'{"kind":"series","series":"a","timestamp":"2015-01-01","value":NaN}',
    b'{"kind":"series","series":"a","timestamp":"2015-01-01","value":1,"value":2}',
    b'{"kind":"series","series":"a","timestamp":"2015-01-01","value":1e400}',
    b" " * 1_048_577,
])
def test_fast_parse_equals_reference_on_odd_bytes(raw: bytes) -> None:
    _assert_same(raw)


def test_a_long_run_of_one_key_is_one_run_with_arrays() -> None:
    raw = json.dumps([{"kind": "series", "series": "AAPL", "timestamp": f"2015-02-26T21:42:{s:02d}",
                       "value": float(s)} for s in range(50)]).encode()
    (run,) = parse_run(raw, WIDTHS)
    assert run.key == "AAPL" and run.values.shape == (50, 1) and len(run) == 50
    assert run.epoch_ns[1] - run.epoch_ns[0] == 1_000_000_000
    assert run.tail(48).texts == ["2015-02-26T21:42:48", "2015-02-26T21:42:49"]
    assert run.ns_array is not None and run.ns_array.tolist() == run.epoch_ns
    assert run.tail(48).ns_array.tolist() == run.epoch_ns[48:]  # type: ignore[union-attr]
    assert run.take([0, 49]).ns_array.tolist() == [run.epoch_ns[0], run.epoch_ns[49]]  # type: ignore[union-attr]


@pytest.mark.parametrize("field", ["value", "series", "timestamp", "kind"])
@pytest.mark.parametrize("swap", ["imputed", "schema_version", "unexpected"])
def test_a_record_with_another_field_in_place_of_one_gets_the_reference_error(
    field: str, swap: str
) -> None:
    recs: list[dict[str, Any]] = [
        {"kind": "series", "series": "k", "timestamp": f"2015-02-26T21:42:{s:02d}",
         "value": float(s)} for s in range(20)]
    del recs[7][field]
    recs[7][swap] = True
    raw = json.dumps(recs).encode()
    assert isinstance(_fast(raw), tuple)  # refused, as the reference refuses it
    _assert_same(raw)


@pytest.mark.parametrize("stamp", [
    "2015-02-26T21:{m:02d}:{s:02d}", "2015-02-26 21:{m:02d}:{s:02d}Z",
    "2015-02-26T21:{m:02d}:{s:02d}.250", "2015-02-{s:02d}"])
def test_long_messages_read_at_once_equal_the_reference(stamp: str) -> None:
    # 60 records: timestamps and values go through the message-at-once paths
    recs = [{"kind": "series", "series": "k", "timestamp": stamp.format(m=i // 60, s=i % 28 + 1),
             "value": i * 0.1} for i in range(60)]
    _assert_same(json.dumps(recs).encode())
    recs[41]["timestamp"] = "2015-02-30"  # one bad: the reference's dead letter
    _assert_same(json.dumps(recs).encode())


_ROW = '{{"kind": "series", "series": "k", "timestamp": "2015-02-26T21:42:{s:02d}", {rest}}}'


@pytest.mark.parametrize("rest", [
    '"value": 3', '"value": 1e400', '"value": 1180591620717411303424', '"value": true',
    '"value": 1, "value": 2', '"value": 1, "schema_version": 1.0',
    '"value": 1, "schema_version": 1', '"value": 1, "imputed": 1', '"value": 1, "imputed": true',
    '"value": "1"', '"value": -0.0, "kind": "sales"', '"value": 1e39',
    '"value": 1, "imp\\u0075ted": true', '"value": 1, "imp\\u0075ted": false'])
@pytest.mark.parametrize("n", [1, 3, 25])
def test_series_lists_msgspec_accepts_or_leaves_to_the_reference_read_alike(
    rest: str, n: int
) -> None:
    rows = [_ROW.format(s=s, rest='"value": 1.5') for s in range(n)]
    rows[n // 2] = _ROW.format(s=n // 2, rest=rest)
    _assert_same(("[" + ", ".join(rows) + "]").encode())


def test_series_lists_are_read_without_orjsons_dicts(monkeypatch: pytest.MonkeyPatch) -> None:
    import stream_detector.core.record_runs as record_runs

    def no_orjson(raw: bytes) -> Any:
        raise AssertionError("orjson read a plain series list")
    monkeypatch.setattr(record_runs.orjson, "loads", no_orjson)
    raw = ("[" + ", ".join(_ROW.format(s=s, rest='"value": 2, "imputed": true')
                           for s in range(30)) + "]").encode()
    (run,) = parse_run(raw, WIDTHS)
    assert run.key == "k" and run.values.shape == (30, 1) and run.imputed == [True] * 30
