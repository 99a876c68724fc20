"""Model card validation, anomaly event / dead letter contracts, JSON Schema export."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from model_fixtures import card_dict
from pydantic import ValidationError

from schemas.card import ModelCard
from schemas.events import (
    MAX_DEAD_LETTER_KEY_AND_HEADERS,
    AnomalyEvent,
    DeadLetter,
    SourceRef,
    event_id_for,
    utc_now_iso,
)
from schemas.export import SCHEMA_FILES, export_json_schemas

CARD = card_dict(
    scaler={
        "method": "standard",
        "per_key": True,
        "params": {"*": {"center": [0.0], "scale": [1.0]}, "A": {"center": [5.0], "scale": [2.0]}},
    },
    metrics={"auc": 0.9, "undefined": None},
    library_versions={"torch": "2.15"},
)


def card_with(**changes: Any) -> dict[str, Any]:
    card = copy.deepcopy(CARD)
    for path, value in changes.items():
        node = card
        *parents, leaf = path.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return card


def test_valid_card_round_trips() -> None:
    card = ModelCard.model_validate(CARD)
    again = ModelCard.model_validate_json(card.model_dump_json())
    assert again == card
    assert card.n_features == 1
    assert card.input_name == "windows" and card.output_names == ["score", "errors"]
    assert card.threshold_for("any") == 0.5


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"scaler__params__A__center": [1.0, 2.0]}, "scaler params['A']"),
        ({"scaler__params__A__scale": [0.0]}, "scale contains 0"),
        ({"scaler__params": {"A": {"center": [0.0], "scale": [1.0]}}}, "'*' entry"),
        ({"thresholds__default": float("nan")}, "finite"),
        ({"thresholds__per_key": {"A": float("inf")}}, "finite"),
        ({"thresholds__value_param": 120.0}, "(0, 100)"),
        ({"thresholds__method": "fpr", "thresholds__value_param": 5.0}, "(0, 1)"),
        ({"onnx_sha256": "AB" * 32}, "pattern"),
        ({"onnx_sha256": "ab" * 31}, "pattern"),
        ({"window": 0}, "greater than or equal to 1"),
        ({"window": 4097}, "less than or equal to 4096"),
        ({"stride": 0}, "greater than or equal to 1"),
        ({"family": "transformer"}, "family"),
        ({"record_kind": "tweets"}, "record_kind"),
        ({"features": ["a", "a"]}, "unique"),
        ({"features": []}, "at least 1"),
        ({"created_at": "last tuesday"}, "created_at"),
        ({"name": "../etc"}, "pattern"),
        ({"output_names": ["errors", "score"]}, "must start with"),
        ({"unexpected": 1}, "Extra inputs"),
    ],
)
def test_invalid_cards_are_rejected(change: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        ModelCard.model_validate(card_with(**change))
    assert fragment in str(info.value)


def test_scaler_none_needs_no_params() -> None:
    card = ModelCard.model_validate(card_with(scaler={"method": "none"}))
    assert card.scaler.params == {}


def test_event_id_is_deterministic_and_unambiguous() -> None:
    a = event_id_for("m", "1", "AAPL", "2015-02-26T21:42:53")
    assert a == event_id_for("m", "1", "AAPL", "2015-02-26T21:42:53")
    assert len(a) == 32 and int(a, 16) >= 0
    others = {
        event_id_for("m", "2", "AAPL", "2015-02-26T21:42:53"),
        event_id_for("n", "1", "AAPL", "2015-02-26T21:42:53"),
        event_id_for("m", "1", "MSFT", "2015-02-26T21:42:53"),
        event_id_for("m", "1", "AAPL", "2015-02-26T21:42:54"),
        event_id_for("m1", "", "AAPL", "2015-02-26T21:42:53"),  # no concatenation clash
    }
    assert a not in others and len(others) == 5


def event_payload() -> dict[str, Any]:
    return {
        "event_id": event_id_for("m", "1", "k", "t1"),
        "key": "k",
        "record_kind": "series",
        "window_start": "t0",
        "window_end": "t1",
        "detected_at": "2026-11-22T08:00:00.000Z",
        "score": 2.0,
        "threshold": 1.0,
        "threshold_source": {"method": "percentile", "version": "1", "scope": "default"},
        "severity": 63.2,
        "observed": [1.0],
        "top_contributors": [{"name": "value", "index": 0, "time_offset": 0, "error": 2.0}],
        "model": {"name": "m", "version": "1", "onnx_sha256": "ab" * 32, "family": "dense"},
        "provider": "CPUExecutionProvider",
        "source": {"topic": "records", "partition": 0, "offset": 7},
    }


def test_anomaly_event_round_trip_and_bounds() -> None:
    event = AnomalyEvent.model_validate(event_payload())
    assert AnomalyEvent.model_validate_json(event.model_dump_json()) == event
    assert event.quality.late is False and event.expected is None
    for bad in ({"severity": 101.0}, {"p_value": 1.5}, {"score": float("nan")}, {"event_id": "x"}):
        with pytest.raises(ValidationError):
            AnomalyEvent.model_validate({**event_payload(), **bad})


def test_a_window_event_is_written_without_sample_and_a_sample_event_with_it() -> None:
    """Consumers built on the version-1 schema before sample tests existed forbid unknown
    fields: a window's event must not carry ``sample`` at all, not even as null."""
    from schemas.events import SampleTest
    from stream_detector.core.events import event_json

    window = AnomalyEvent.model_validate(event_payload())
    written = json.loads(event_json(window))
    assert "sample" not in written and set(written) == set(AnomalyEvent.model_fields) - {"sample"}
    assert AnomalyEvent.model_validate_json(event_json(window)) == window
    test = SampleTest(size=250, reference_size=5000, t=31.5, dof=12, p_value=0.001, alpha=0.01,
                      p_shape=0.02)
    sampled = window.model_copy(update={"sample": test, "p_value": 0.001})
    written = json.loads(event_json(sampled))
    assert written["sample"]["size"] == 250 and written["sample"]["p_value"] == 0.001
    assert AnomalyEvent.model_validate_json(event_json(sampled)) == sampled


def test_dead_letter_keeps_original_bytes() -> None:
    raw = b'\xff{"kind": broken'
    letter = DeadLetter.for_message(raw, "malformed_json", "bad", SourceRef(topic="t", offset=3))
    again = DeadLetter.model_validate_json(letter.model_dump_json())
    assert again.original_bytes() == raw
    assert again.reason == "malformed_json" and again.offset == 3 and again.partition is None
    assert again.at.endswith("Z")


def test_dead_letter_keeps_key_and_headers_within_their_bound() -> None:
    source = SourceRef(topic="t", offset=3)
    letter = DeadLetter.for_message(b"v", "malformed_json", "bad", source, key=b"k\xff",
                                    headers=[("a", b"1"), ("b", None)])
    again = DeadLetter.model_validate_json(letter.model_dump_json())
    assert again.key_bytes() == b"k\xff" and again.header_bytes() == [("a", b"1"), ("b", b"")]
    assert not again.truncated
    # without key and headers, the letter's JSON is what it was before they were kept
    bare = json.loads(DeadLetter.for_message(b"v", "r", "m", source).model_dump_json())
    assert "original_key" not in bare and "headers" not in bare
    room = MAX_DEAD_LETTER_KEY_AND_HEADERS
    long_key = DeadLetter.for_message(b"v", "r", "m", source, key=b"x" * (room + 5))
    assert long_key.key_bytes() == b"x" * room and long_key.truncated
    half = b"h" * (room // 2)  # the key, the first header fit; the second would not
    many = DeadLetter.for_message(b"v", "r", "m", source, key=b"k",
                                  headers=[("one", half), ("two", half), ("three", b"3")])
    assert [name for name, _ in many.header_bytes()] == ["one"] and many.truncated
    assert len(many.model_dump_json()) < 1_000_000


@pytest.mark.parametrize(
    "now_ns",
    [0, 999_999, 1_000_000, 1_763_800_000_999_999_999, 1_763_800_001_000_000_000,
     1_763_800_059_123_456_789, 4_102_444_799_999_000_000],
)
def test_utc_now_iso_is_datetime_isoformat(
    monkeypatch: pytest.MonkeyPatch, now_ns: int
) -> None:
    # what utc_now_iso returned before it cached the date part per second
    at = datetime.fromtimestamp(now_ns // 10**9, UTC).replace(microsecond=now_ns // 1000 % 10**6)
    want = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    monkeypatch.setattr("schemas.events.time_ns", lambda: now_ns)
    assert utc_now_iso() == want
    assert utc_now_iso() == want  # from the per-second cache


def test_export_writes_one_valid_schema_per_contract(tmp_path: Path) -> None:
    written = export_json_schemas(tmp_path / "out")
    assert [p.name for p in written] == list(SCHEMA_FILES)
    loaded = {p.name: json.loads(p.read_text()) for p in written}
    record = loaded["record.schema.json"]
    assert record["discriminator"]["propertyName"] == "kind"
    assert set(record["discriminator"]["mapping"]) == {"series", "sales", "events"}
    card_schema = loaded["model_card.schema.json"]
    assert {"onnx_sha256", "window", "scaler", "thresholds"} <= set(card_schema["required"])
    assert "event_id" in loaded["anomaly_event.schema.json"]["properties"]
    assert "original" in loaded["dead_letter.schema.json"]["properties"]


def test_the_package_names_load_lazily_and_all_resolve() -> None:
    import subprocess
    import sys

    import schemas
    import schemas.card
    import schemas.events
    import schemas.records

    for name in schemas.__all__:
        homes = [m for m in (schemas.card, schemas.events, schemas.records) if name in m.__all__]
        assert len(homes) == 1 and getattr(schemas, name) is getattr(homes[0], name)
    assert schemas.ModelCard is ModelCard and schemas.AnomalyEvent is AnomalyEvent
    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        _ = schemas.Nothing  # type: ignore[attr-defined]
    code = "import sys, schemas.kinds; print(*sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60).stdout.split()
    assert "schemas.kinds" in loaded and "pydantic" not in loaded

