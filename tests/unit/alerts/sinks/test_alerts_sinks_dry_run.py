"""The dry-run sink: one JSON line per payload; a failed write is a SinkError."""

from __future__ import annotations

import json

import pytest

from stream_detector.alerts.sinks.base import SinkError
from stream_detector.alerts.sinks.dry_run import DryRunSink


def test_dry_run_writes_json_lines() -> None:
    lines: list[str] = []
    DryRunSink(lines.append)({"text": "é"})
    assert [json.loads(line) for line in lines] == [{"text": "é"}]
    assert lines == ['{"text": "é"}']  # UTF-8 kept, not escaped


def test_a_failed_write_is_a_sink_error() -> None:
    def closed(line: str) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(SinkError, match="Broken pipe"):
        DryRunSink(closed)({"text": "x"})
