"""Log output of a worker: readable text for people, or one JSON object per line for machines.

``STREAM_DETECTOR_LOG_FORMAT=json`` gives lines a log shipper can index without parsing::

    {"time": "2026-11-22T09:00:00.123Z", "level": "INFO", "logger": "stream_detector.worker.app",
     "message": "model nab version 3 on CPUExecutionProvider", "process": 4242}

Settings' secrets are ``SecretStr`` and never reach a log line in either format.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

__all__ = ["JsonFormatter", "RepeatFilter", "logging_config", "printable"]

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# C0 and C1 controls, DEL, and the bidirectional overrides and isolates (Trojan Source,
# CVE-2021-42574) that reorder what a terminal shows
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with control characters as escapes (``\\n``, ``\\x1b``, ``\\u202e``): keys
    and names come from Kafka messages, and a key holding a newline or an ANSI sequence
    would otherwise forge log lines or recolour the reader's terminal.

    >>> printable("web-1"), printable("evil\\n[INFO] fake \\x1b[31m"), printable("a\\u202eb")
    ('web-1', 'evil\\\\n[INFO] fake \\\\x1b[31m', 'a\\\\u202eb')
    """
    if _UNPRINTABLE.search(text) is None:  # the usual case: one scan, no copy
        return text
    return _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], text)


class JsonFormatter(logging.Formatter):
    """One JSON object per record; ``extra=`` fields are kept, exceptions as text."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool) else repr(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def logging_config(fmt: str, level: str) -> dict[str, Any] | None:
    """A ``logging.config.dictConfig`` for ``fmt`` ("json"), or None to keep Faust's text."""
    if fmt != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                                "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
    }


class RepeatFilter(logging.Filter):
    """Rate-limits repeated warnings and errors: one line per kind per ``interval`` seconds.

    A broker or Redis outage makes client libraries log the same connection error many
    times a second (about 100 lines/s from aiokafka). Records of level WARNING and above
    with the same logger, level and message template pass once per ``interval``; the next
    one that passes says how many were held back. Lower levels always pass.

    >>> now = [0.0]
    >>> f = RepeatFilter(interval=10.0, clock=lambda: now[0])
    >>> rec = lambda: logging.makeLogRecord({"levelno": 40, "msg": "down %s", "args": (1,)})
    >>> [f.filter(rec()) for _ in range(3)]
    [True, False, False]
    >>> now[0] = 10.5; r = rec(); f.filter(r), r.getMessage()
    (True, 'down 1 (2 similar lines in the last 10 s were not logged)')
    """

    def __init__(self, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self._clock = clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.interval:
            self._seen[key] = (last[0], last[1] + 1)
            return False
        if len(self._seen) > 1000:  # bounded: distinct templates are few
            self._seen.clear()
        self._seen[key] = (now, 0)
        if last is not None and last[1]:
            record.msg = f"{record.msg} ({last[1]} similar lines in the last " \
                         f"{self.interval:.0f} s were not logged)"
        return True
