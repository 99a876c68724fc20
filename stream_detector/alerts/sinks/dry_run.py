"""The dry-run sink (``alerts --dry-run``): payloads as JSON lines instead of posts."""

from __future__ import annotations

import json
from collections.abc import Callable

from stream_detector.alerts.formats import Payload
from stream_detector.alerts.sinks.base import SinkConfig, SinkError

__all__ = ["DryRunSink", "build"]


class DryRunSink:
    """Write each payload as one line of JSON (UTF-8 kept, not escaped).

    Parameters
    ----------
    write
        Takes one line of text (without its newline); the CLI's prints to standard output.

    Raises
    ------
    SinkError
        From a call, when ``write`` fails with an ``OSError`` (a closed pipe, a full disk).
    """

    target = "stdout (dry run)"

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write

    def __call__(self, payload: Payload) -> None:
        try:
            self._write(json.dumps(payload, ensure_ascii=False))
        except OSError as exc:
            raise SinkError(f"dry run could not write a payload ({exc}); check where standard "
                            "output goes (offsets are not committed)") from None


def build(config: SinkConfig) -> DryRunSink:
    """The dry-run sink over ``config.write``."""
    return DryRunSink(config.write)
