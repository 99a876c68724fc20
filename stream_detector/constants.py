"""Every Redis key prefix and default topic name, and the execution-provider choices."""

from __future__ import annotations

import re
from typing import Final, Literal, get_args

__all__ = [
    "APP_ID",
    "DEFAULT_INPUT_TOPIC",
    "DEFAULT_OUTPUT_TOPIC",
    "DEFAULT_DEAD_LETTER_TOPIC",
    "REDIS_PREFIX",
    "REDIS_THRESHOLD_PREFIX",
    "REDIS_THRESHOLD_CHANNEL",
    "REDIS_MODEL_CHANNEL",
    "REDIS_HEALTHCHECK_KEY",
    "REDIS_ALERTS_PREFIX",
    "PROVIDER_PREFERENCES",
    "ProviderPreference",
    "redis_prefix",
    "namespaced",
    "topic_name_problem",
]

APP_ID: Final = "stream-detector"

DEFAULT_INPUT_TOPIC: Final = "records"
DEFAULT_OUTPUT_TOPIC: Final = "anomalies"
DEFAULT_DEAD_LETTER_TOPIC: Final = "records-dead-letter"

REDIS_PREFIX: Final = "sd:"
# sd:threshold:<model_name>:<model_version> is a hash: field = key ("*" = model default).
REDIS_THRESHOLD_PREFIX: Final = REDIS_PREFIX + "threshold:"
# Workers subscribe here to learn of threshold changes without polling per record.
REDIS_THRESHOLD_CHANNEL: Final = REDIS_PREFIX + "thresholds:changed"
REDIS_MODEL_CHANNEL: Final = REDIS_PREFIX + "models:changed"
REDIS_HEALTHCHECK_KEY: Final = REDIS_PREFIX + "healthcheck"
# sd:alerts:<consumer group> is a hash of the open incidents of `stream-detector alerts`.
REDIS_ALERTS_PREFIX: Final = REDIS_PREFIX + "alerts:"


def redis_prefix(namespace: str = "") -> str:
    """Prefix of a deployment's Redis keys and channels: the names above with ``sd:``
    turned into ``sd:NS:`` (settings' ``namespace``).

    >>> redis_prefix(""), redis_prefix("team-a")
    ('sd:', 'sd:team-a:')
    """
    return f"{REDIS_PREFIX}{namespace}:" if namespace else REDIS_PREFIX


def namespaced(name: str, namespace: str = "") -> str:
    """One of the ``sd:`` constants above, in ``namespace``.

    >>> namespaced(REDIS_THRESHOLD_CHANNEL, "team-a")
    'sd:team-a:thresholds:changed'
    """
    return redis_prefix(namespace) + name.removeprefix(REDIS_PREFIX)

ProviderPreference = Literal["auto", "cpu", "cuda", "tensorrt"]
"""Which ONNX Runtime execution provider to ask for (``auto``: the best that works here); the
choice of the ``provider`` setting, ``score --provider`` and ``core.providers.select_providers``,
which implements each one."""
PROVIDER_PREFERENCES: Final[tuple[ProviderPreference, ...]] = get_args(ProviderPreference)


_TOPIC: Final = re.compile(r"[A-Za-z0-9._-]{1,249}")  # Kafka: common.internals.Topic


def topic_name_problem(name: str) -> str | None:
    """What Kafka would refuse in a topic name (letters, digits, ``.``, ``_`` and ``-``, 1 to
    249 characters, not ``.`` or ``..``), or None for a legal name.

    >>> topic_name_problem("team-a.records") is None, topic_name_problem("a b")
    (True, "'a b' is not a Kafka topic name: use letters, digits, '.', '_' and '-', up to 249")
    """
    if _TOPIC.fullmatch(name) and name not in (".", ".."):
        return None
    return (f"{name[:60]!r}{'...' if len(name) > 60 else ''} is not a Kafka topic name: use "
            "letters, digits, '.', '_' and '-', up to 249")
