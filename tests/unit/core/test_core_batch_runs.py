"""series_runs: a batch's series lists read together give exactly parse_run's runs, and
leave every other message (and its dead letter) to parse_run."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_core_record_runs import WIDTHS, _assert_same, _message

from schemas.records import RecordError
from stream_detector.core.batch_runs import series_runs
from stream_detector.core.record_runs import RecordRun, parse_run
from stream_detector.core.series_wire import decode_series

_LAYOUTS = ["2015-02-26T21:{m:02d}:{s:02d}", "2015-02-26 21:{m:02d}:{s:02d}Z",
            "2015-02-{d:02d}", "2015-02-26T21:{m:02d}:{s:02d}.250000"]


def _series(key: str, n: int, layout: str, first: int = 0, **extra: Any) -> bytes:
    recs = [{"kind": "series", "series": key,
             "timestamp": layout.format(m=(first + i) // 60 % 60, s=(first + i) % 60,
                                        d=(first + i) % 28 + 1),
             "value": (first + i) * 0.5 - 3, **extra} for i in range(n)]
    return json.dumps(recs).encode()


def _assert_runs_equal(got: RecordRun, want: RecordRun) -> None:
    assert (got.kind, got.key, got.epoch_ns, got.texts, got.imputed) == (
        want.kind, want.key, want.epoch_ns, want.texts, want.imputed)
    assert got.values.dtype == np.float32 and got.values.shape == want.values.shape
    assert got.values.tobytes() == want.values.tobytes()  # -0.0 and 0.0 differ here
    if got.ns_array is not None:  # read at once (always, unless read alone and short)
        assert got.ns_array.dtype == np.int64 and got.ns_array.tolist() == got.epoch_ns


def _check(raws: list[bytes | None], widths: dict[str, int] = WIDTHS) -> list[RecordRun | None]:
    got = series_runs(raws, widths)
    assert len(got) == len(raws)
    for raw, run in zip(raws, got, strict=True):
        if run is None:
            continue  # left to parse_run: nothing to compare
        assert raw is not None
        want = parse_run(raw, widths)  # accepted here: the reference gives that one run
        assert len(want) == 1
        _assert_runs_equal(run, want[0])
    return got


@settings(max_examples=300, deadline=None)
@given(batch=st.lists(st.one_of(
    _message(),
    st.builds(_series, st.sampled_from(["a", "b", "c"]), st.integers(1, 60),
              st.sampled_from(_LAYOUTS), st.integers(0, 500)),
    st.just(None)), max_size=8))
def test_a_batch_read_together_gives_parse_runs_runs(batch: list[bytes | None]) -> None:
    _check(batch)


def test_plain_series_lists_are_all_accepted_and_each_a_view_of_the_batch() -> None:
    raws: list[bytes | None] = [_series(k, 100, _LAYOUTS[0], 100 * i)
                                for i, k in enumerate("abcdefgh")]
    got = _check(raws)
    assert all(r is not None for r in got)
    first, second = got[0], got[1]
    assert first is not None and second is not None
    assert first.values.base is not None and first.values.base is second.values.base
    assert first.ns_array is not None and first.ns_array.base is not None


def test_one_message_in_another_layout_reads_each_message_alone_alike() -> None:
    # the joined times have two layouts: no shared read; every run still the reference's
    raws: list[bytes | None] = [_series("a", 30, _LAYOUTS[0]), _series("b", 30, _LAYOUTS[2]),
                                _series("c", 5, _LAYOUTS[1])]
    assert all(r is not None for r in _check(raws))


def test_what_it_does_not_take_is_left_to_parse_run_with_its_dead_letter() -> None:
    mixed = json.loads(_series("a", 4, _LAYOUTS[0]))
    mixed[2]["series"] = "b"
    bad_time = _series("a", 30, "2015-02-30T00:00:{s:02d}")
    raws: list[bytes | None] = [json.dumps(mixed).encode(), b" []", None, b"[", b"[]",
                                b'{"kind": "sales"}', bad_time, _series("ok", 25, _LAYOUTS[0])]
    got = _check(raws)
    assert [r is None for r in got] == [True] * 7 + [False]
    for raw in (json.dumps(mixed).encode(), bad_time):
        with pytest.raises(RecordError):
            parse_run(raw, WIDTHS)


def test_lone_records_of_a_batch_are_read_together() -> None:
    # one record a message (no list): the commonest feed; 40 of them share one read
    raws: list[bytes | None] = [
        json.dumps(json.loads(_series(k, 1, _LAYOUTS[1], i))[0]).encode()
        for i, k in enumerate("ab" * 20)]
    got = _check(raws)
    assert all(r is not None and len(r) == 1 for r in got)
    assert got[0] is not None and got[0].ns_array is not None  # from the shared read


def test_a_series_model_of_other_width_takes_none_and_imputed_flags_carry() -> None:
    raws: list[bytes | None] = [_series("a", 30, _LAYOUTS[0], imputed=True)]
    assert series_runs(raws, {"series": 3}) == [None]
    (run,) = _check(raws)
    assert run is not None and run.imputed == [True] * 30


# Odd but plausible records: texts that share a layout with their batch or break it (an
# offset, a lower-case z, a leap second, a day that does not exist, out of range, non-ASCII
# digits), numbers JSON spells oddly, keys at the length limit (in code points, astral
# ones too, escaped or not), flags and duplicate JSON keys (the later one wins).
_ODD_TEXTS = ["2015-02-26T21:42:53.250+02:00", "2015-02-26T21:42:53+00:00",
              "2015-02-26t21:42:53", "2015-02-26T21:42:53z", "2015-02-26T23:59:60",
              "2015-02-29", "1899-12-31T23:59:59", "2200-01-01", "\u0662015-02-26", "2015-2-26",
              "2015-02-26T21:42", "2015-02-26T21:42:53,5"]
_ODD_VALUES = ["-0", "-0.0", "1e39", "-1e39", "1e308", "3.4028235e38", "1E5", "7", "1e-50",
               "1e400", "18446744073709551616", "true", '"1"', "null"]
_ODD_KEYS = ["k" * 256, "k" * 257, "\U0001f600" * 256, "\\ud83d\\ude00" * 256, "\\ud800", "",
             "a\\u0000", "\u00e9"]
_ODD_EXTRA = ['"imputed": true', '"imputed": false', '"schema_version": 1', '"value": 2',
              '"series": "b"', '"kind": "sales"', '"imputed": 1', '"schema_version": 1.0']


@st.composite
def _odd_batch(draw: Any) -> list[bytes | None]:
    layout = draw(st.sampled_from(_LAYOUTS))
    out: list[bytes | None] = []
    second = 0
    for _ in range(draw(st.integers(1, 12))):
        key = draw(st.sampled_from(["a", "b", *_ODD_KEYS]) if draw(st.integers(0, 4)) == 0
                   else st.sampled_from(["a", "b"]))
        rows = []
        for _ in range(draw(st.sampled_from([1, 1, 1, 2, 5, 20]))):
            second += draw(st.sampled_from([1, 1, 0, -3]))
            text = layout.format(m=second // 60 % 60, s=second % 60, d=second % 28 + 1)
            if draw(st.integers(0, 30)) == 0:
                text = draw(st.sampled_from(_ODD_TEXTS))
            value = (draw(st.sampled_from(_ODD_VALUES)) if draw(st.integers(0, 10)) == 0
                     else "1.5")
            fields = [f'"kind": "series", "series": "{key}", "timestamp": "{text}", '
                      f'"value": {value}']
            if draw(st.integers(0, 5)) == 0:
                fields.append(draw(st.sampled_from(_ODD_EXTRA)))
            rows.append("{" + ", ".join(fields) + "}")
        body = rows[0] if len(rows) == 1 and draw(st.booleans()) else "[" + ",".join(rows) + "]"
        out.append(draw(st.sampled_from(["", "", "", " ", "\n"])).encode() + body.encode()
                   if draw(st.integers(0, 8)) else None)
    return out


@settings(max_examples=300, deadline=None)
@given(batch=_odd_batch())
def test_odd_records_in_a_batch_give_parse_runs_runs(batch: list[bytes | None]) -> None:
    _check(batch)
    for raw in batch:  # and parse_run itself still gives the reference's runs or errors
        if raw is not None:
            _assert_same(raw)


def test_lone_records_in_two_layouts_are_read_once_per_layout() -> None:
    # two producers, one stamping with a trailing Z: each layout's 20 lone records share a
    # read (their runs carry the times as an array), none is read alone (which gives a lone
    # record no array); a message with a bad date still goes alone, to parse_run's letter
    raws: list[bytes | None] = [
        json.dumps(json.loads(_series(f"k{i % 3}", 1, _LAYOUTS[0 if i % 2 else 1], i))[0])
        .encode() for i in range(40)]
    got = _check(raws)
    assert all(r is not None and r.ns_array is not None for r in got)
    # a date that does not exist, in the Z layout: that layout's messages are read one at
    # a time (as parse_run would), the other layout's still share their read
    bad = json.dumps(json.loads(_series("a", 1, "2015-02-30 00:00:{s:02d}Z"))[0]).encode()
    got = _check([*raws, bad])
    assert got[-1] is None
    assert all(r is not None and r.ns_array is not None for r in got[1:-1:2])
    assert all(r is not None and r.ns_array is None for r in got[:-1:2])


def test_rows_of_the_four_fields_and_rows_with_optional_ones_give_the_same_runs() -> None:
    # plain rows decode as PlainSeriesWire (no imputed field read); a message with any
    # optional field is decoded in full, its flags kept; both give parse_run's runs
    plain = _series("a", 40, _LAYOUTS[0])
    assert {type(r).__name__ for r in decode_series(plain) or []} == {"PlainSeriesWire"}
    recs = json.loads(_series("b", 40, _LAYOUTS[0]))
    recs[7]["imputed"] = True
    recs[9]["schema_version"] = 1
    full = json.dumps(recs).encode()
    assert {type(r).__name__ for r in decode_series(full) or []} == {"SeriesWire"}
    got = _check([plain, full, _series("c", 40, _LAYOUTS[0], imputed=False)])
    assert got[0] is not None and got[0].imputed is None
    assert got[1] is not None and got[1].imputed == [i == 7 for i in range(40)]
    assert got[2] is not None and got[2].imputed is None


@pytest.mark.parametrize("raw", [
    b'[{"kind": "series", "series": "a", "timestamp": "2015-01-01", "value": true}]',
    b'[{"kind": "series", "series": "a", "timestamp": "2015-01-01", "value": 1, "x": 2}]',
    b'[{"kind": "series", "series": "a", "timestamp": "2015-01-01", "value": 1',
    b'[{"kind": "series", "series": "a", "timestamp": "2015-01-01", "value": 1,'
    b' "imputed": "yes"}]',
])
def test_rows_neither_decoder_takes_are_left_to_the_general_path(raw: bytes) -> None:
    assert decode_series(raw) is None
