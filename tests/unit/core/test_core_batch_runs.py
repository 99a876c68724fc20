"""series_runs: a batch's series lists read together give exactly parse_run's runs, and
leave every other message (and its dead letter) to parse_run."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_core_record_runs import WIDTHS, _message

from schemas.records import RecordError
from stream_detector.core.batch_runs import series_runs
from stream_detector.core.record_runs import RecordRun, parse_run

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
    assert np.array_equal(got.values, want.values)
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
