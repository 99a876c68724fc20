"""epoch_ns_array reads a message's timestamps as the per-record rule does, or defers to it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.records import in_time_range
from stream_detector.core.iso_times import epoch_ns_array

_US = timedelta(microseconds=1)


def _per_record(texts: list[Any]) -> list[int] | None:
    """``Record.epoch_ns`` of each text (naive = UTC), None if any fails the schema's rule."""
    out = []
    for t in texts:
        if type(t) is not str:
            return None
        try:
            dt = datetime.fromisoformat(t)
        except ValueError:
            return None
        if not in_time_range(dt):
            return None
        epoch = datetime(1970, 1, 1, tzinfo=UTC) if dt.tzinfo else datetime(1970, 1, 1)
        out.append((dt - epoch) // _US * 1000)
    return out


_LAYOUTS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f",
            "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"]


@st.composite
def _texts(draw: Any) -> list[Any]:
    """Texts in one layout (sometimes milliseconds), with odd ones mixed in."""
    layout = draw(st.sampled_from(_LAYOUTS))
    millis = draw(st.booleans())
    n = draw(st.integers(15, 40))
    out: list[Any] = []
    for _ in range(n):
        dt = draw(st.datetimes(min_value=datetime(1850, 1, 1), max_value=datetime(2250, 1, 1)))
        text = dt.strftime(layout)
        if millis and "%f" in layout:
            text = text.replace(f".{dt.microsecond:06d}", f".{dt.microsecond // 1000:03d}")
        out.append(text)
    if draw(st.booleans()):
        i = draw(st.integers(0, n - 1))
        out[i] = draw(st.one_of(
            st.sampled_from([
                "2015-02-29", "2015-02-29T00:00:00", "2016-02-29T00:00:00", "2015-04-31",
                "2015-13-01", "2015-00-10", "2015-01-00", "2015-02-26T24:00:00",
                "2015-02-26T23:60:00", "2015-02-26T23:59:60", "1899-12-31T23:59:59",
                "2200-01-01T00:00:00", "2199-12-31T23:59:59.999999", "1900-01-01",
                "2015-02-26t21:42:53", "2015-02-26T21:42:53+00:00", "2015-02-26T21:42",
                "20150226T214253", "2015-02-26T21:42:53.1234", "２０15-02-26", 5, None,
                "2015-02-26T21:42:53z", "2015-02-26Z", "2015-02-26_21:42:53",
            ]),
            st.text(min_size=0, max_size=30),
        ))
    return out


@settings(max_examples=400, deadline=None)
@given(texts=_texts())
def test_equals_the_per_record_rule_or_defers(texts: list[Any]) -> None:
    got = epoch_ns_array(texts)
    if got is not None:
        assert got.dtype == np.int64 and got.tolist() == _per_record(texts), texts


@pytest.mark.parametrize("layout", _LAYOUTS)
def test_common_layouts_are_read_at_once(layout: str) -> None:
    start = datetime(2015, 2, 26, 21, 42, 53, 123456)
    texts = [(start + timedelta(seconds=7 * i)).strftime(layout) for i in range(50)]
    got = epoch_ns_array(texts)
    assert got is not None and got.tolist() == _per_record(texts)


@pytest.mark.parametrize("odd", ["2015-02-29T00:00:00", "2200-01-01T00:00:00",
                                 "2015-02-26T21:42:5", "2015-02-26T21:42:530"])
def test_one_odd_text_defers_the_whole_message(odd: str) -> None:
    texts = ["2015-02-26T21:42:53"] * 29 + [odd]
    assert epoch_ns_array(texts[:-1]) is not None and epoch_ns_array(texts) is None


def test_texts_of_other_lengths_do_not_pass_as_one_layout() -> None:
    # joined, these read as two valid timestamps; one by one neither is one
    texts = ["2015-02-26T21:42:53"] * 30
    assert epoch_ns_array(texts) is not None
    texts[3:5] = ["2015-02-26T21:42:532", "015-02-26T21:42:53"]
    assert epoch_ns_array(texts) is None


@pytest.mark.parametrize("day", [
    "1900-02-28", "1900-02-29", "1900-03-01", "2000-02-29", "2100-02-29", "2016-02-29",
    "2015-02-29", "2015-12-31", "1999-12-31", "2199-12-31", "1900-01-01", "1899-12-31",
    "2200-01-01", "2015-04-30", "2015-04-31", "2015-06-31", "2015-11-31", "2015-07-31",
])
@pytest.mark.parametrize("clock", ["", "T23:59:59", " 00:00:00.999", "T12:30:01.000001Z"])
def test_calendar_edges_read_as_the_per_record_rule(day: str, clock: str) -> None:
    # century years are leap years only every 400 years; months of 30 days; the range's ends
    texts = ["2015-03-01" + clock] * 24 + [day + clock]
    got = epoch_ns_array(texts)
    want = _per_record(texts)
    assert (got.tolist() if got is not None else None) == want
