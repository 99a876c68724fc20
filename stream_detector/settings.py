"""All runtime settings in one frozen class, read from the environment (``STREAM_DETECTOR_*``).

Kafka and Redis are given as URLs; credentials are ``SecretStr`` so they never appear in
logs or reprs. Nothing else in the project reads the environment.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream_detector.constants import (
    DEFAULT_DEAD_LETTER_TOPIC,
    DEFAULT_INPUT_TOPIC,
    DEFAULT_OUTPUT_TOPIC,
    ProviderPreference,
    redis_prefix,
    topic_name_problem,
)
from stream_detector.exceptions import ConfigurationError
from stream_detector.service_urls import broker_addresses, kafka_bootstrap_servers, pool_refuses

__all__ = ["URL_FLAGS", "Settings", "broker_addresses", "get_settings", "invalid_settings",
           "kafka_bootstrap_servers", "settings_with"]

KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
_NAMESPACED = ("input_topic", "output_topic", "dead_letter_topic", "app_id")
_NAMESPACE = re.compile(r"[A-Za-z0-9_-]{0,40}")
_APP_ID = re.compile(r"[A-Za-z0-9._-]{1,200}")


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "stream-detector"


class Settings(BaseSettings):
    """Runtime configuration of workers, CLI commands and the demo."""

    model_config = SettingsConfigDict(
        env_prefix="STREAM_DETECTOR_", frozen=True, extra="ignore", env_file=None
    )

    namespace: str = Field(
        "",
        description="deployment name: prefixes topics (NS.records), the app id, and Redis keys "
        "(sd:NS:...), so teams sharing Kafka and Redis never see each other's thresholds",
    )

    # --- Kafka -------------------------------------------------------------------------
    kafka_url: str = Field(
        "kafka://127.0.0.1:9092",
        description="Kafka bootstrap servers as kafka://HOST:PORT[,HOST:PORT]",
    )
    kafka_security_protocol: KafkaSecurityProtocol = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    kafka_sasl_mechanism: SaslMechanism = Field(
        "PLAIN", description="SASL mechanism when the protocol is SASL_*"
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (secret)")
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle for broker TLS")
    kafka_ssl_certfile: Path | None = Field(None, description="client certificate for mutual TLS")
    kafka_ssl_keyfile: Path | None = Field(None, description="client key for mutual TLS")
    input_topic: str = Field(DEFAULT_INPUT_TOPIC, description="topic the worker consumes")
    output_topic: str = Field(DEFAULT_OUTPUT_TOPIC, description="topic anomaly events go to")
    dead_letter_topic: str = Field(
        DEFAULT_DEAD_LETTER_TOPIC, description="topic invalid records go to, with the reason"
    )
    topic_partitions: int = Field(4, ge=1, description="partitions of topics the worker creates")

    # --- Redis -------------------------------------------------------------------------
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis as redis://[user@]HOST:PORT/DB, or rediss:// for TLS",
    )
    redis_username: str | None = Field(None, description="Redis ACL user (AUTH)")
    redis_password: SecretStr | None = Field(None, description="Redis password (AUTH, secret)")
    redis_ssl_ca_certs: Path | None = Field(None, description="CA bundle for rediss:// URLs")

    # --- Alerts ------------------------------------------------------------------------
    alert_webhook_url: SecretStr | None = Field(
        None, description="webhook `stream-detector alerts` posts to (secret: Slack-style "
        "URLs carry their token in the path)",
    )

    # --- Worker ------------------------------------------------------------------------
    app_id: str = Field(
        "stream-detector",
        description="Faust app id: consumer group and changelog prefix"
    )
    batch_max: int = Field(
        1024, ge=1, le=65536, description="most events the worker scores in one batch"
    )
    batch_wait: float = Field(
        0.005, gt=0, le=10, description="seconds the worker waits to fill a batch from Faust's "
        "stream (bulk_delivery off; bulk delivery takes what the fetches brought at once)"
    )
    consumer_buffer: int = Field(
        16384, ge=64, le=1 << 20,
        description="messages Faust's consumer may hold ahead of the scoring agent (Faust's "
        "stream_buffer_maxsize, default there 4096; with bulk_delivery, the records of the "
        "input topic's lists waiting): it fetches while the agent scores; memory up to this "
        "many messages",
    )
    fetch_bytes: int = Field(
        8 << 20, ge=1 << 20, le=256 << 20,
        description="bytes one fetch request may bring per partition (Faust's "
        "consumer_max_fetch_size, default there 1 MiB); at least one message's bound",
    )
    fetch_max_wait: float = Field(
        0.02, gt=0, le=1.5,
        description="seconds a fetch request may wait at the broker for new records (Kafka's "
        "fetch.max.wait.ms; Faust fixes 1.5 s): while one waits, partitions with records "
        "buffered are not fetched, so their records can wait this long (a start-up patch, "
        "stream_detector/worker/faust_fetch_wait.py); an idle worker fetches this often; and the "
        "longest records that trickle in wait for a fetch of fetch_min_bytes",
    )
    fetch_min_bytes: int = Field(
        65536, ge=1, le=8 << 20,
        description="bytes a fetch request asks the broker to gather before it answers, "
        "waiting at most fetch_max_wait (Kafka's fetch.min.bytes; 1 in Faust and aiokafka): "
        "under load, fewer and larger fetches (at 5,000 messages/s, 1 record each, "
        "produce-to-event p99 133 -> 63 ms on 2 shared cores); records that trickle in wait "
        "up to fetch_max_wait longer; 1: answer as soon as any record is there",
    )
    intra_op_threads: int = Field(
        -1, ge=-1, description="ONNX Runtime threads per operator (0: one per core; -1: the "
        "faster of 1 and one per core, timed on this machine at model load)",
    )
    state_cache_keys: int = Field(
        100_000, ge=1, le=100_000_000,
        description="key states held decoded in memory; beyond it, those updated longest ago "
        "are dropped from memory after each state flush and decoded again from the table's "
        "bytes when their key returns (100,000 keys, a window of 24: 4.7 KB a key all "
        "decoded, 1.1 KB with 10,000 decoded)",
    )
    state_flush_interval: float = Field(
        0.25, gt=0, le=30,
        description="seconds between changelog writes of key states (offsets commit after)",
    )
    dead_letter_skew: float = Field(
        0.0, ge=0,
        description="seconds ahead of its key's watermark beyond which a skewed record is "
        "dead-lettered (reason clock_skew) instead of scored with the skewed flag; 0: never",
    )
    fast_delivery: bool = Field(
        True, description="hand each Kafka message to Faust's stream without its asyncio tasks "
        "or codec look-ups (start-up patches, stream_detector/worker/faust_patch.py and "
        "faust_raw_decode.py): the changelog while it is restored, and the input topic with "
        "bulk_delivery off; false: Faust's own delivery (the rebalance fixes stay on)",
    )
    bulk_delivery: bool = Field(
        True, description="hand the input topic's records to the scoring agent in lists, "
        "one per partition and fetch, without Faust's per-message path (a start-up patch, "
        "stream_detector/worker/bulk_delivery.py; at 5,000 messages/s of one record, worker "
        "CPU 72% -> 46% of a core, produce-to-event p99 80-193 -> 46-52 ms on 2 shared "
        "cores); false: Faust's stream, event by event",
    )
    model_poll_interval: float = Field(
        2.0, gt=0, description="seconds between checks for new model versions"
    )
    group_instance_id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9._-]{1,200}$",
        description="static consumer group membership: a name unique to this worker and "
        "stable across its restarts (e.g. the pod name); a restarted worker gets its "
        "partitions back without a rebalance",
    )
    session_timeout: float = Field(
        8.0, ge=6, le=300, description="seconds without heartbeats before the group gives a "
        "worker's partitions to the others",
    )
    heartbeat_interval: float = Field(
        1.0, gt=0, le=100, description="seconds between consumer group heartbeats"
    )
    rebalance_timeout: float = Field(
        20.0, ge=1, le=600, description="seconds a rebalance waits for members to rejoin"
    )
    metadata_max_age: float = Field(
        30.0, ge=1, le=3600, description="seconds between the consumer's topic metadata "
        "refreshes: an input topic deleted, re-created or grown is noticed within this "
        "(Kafka's default, 300 s, left a worker idle for five minutes); a worker whose input "
        "topic's partition count changed exits with code 1 (its key states would go to the "
        "wrong changelog partitions)",
    )
    shutdown_timeout: float = Field(
        20.0, gt=0, le=600,
        description="seconds a worker may take to stop after SIGTERM/SIGINT; past it the "
        "worker exits without committing (records since the last commit are replayed on "
        "restart). Keep it below the orchestrator's grace period (Kubernetes: 30 s)",
    )
    web_host: str = Field("127.0.0.1", min_length=1,
                          description="address the worker's HTTP server binds")
    provider: ProviderPreference = Field(
        "auto", description="ONNX Runtime execution provider: auto, cpu, cuda or tensorrt"
    )
    web_port: int = Field(6066, ge=0, le=65535, description="worker HTTP port (metrics, health)")
    ui_host: str = Field("127.0.0.1", min_length=1,
                         description="address `stream-detector ui` binds")
    ui_port: int = Field(6068, ge=0, le=65535, description="port of `stream-detector ui`")
    ui_points_per_key: int = Field(
        4096, ge=16, le=1_000_000, description="observed values the explorer keeps per key"
    )
    state_dir: Path = Field(
        Path("./runs/state"), description="where the worker keeps its local table state"
    )
    cache_dir: Path = Field(
        default_factory=_default_cache_dir,
        description="downloads and local services (Kafka jars, broker data)",
    )
    log_level: LogLevel = Field("INFO", description="logging level: DEBUG, INFO, WARNING, "
                                "ERROR or CRITICAL")
    log_format: Literal["text", "json"] = Field(
        "text", description="worker log lines: text, or one JSON object per line"
    )
    summary_interval: float = Field(
        10.0, ge=0, description="seconds between the worker's summary lines (0: none)"
    )
    anomaly_lines_per_second: int = Field(
        10, ge=0, description="most anomaly lines a worker prints per second (the rest are "
        "counted in the summary)"
    )

    @model_validator(mode="before")
    @classmethod
    def _namespaced(cls, data: Any) -> Any:
        """With a namespace, topic names and the app id get its prefix (once)."""
        if not isinstance(data, dict) or not data.get("namespace"):
            return data
        if not _NAMESPACE.fullmatch(str(data["namespace"])):
            return data  # refused on its own (_check_namespace), not in every prefixed name
        prefix = f"{data['namespace']}."
        for name in _NAMESPACED:
            if data.get(name) == "":  # given empty: refused as it is, not made the default
                continue
            value = str(data.get(name) or cls.model_fields[name].default)
            data[name] = value if value.startswith(prefix) else prefix + value
        return data

    @property
    def redis_prefix(self) -> str:
        """Prefix of every Redis key and channel of this deployment (``sd:`` or ``sd:NS:``)."""
        return redis_prefix(self.namespace)

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, v: str) -> str:
        if not _NAMESPACE.fullmatch(v):
            raise ValueError(f"{v[:60]!r} is not a namespace: use up to 40 letters, digits, "
                             "'_' and '-'")
        return v

    @field_validator("app_id")
    @classmethod
    def _check_app_id(cls, v: str, info: ValidationInfo) -> str:
        if _APP_ID.fullmatch(v):
            return v
        namespace = info.data.get("namespace")
        if namespace and len(v) > 200 and _APP_ID.fullmatch(v[:200]):
            raise ValueError(f"with STREAM_DETECTOR_NAMESPACE {namespace!r} as its prefix "
                             f"the app id is {len(v)} characters, over 200: shorten either")
        raise ValueError(f"{v[:60]!r} is not an app id (Kafka's consumer group): use 1 to 200 "
                         "letters, digits, '.', '_' and '-'")

    @field_validator("cache_dir", mode="before")
    @classmethod
    def _absolute_cache(cls, v: Any) -> Any:
        if isinstance(v, str | Path):
            if not str(v).strip():  # Path("") is the current folder: never meant
                raise ValueError("is empty; unset it for ~/.cache/stream-detector or give a "
                                 "folder")
            return Path(v).expanduser().absolute()
        return v

    @field_validator("input_topic", "output_topic", "dead_letter_topic")
    @classmethod
    def _kafka_topic(cls, v: str) -> str:
        problem = topic_name_problem(v) if v else None  # empty: refused where it is used
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _heartbeats_fit_the_session(self) -> Settings:
        if self.heartbeat_interval * 3 > self.session_timeout:  # Kafka's consumer guidance
            raise ValueError(
                f"STREAM_DETECTOR_HEARTBEAT_INTERVAL ({self.heartbeat_interval:g} s) must be "
                "at most a third of STREAM_DETECTOR_SESSION_TIMEOUT "
                f"({self.session_timeout:g} s), or the group drops the worker between "
                "heartbeats")
        return self

    @field_validator("kafka_url")
    @classmethod
    def _check_kafka_url(cls, v: str) -> str:
        try:
            kafka_bootstrap_servers(v)
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from None
        return v

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, v: str) -> str:
        scheme = urlsplit(v).scheme
        if scheme not in {"redis", "rediss", "unix"}:
            from stream_detector.connectivity import safe_url

            raise ValueError("Redis URL must start with redis://, rediss:// or unix://, got "
                             f"{safe_url(v)!r}")  # never its password (invalid_settings)
        parts = urlsplit(v)
        try:
            port = parts.port  # ValueError: not a number, or out of range
        except ValueError:
            port = 0
        db = parts.path.strip("/") if scheme != "unix" else "0"
        if (port == 0 or not (db == "" or (db.isascii() and db.isdigit()))
                or (parts.query and pool_refuses(v))):  # options: redis-py's own reading
            from stream_detector.connectivity import safe_url

            raise ValueError(f"Redis URL {safe_url(v)!r} needs a port from 1 to 65535 (or none), "
                             "a database number and options redis-py reads: "
                             "redis://HOST:PORT/DB[?OPTION=VALUE]")
        return v

    # --- derived client configurations -------------------------------------------------
    @property
    def bootstrap_servers(self) -> str:
        return kafka_bootstrap_servers(self.kafka_url)

    def confluent_config(self, **extra: Any) -> dict[str, Any]:
        """Configuration for confluent-kafka producers, consumers and admin clients."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.kafka_security_protocol,
        }
        if self.kafka_security_protocol.startswith("SASL"):
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism
            conf["sasl.username"] = self.kafka_sasl_username or ""
            pw = self.kafka_sasl_password
            conf["sasl.password"] = pw.get_secret_value() if pw else ""
        if self.kafka_security_protocol.endswith("SSL"):
            for key, path in (
                ("ssl.ca.location", self.kafka_ssl_cafile),
                ("ssl.certificate.location", self.kafka_ssl_certfile),
                ("ssl.key.location", self.kafka_ssl_keyfile),
            ):
                if path is not None:
                    conf[key] = str(path)
        conf.update(extra)
        return conf

    def faust_broker_credentials(self) -> Any:
        """Credentials object for ``faust.App(broker_credentials=...)``, or None for PLAINTEXT."""
        if self.kafka_security_protocol == "PLAINTEXT":
            return None
        import faust  # local: keep settings importable without faust

        context = None
        if self.kafka_security_protocol.endswith("SSL"):
            context = ssl.create_default_context(
                cafile=str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None
            )
            if self.kafka_ssl_certfile:
                context.load_cert_chain(
                    str(self.kafka_ssl_certfile),
                    str(self.kafka_ssl_keyfile) if self.kafka_ssl_keyfile else None,
                )
        if self.kafka_security_protocol.startswith("SASL"):
            pw = self.kafka_sasl_password
            return faust.SASLCredentials(
                username=self.kafka_sasl_username or "",
                password=pw.get_secret_value() if pw else "",
                mechanism=self.kafka_sasl_mechanism,
                ssl_context=context,
            )
        return faust.SSLCredentials(context)

    def redis_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``redis.Redis.from_url(settings.redis_url, **kwargs)``."""
        kwargs: dict[str, Any] = {}
        if self.redis_username:
            kwargs["username"] = self.redis_username
        if self.redis_password is not None:
            kwargs["password"] = self.redis_password.get_secret_value()
        # TLS options only for rediss:// (redis-py's plain connections reject them)
        if self.redis_ssl_ca_certs is not None and self.redis_url.startswith("rediss:"):
            kwargs["ssl_ca_certs"] = str(self.redis_ssl_ca_certs)
        return kwargs

    def redis_client(self, **extra: Any) -> Any:
        """A synchronous Redis client for these settings."""
        import redis

        return redis.Redis.from_url(self.redis_url, **self.redis_kwargs(), **extra)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment.

    Raises :class:`~stream_detector.exceptions.ConfigurationError` (one line naming the
    variables, never their values: some are secrets) when a variable holds an invalid value.
    """
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigurationError(invalid_settings(exc)) from None


URL_FLAGS: Final = {"kafka_url": "--kafka", "redis_url": "--redis"}
"""The flags that give the service URLs on every command that takes them."""


def settings_with(overrides: Mapping[str, Any],
                  flags: Mapping[str, str] = URL_FLAGS) -> Settings:
    """The environment's settings with command-line values on top (None: not given).

    Raises :class:`~stream_detector.exceptions.ConfigurationError` naming each invalid value
    by the flag that gave it (``flags``: field -> flag), else by its variable."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:  # the constructor, not model_validate: the environment still fills the other fields
        return Settings(**given)
    except ValidationError as exc:
        named = {field: flag for field, flag in flags.items() if field in given}
        raise ConfigurationError(invalid_settings(exc, named)) from None


def invalid_settings(exc: ValidationError, flags: Mapping[str, str] | None = None) -> str:
    """One line for every invalid setting of ``exc``: its variable (or ``flags[field]``, the
    command-line flag that gave it) and what is wrong, never its value (passwords and
    webhook URLs are settings too).

    >>> try:
    ...     Settings(batch_wait="soon")
    ... except ValidationError as exc:
    ...     print(invalid_settings(exc))
    STREAM_DETECTOR_BATCH_WAIT: input should be a valid number, unable to parse string as a number
    """
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(p) for p in error["loc"])
        what = str(error["msg"])
        if error["type"] == "value_error":  # a validator's own words, as it wrote them
            what = what.removeprefix("Value error, ")
        else:  # pydantic's: "Input should be ..."
            what = what[:1].lower() + what[1:]
        name = (flags or {}).get(field, f"STREAM_DETECTOR_{field.upper()}")
        parts.append(f"{name}: {what}" if field else what)
    return "; ".join(parts)


def markdown_table() -> str:
    """The configuration reference as a Markdown table (the README's is generated from this)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        if info.default_factory is not None:
            default = "`~/.cache/stream-detector`"
        elif info.default is None:
            default = "—"
        else:
            default = f"`{info.default}`"
        rows.append(f"| `STREAM_DETECTOR_{name.upper()}` | {default} | {info.description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
