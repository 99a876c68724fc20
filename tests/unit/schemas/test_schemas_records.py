"""Input records: every valid kind, and every reason a message is rejected."""

from __future__ import annotations

import json

import pytest

from schemas import records
from schemas.records import (
    REASONS,
    FeatureEvent,
    RecordError,
    SalesRow,
    SeriesPoint,
    parse_message,
)

SERIES = {"kind": "series", "series": "AAPL", "timestamp": "2015-02-26T21:42:53", "value": 104.0}
SALES = {"kind": "sales", "date": "2017-01-01", "store": 1, "item": 7, "sales": 13.0}
EVENT = {
    "kind": "events",
    "source": "detector-a",
    "event_id": "e1",
    "timestamp": "2024-05-01T12:00:00Z",
    "features": [0.5] * 57,
}


def dumps(obj: object) -> bytes:
    return json.dumps(obj).encode()


def reason_of(raw: bytes, **kwargs: int) -> str:
    with pytest.raises(RecordError) as info:
        parse_message(raw, **kwargs)
    return info.value.reason


def test_series_point_keeps_text_and_parses_time() -> None:
    (rec,) = parse_message(dumps(SERIES))
    assert isinstance(rec, SeriesPoint)
    assert rec.key == "AAPL"
    assert rec.timestamp_text == "2015-02-26T21:42:53"
    assert rec.epoch_ns == 1_424_986_973 * 10**9  # naive = UTC
    assert rec.values == [104.0]
    assert rec.schema_version == 1


def test_sales_row_key_is_store_slash_item() -> None:
    (rec,) = parse_message(dumps(SALES))
    assert isinstance(rec, SalesRow)
    assert rec.key == "1/7"
    assert rec.timestamp_text == "2017-01-01"
    assert rec.time.isoformat() == "2017-01-01T00:00:00+00:00"


def test_feature_event_and_explicit_offset() -> None:
    (rec,) = parse_message(dumps({**EVENT, "timestamp": "2024-05-01T13:00:00+01:00"}))
    assert isinstance(rec, FeatureEvent)
    assert rec.key == "detector-a"
    assert len(rec.values) == 57
    (utc,) = parse_message(dumps(EVENT))
    assert rec.epoch_ns == utc.epoch_ns  # same instant written in another zone
    assert rec.timestamp_text != utc.timestamp_text


def test_microseconds_survive() -> None:
    (rec,) = parse_message(dumps({**SERIES, "timestamp": "2026-11-22T07:58:50.123456Z"}))
    assert rec.epoch_ns % 10**9 == 123_456_000


def test_list_of_one_key_in_order() -> None:
    msgs = [{**SERIES, "value": float(i), "timestamp": f"2015-02-26T21:4{i}:00"} for i in range(5)]
    recs = parse_message(dumps(msgs))
    assert [r.values[0] for r in recs] == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_empty_list_is_a_dead_letter_not_silence() -> None:
    with pytest.raises(RecordError, match="empty list") as info:
        parse_message(b" []")
    assert info.value.reason == "empty_message"


def test_records_are_frozen() -> None:
    (rec,) = parse_message(dumps(SERIES))
    with pytest.raises(ValueError, match="frozen"):
        rec.value = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"kind": "series"', "malformed_json"),
        (b"\xff\xfe\x00", "malformed_json"),
        (b"", "malformed_json"),
        (dumps({**SERIES, "value": "104"}), "wrong_type"),
        (dumps({k: v for k, v in SERIES.items() if k != "value"}), "wrong_type"),
        (dumps({**SERIES, "extra": 1}), "wrong_type"),
        (dumps({**SERIES, "series": ""}), "wrong_type"),
        (dumps({**SERIES, "series": "x" * 257}), "wrong_type"),
        (dumps({**SERIES, "timestamp": "yesterday"}), "wrong_type"),
        (dumps({**SERIES, "timestamp": 1424986973}), "wrong_type"),
        (dumps({**SALES, "store": -1}), "wrong_type"),
        (b"42", "wrong_type"),
        (b"[42]", "wrong_type"),
        (dumps({**SERIES, "value": None}), "wrong_type"),
        (dumps(SERIES).replace(b"104.0", b"NaN"), "non_finite"),
        (dumps(SERIES).replace(b"104.0", b"Infinity"), "non_finite"),
        (dumps(SERIES).replace(b"104.0", b"1e400"), "non_finite"),
        (dumps(SALES).replace(b"13.0", b"-Infinity"), "non_finite"),
        (dumps(EVENT).replace(b"0.5]", b"NaN]"), "non_finite"),
        # finite in float64, infinite in the models' float32: `score` refuses them in a file
        (dumps(SERIES).replace(b"104.0", b"1e308"), "non_finite"),
        (dumps(SERIES).replace(b"104.0", b"-1e39"), "non_finite"),
        (dumps(SALES).replace(b"13.0", b"3.5e38"), "non_finite"),
        (dumps(EVENT).replace(b"0.5]", b"1e39]"), "non_finite"),
        (dumps({**EVENT, "features": []}), "wrong_width"),
        (dumps({**EVENT, "features": [0.0] * 4097}), "wrong_width"),
        (dumps({**SERIES, "kind": "tweets"}), "unknown_kind"),
        (dumps({k: v for k, v in SERIES.items() if k != "kind"}), "unknown_kind"),
        (dumps([SERIES, {**SERIES, "series": "MSFT"}]), "mixed_keys"),
        (dumps([SALES, {**SALES, "item": 8}]), "mixed_keys"),
        (dumps({**SERIES, "schema_version": 2}), "schema_version"),
    ],
)
def test_rejection_reasons(raw: bytes, reason: str) -> None:
    assert reason in REASONS
    assert reason_of(raw) == reason


def test_a_value_beyond_float32_is_named_with_the_range_and_the_edge_is_kept() -> None:
    with pytest.raises(records.RecordError, match=r"^non_finite: value: beyond the float32 "
                                                  r"range the models compute in \(\|x\| <= "):
        records.parse_message(dumps(SERIES).replace(b"104.0", b"1e308"))
    edge = repr(records.FLOAT32_MAX).encode()
    assert records.parse_message(dumps(SERIES).replace(b"104.0", edge))
    with pytest.raises(records.RecordError, match="store: Input should be greater"):
        records.parse_message(dumps({**SALES, "store": -1}))  # not a float32 matter


def test_oversize_is_checked_before_parsing() -> None:
    raw = b"{" * 100  # would be malformed, but the size check comes first
    assert reason_of(raw, max_bytes=99) == "oversize"
    assert reason_of(b" " * (records.MAX_MESSAGE_BYTES + 1)) == "oversize"


def test_too_many_records() -> None:
    assert reason_of(dumps([SERIES] * 3), max_records=2) == "too_many_records"
    assert len(parse_message(dumps([SERIES] * 2), max_records=2)) == 2


def test_expected_width_is_enforced_on_request() -> None:
    raw = dumps(EVENT)
    assert len(parse_message(raw, expected_width=57)) == 1
    with pytest.raises(RecordError) as info:
        parse_message(raw, expected_width=56)
    assert info.value.reason == "wrong_width"
    assert "57 features" in info.value.message and "56" in info.value.message


def test_error_message_names_record_and_field() -> None:
    raw = dumps([SERIES, {**SERIES, "value": "x"}])
    with pytest.raises(RecordError) as info:
        parse_message(raw)
    assert isinstance(info.value, ValueError)
    assert info.value.message.startswith("record 1: value")
    assert str(info.value).startswith("wrong_type: ")


def test_bad_timestamp_message_says_what_to_send() -> None:
    with pytest.raises(RecordError, match="not ISO 8601"):
        parse_message(dumps({**SERIES, "timestamp": "26/02/2015"}))


def test_reason_codes_are_the_documented_set() -> None:
    assert set(REASONS) == {
        "malformed_json",
        "oversize",
        "too_many_records",
        "wrong_type",
        "non_finite",
        "wrong_width",
        "unknown_kind",
        "mixed_keys",
        "schema_version",
        "empty_message",
        "unrouted",
        "timestamp_range",
    }
