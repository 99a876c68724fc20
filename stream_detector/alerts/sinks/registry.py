"""Every alert sink, by the name ``stream-detector alerts --sink NAME`` takes.

The one place a sink is registered: add its module's ``build`` here and the CLI offers it,
and the contract test runs over it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from stream_detector.alerts.sinks import dry_run, webhook
from stream_detector.alerts.sinks.base import Sink, SinkConfig, SinkFactory
from stream_detector.exceptions import ConfigurationError

__all__ = ["SINKS", "build_sink", "sink_factory"]

SINKS: Final[Mapping[str, SinkFactory]] = MappingProxyType({
    "webhook": webhook.build,
    "dry-run": dry_run.build,
})


def build_sink(name: str, config: SinkConfig) -> Sink:
    """The sink registered as ``name``, built from ``config``.

    Raises
    ------
    ConfigurationError
        ``name`` is not registered, or the sink refuses ``config`` (no URL, a bad URL).
    """
    return sink_factory(name)(config)


def sink_factory(name: str) -> SinkFactory:
    """The factory registered as ``name``; :class:`ConfigurationError` when none is."""
    factory = SINKS.get(name)
    if factory is None:
        raise ConfigurationError(f"no alert sink {name!r}; choose one of {', '.join(SINKS)}")
    return factory
