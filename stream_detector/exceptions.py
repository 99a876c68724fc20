"""One exception hierarchy; every message says what to do next."""

from __future__ import annotations

__all__ = [
    "StreamDetectorError",
    "ConfigurationError",
    "ConnectionFailed",
    "ServiceError",
    "MissingToolError",
    "ServiceStartError",
    "ModelCardError",
    "ModelCardMismatch",
    "InvalidRecord",
    "DataError",
]


class StreamDetectorError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigurationError(StreamDetectorError):
    """A setting is missing or malformed."""


class ServiceError(StreamDetectorError):
    """The local Kafka broker or redis-server could not be managed, or a service is unreachable."""


class ConnectionFailed(ServiceError):
    """Kafka or Redis refused this client (credentials, TLS, protocol) or did not answer.

    ``outage`` is True when the server merely did not answer (it may come back), False when a
    setting is wrong (retrying cannot help). The message names the setting to change.
    """

    def __init__(self, message: str, *, outage: bool = False) -> None:
        super().__init__(message)
        self.outage = outage


class MissingToolError(ServiceError):
    """A program the local services need (java, mvn, redis-server) is not installed."""


class ServiceStartError(ServiceError):
    """A local service was started but never became ready."""


class ModelCardError(StreamDetectorError):
    """A model card is missing, unreadable or invalid."""


class ModelCardMismatch(ModelCardError):
    """The card's sha256 does not match the ONNX file next to it."""


class InvalidRecord(StreamDetectorError):
    """An input record cannot be used; it goes to the dead-letter topic with this reason."""


class DataError(StreamDetectorError):
    """An input file for training or scoring is malformed (the message names file, row, column)."""
