from __future__ import annotations

import json
import logging

from stream_detector.logs import JsonFormatter, logging_config


def test_json_lines_carry_level_logger_message_and_extras() -> None:
    record = logging.LogRecord("stream_detector.worker.app", logging.WARNING, __file__, 1,
                               "model %s on %s", ("nab", "CPU"), None)
    record.key = "AAPL"
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "WARNING" and line["logger"] == "stream_detector.worker.app"
    assert line["message"] == "model nab on CPU" and line["key"] == "AAPL"
    assert line["time"].endswith("Z")


def test_exceptions_are_kept_as_text() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert "ValueError: boom" in json.loads(JsonFormatter().format(record))["exception"]


def test_text_format_keeps_fausts_own_logging() -> None:
    assert logging_config("text", "INFO") is None
    config = logging_config("json", "debug")
    assert config is not None and config["root"]["level"] == "DEBUG"


def test_logs_doctests() -> None:
    import doctest

    from stream_detector import logs

    result = doctest.testmod(logs)
    assert result.failed == 0 and result.attempted >= 4
