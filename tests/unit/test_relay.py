from __future__ import annotations

import doctest

import pytest

import stream_detector.app
import stream_detector.settings
from stream_detector.app import decode_message
from stream_detector.constants import MAX_MESSAGE_BYTES


@pytest.mark.parametrize("module", [stream_detector.app, stream_detector.settings])
def test_doctests(module: object) -> None:
    failures, tried = doctest.testmod(module)  # type: ignore[arg-type]
    assert tried > 0 and failures == 0


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{oops", "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b'"just a string"', "wrong_type"),
        (b"[{}, 3]", "wrong_type"),
        (None, "oversize"),
        (b"[" + b"0," * MAX_MESSAGE_BYTES + b"0]", "oversize"),
    ],
)
def test_bad_messages_are_rejected_with_a_reason(raw: bytes | None, reason: str) -> None:
    with pytest.raises(ValueError, match=f"^{reason}"):
        decode_message(raw)


def test_a_list_message_yields_every_record() -> None:
    assert decode_message(b'[{"a": 1}, {"a": 2}]') == [{"a": 1}, {"a": 2}]
