"""The sink contract: what every alert destination (webhook, dry run, ...) promises.

A sink is a callable that delivers one payload (:data:`~stream_detector.alerts.formats.Payload`,
a JSON-serialisable dict) or raises :class:`SinkError`. The consumer commits a message's Kafka
offset only after every payload it caused was delivered, so raising is how a sink says "read
this again" (at least once). A sink's :attr:`~Sink.target` names where its posts go in words
that are safe to log: never a token, password or a webhook's secret path.

Sinks are built from one :class:`SinkConfig` by the factory registered under their name in
:mod:`stream_detector.alerts.sinks.registry`; adding a sink is one module with its class and
``build`` function, plus one line there. Every registered sink passes the contract test
(``tests/unit/alerts/sinks/test_alerts_sinks_contract.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from stream_detector.alerts.formats import Payload
from stream_detector.exceptions import StreamDetectorError

__all__ = ["Sink", "SinkConfig", "SinkError", "SinkFactory"]


class SinkError(StreamDetectorError):
    """A sink could not deliver a payload; the message that caused it is read again."""


@runtime_checkable
class Sink(Protocol):
    """One alert destination.

    Attributes
    ----------
    target
        Where posts go, safe to print (``https://hooks.slack.com/***``, ``stdout (dry run)``).
    """

    target: str

    def __call__(self, payload: Payload) -> None:
        """Deliver ``payload`` whole, or raise :class:`SinkError` (never return without
        having delivered it)."""


@dataclass(frozen=True)
class SinkConfig:
    """What a sink factory may use; each sink takes the fields it needs.

    Parameters
    ----------
    url
        Destination URL (the webhook's; from ``--webhook`` or
        ``STREAM_DETECTOR_ALERT_WEBHOOK_URL``), None when none was given.
    write
        Writes one line of text (standard output for the CLI).
    timeout
        Seconds for one delivery attempt.
    retries
        Further attempts after a failure worth repeating (5xx, network errors).
    """

    url: str | None
    write: Callable[[str], None]
    timeout: float = 10.0
    retries: int = 4


SinkFactory = Callable[[SinkConfig], Sink]
