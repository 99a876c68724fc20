"""The raw decode patch: the same events as Faust's own decoder, without its registry."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest
from faust.types import TP
from faust.types.tuples import Message as FaustMessage

from stream_detector.worker import faust_raw_decode


def test_upstream_is_the_code_the_patch_was_reviewed_against() -> None:
    # Fails when faust-streaming changes the decode chain the patch stands in for: review
    # stream_detector/worker/faust_raw_decode.py against the new code, then update the hashes.
    assert faust_raw_decode.upstream_matches() == dict.fromkeys(
        faust_raw_decode.UPSTREAM_SHA256, True)


def _message(key: Any, value: Any) -> FaustMessage:
    return FaustMessage(topic="in", partition=0, offset=3, timestamp=1.0, timestamp_type=0,
                        headers=[("h", b"1")], key=key, value=value, checksum=None,
                        tp=TP("in", 0))


CASES = [(b"k1", b'{"kind":"series"}'), (None, b"v"), (b"k", None), (b"", b""),
         (None, None)]


def _decoded(app: faust.App, topic: Any) -> list[tuple[Any, Any, Any, Any]]:
    decode = topic.schema.compile(app)
    events = [asyncio.run(decode(_message(k, v), propagate=True)) for k, v in CASES]
    return [(e.key, e.value, e.headers, e.message.offset) for e in events]


def test_raw_topics_decode_to_the_same_events_without_the_registry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = faust.App("decode-test", broker="kafka://127.0.0.1:1", store="memory://")
    raw = app.topic("in", value_serializer="raw", key_serializer="raw")
    upstream = _decoded(app, raw)
    assert faust_raw_decode.install() and faust_raw_decode.installed()
    assert faust_raw_decode.install()  # idempotent

    def no_registry(*a: Any, **k: Any) -> Any:
        raise AssertionError("the registry was used for a raw message")
    monkeypatch.setattr(app.serializers, "loads_key", no_registry)
    monkeypatch.setattr(app.serializers, "loads_value", no_registry)
    assert _decoded(app, raw) == upstream
    assert upstream[0] == (b"k1", b'{"kind":"series"}', {"h": b"1"}, 3)


def test_other_schemas_and_values_keep_upstreams_decoder() -> None:
    app = faust.App("decode-test-2", broker="kafka://127.0.0.1:1", store="memory://")
    assert faust_raw_decode.install()
    as_json = app.topic("j", value_serializer="json", key_serializer="raw")
    event = asyncio.run(as_json.schema.compile(app)(_message(b"k", b'{"a": 1}')))
    assert event.value == {"a": 1}  # json decoded: upstream's decoder
    raw = app.topic("in", value_serializer="raw", key_serializer="raw")
    event = asyncio.run(raw.schema.compile(app)(_message("text", b"v")))
    assert event.key == b"text"  # a str key is no bytes: upstream's want_bytes ran
