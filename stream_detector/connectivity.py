"""First contact with Kafka and Redis: fail in seconds with one line that names the problem.

A misconfigured client otherwise retries quietly until some distant timeout: librdkafka
reports a rejected password or an untrusted certificate only through callbacks, and a
plaintext client on a TLS port sees nothing but a closed connection. :func:`check_kafka` makes
one metadata request with the settings' client configuration, listens to librdkafka's error
callback and log, and turns the first telling report into a :class:`ConnectionFailed` whose
message says what is wrong and which setting to change. :func:`check_redis` and
:func:`describe_redis_error` do the same for Redis. Messages name hosts, users, mechanisms and
file paths, never a password (URLs are shown with their password masked).

    settings --confluent_config()--> AdminClient --metadata request--> broker
         error_cb / log lines --diagnose_kafka()--> None (keep waiting) | one-line reason
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit, urlunsplit

from stream_detector.exceptions import ConnectionFailed

if TYPE_CHECKING:  # kept light: the CLI runs these checks before any heavy import
    from stream_detector.settings import Settings

__all__ = ["check_kafka", "check_redis", "describe_redis_error", "diagnose_kafka",
           "redis_refusal", "safe_url"]

_ENV = "STREAM_DETECTOR_"
# librdkafka's log lines reach the check's handler here, and nowhere else
_LIBRDKAFKA = logging.getLogger("stream_detector.connectivity.librdkafka")
_LIBRDKAFKA.propagate = False
_LIBRDKAFKA.addHandler(logging.NullHandler())  # between checks: silence, not logging's last resort
# librdkafka's own hint when a broker drops a connection during the first request
_PROTOCOL_HINTS = ("incorrect security.protocol", "connecting to a SSL listener",
                   "Disconnected while requesting ApiVersion", "Invalid response size")


def safe_url(url: str) -> str:
    """The URL without its password, for messages: the one in its userinfo and a
    ``password`` query parameter (redis-py reads both). Text before an ``@`` that does not
    parse as a URL's ``user:password`` (no scheme, a ``/`` in the password) is hidden
    whole, scheme aside; an ``@`` in the path of a URL with no host (``unix:///...``) is
    the path's.

    >>> safe_url("rediss://app:s3cret@db:6380/0")
    'rediss://app:***@db:6380/0'
    >>> safe_url("app:s3cret@db:6379"), safe_url("redis://app:s3/cret@db")
    ('***@db:6379', 'redis://***@db')
    >>> safe_url("unix:///run/redis@a.sock?db=0&password=s3cret")
    'unix:///run/redis@a.sock?db=0&password=***'
    """
    parts = urlsplit(url)
    if "password=" in parts.query:
        query = "&".join(f"{k}=***" if k == "password" else f"{k}={v}"
                         for k, v in parse_qsl(parts.query, keep_blank_values=True))
        url = url.replace(f"?{parts.query}", f"?{query}", 1)  # urlunsplit drops unix:'s //
        parts = urlsplit(url)
    if parts.password is not None and f":{parts.password}@" in parts.netloc:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    if "@" not in url or (parts.scheme and "@" not in parts.netloc and url.startswith(
            f"{parts.scheme}:///")):
        return url
    head, _, host = url.rpartition("@")
    scheme, sep, _ = head.partition("://")
    return f"{scheme}{sep}***@{host}" if sep else f"***@{host}"


class _Reports(logging.Handler):
    """librdkafka's log lines and error callbacks, as text, in arrival order."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def error(self, err: Any) -> None:
        self.lines.append(f"{err.name()}: {err.str()}")


def diagnose_kafka(reports: Sequence[str], settings: Settings) -> str | None:
    """The problem a sequence of librdkafka reports shows, as one line; None while unclear.

    >>> from stream_detector.settings import Settings
    >>> s = Settings(kafka_security_protocol="PLAINTEXT")
    >>> diagnose_kafka(["Disconnected while requesting ApiVersion: might be caused by "
    ...                 "incorrect security.protocol configuration"], s)[:52]
    'Kafka at 127.0.0.1:9092 closed the connection before'
    """
    where = f"Kafka at {settings.bootstrap_servers}"
    protocol = settings.kafka_security_protocol
    for line in reports:
        if "Unsupported SASL mechanism" in line:
            offered = line.split("supported mechanisms:", 1)[-1].split("(")[0].strip()
            return (f"{where} does not offer SASL mechanism {settings.kafka_sasl_mechanism} "
                    f"(it offers {offered or 'others'}); set {_ENV}KAFKA_SASL_MECHANISM")
        if line.startswith("_AUTHENTICATION"):
            return (f"{where} rejected the SASL {settings.kafka_sasl_mechanism} credentials of "
                    f"user {settings.kafka_sasl_username or '(none)'!r}; check "
                    f"{_ENV}KAFKA_SASL_USERNAME and {_ENV}KAFKA_SASL_PASSWORD")
        if "certificate verify failed" in line:
            ca = settings.kafka_ssl_cafile or "the system's CA bundle"
            return (f"{where} presented a TLS certificate that {ca} does not trust; set "
                    f"{_ENV}KAFKA_SSL_CAFILE to the CA that issued the broker's certificate")
        if line.startswith("_SSL") or "SSL handshake failed" in line:
            return (f"{where} failed the TLS handshake ({_tail(line)}); is the listener TLS? "
                    f"check {_ENV}KAFKA_SECURITY_PROTOCOL (now {protocol})")
        if "SSL connection closed by peer" in line and "state UP" in line:
            return (f"{where} closed the connection after the TLS handshake: the listener "
                    f"probably requires SASL; set {_ENV}KAFKA_SECURITY_PROTOCOL=SASL_SSL and "
                    f"the {_ENV}KAFKA_SASL_* settings")
        if any(hint in line for hint in _PROTOCOL_HINTS):
            return (f"{where} closed the connection before answering: the listener expects "
                    f"another protocol than {protocol} (TLS or SASL?); set "
                    f"{_ENV}KAFKA_SECURITY_PROTOCOL to the listener's, e.g. SASL_SSL")
    return None


def _tail(line: str) -> str:
    """The reason part of a librdkafka report, without the broker prefix or timing."""
    reason = line.split(": ", 2)[-1]
    return reason.split(" (after ", 1)[0][:160]


def _speaks_tls(servers: str, timeout: float = 2.0) -> bool:
    """Whether the first bootstrap server completes a TLS handshake (nothing is sent after)."""
    from stream_detector.settings import broker_addresses

    return _tls_at(*broker_addresses(servers)[0], timeout)


def _tls_at(host: str, port: int, timeout: float = 2.0) -> bool:
    """Whether ``host:port`` completes a TLS handshake (nothing is sent after)."""
    probe = ssl.create_default_context()
    probe.check_hostname = False
    probe.verify_mode = ssl.CERT_NONE  # only asks "is this TLS?"; no data goes over it
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock, \
                probe.wrap_socket(sock, server_hostname=host):
            return True
    except (OSError, ValueError):
        return False


def _plaintext_on_tls(settings: Settings, reports: Sequence[str]) -> str | None:
    """A plaintext client whose broker hangs up: one TLS probe tells why."""
    if settings.kafka_security_protocol.endswith("SSL"):
        return None
    if not any(line.startswith("_ALL_BROKERS_DOWN") for line in reports):
        return None
    if not _speaks_tls(settings.bootstrap_servers):
        return None
    return (f"Kafka at {settings.bootstrap_servers} expects TLS, but "
            f"{_ENV}KAFKA_SECURITY_PROTOCOL is {settings.kafka_security_protocol}; set it to "
            "the listener's protocol (SSL or SASL_SSL) and the CA file")


def _check_files(settings: Settings) -> None:
    files = {"KAFKA_SSL_CAFILE": settings.kafka_ssl_cafile,
             "KAFKA_SSL_CERTFILE": settings.kafka_ssl_certfile,
             "KAFKA_SSL_KEYFILE": settings.kafka_ssl_keyfile,
             "REDIS_SSL_CA_CERTS": settings.redis_ssl_ca_certs}
    for name, path in files.items():
        if path is not None and not Path(path).is_file():
            raise ConnectionFailed(f"{_ENV}{name}={path} is not a readable file")


def check_kafka(settings: Settings, timeout: float = 15.0) -> int:
    """Ask the brokers for metadata with the settings' client configuration.

    Returns
    -------
    int
        The number of brokers in the cluster.

    Raises
    ------
    ConnectionFailed
        As soon as librdkafka reports rejected credentials, an untrusted certificate or a
        protocol mismatch (usually well under a second), or after ``timeout`` seconds
        without an answer.
    """
    _check_files(settings)
    reports = _Reports()
    _LIBRDKAFKA.addHandler(reports)
    try:
        admin = _admin_client(settings, reports)
        return _wait_for_brokers(admin, settings, reports, timeout)
    finally:
        _LIBRDKAFKA.removeHandler(reports)


def _admin_client(settings: Settings, reports: _Reports) -> Any:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    conf = settings.confluent_config(logger=_LIBRDKAFKA, error_cb=reports.error)
    try:
        return AdminClient(conf)
    except KafkaException as exc:  # a rejected configuration, e.g. an unreadable key file
        reason = exc.args[0].str()
        for option, setting in _FILE_OPTIONS.items():
            if f"{option} failed" in reason:  # which file: by the setting that names it
                reason = (f"{_ENV}{setting} ({getattr(settings, setting.lower())}) is not a "
                          f"usable PEM file: {reason.rpartition(': ')[2]}")
                break
        raise ConnectionFailed(f"Kafka client configuration rejected: {reason}") from None


_FILE_OPTIONS = {"ssl.certificate.location": "KAFKA_SSL_CERTFILE",
                 "ssl.key.location": "KAFKA_SSL_KEYFILE", "ssl.ca.location": "KAFKA_SSL_CAFILE"}


def _wait_for_brokers(admin: Any, settings: Settings, reports: _Reports, timeout: float) -> int:
    """Metadata requests until one names brokers, or until the reports tell what is wrong."""
    from confluent_kafka import KafkaException

    deadline = time.monotonic() + timeout
    probed = False
    while True:
        left = deadline - time.monotonic()
        try:
            brokers = len(admin.list_topics(timeout=max(min(left, 0.5), 0.05)).brokers)
        except KafkaException:
            brokers = 0
        if brokers:
            return brokers
        admin.poll(0.05)  # serves error_cb and the log queue
        problem = diagnose_kafka(reports.lines, settings)
        if problem is None and not probed and reports.lines:
            problem, probed = _plaintext_on_tls(settings, reports.lines), True
        if problem is not None:
            raise ConnectionFailed(problem)
        if time.monotonic() >= deadline:
            raise ConnectionFailed(
                f"cannot reach Kafka at {settings.bootstrap_servers} (no answer within "
                f"{timeout:g} s); start it with `stream-detector services start` or set "
                f"{_ENV}KAFKA_URL (--kafka kafka://HOST:PORT)", outage=True)


def describe_redis_error(settings: Settings, exc: BaseException) -> str:
    """One line for a Redis client error: what went wrong and which setting to change."""
    return _redis_diagnosis(settings, exc)[0]


def _redis_diagnosis(settings: Settings, exc: BaseException) -> tuple[str, bool]:
    """(message, whether it looks like an outage rather than a wrong setting)."""
    message = _redis_setting_problem(settings, exc)
    if message is not None:
        return message, False
    where = f"Redis at {safe_url(settings.redis_url)}"
    return (f"cannot reach {where} ({str(exc).rstrip('.')}); start it with `stream-detector "
            f"services start` or set {_ENV}REDIS_URL (--redis redis://HOST:PORT/DB)"), True


def _redis_setting_problem(settings: Settings, exc: BaseException) -> str | None:  # noqa: C901
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import ResponseError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    where = f"Redis at {safe_url(settings.redis_url)}"
    text = str(exc)
    parts = urlsplit(settings.redis_url)
    tls = parts.scheme == "rediss"
    ca = settings.redis_ssl_ca_certs
    if tls and ca is not None and "No such file" in text and not ca.is_file():
        return (f"{_ENV}REDIS_SSL_CA_CERTS names no file ({ca}); give the CA bundle that "
                "signed the Redis server's certificate")
    if (tls and isinstance(exc, RedisConnectionError | RedisTimeoutError)
            and _speaks_resp(parts)):
        return (f"{where} serves plain Redis, not TLS, on that port; use a redis:// URL in "
                f"{_ENV}REDIS_URL, or the server's TLS port")
    refusal = redis_refusal(settings, exc)
    if refusal is not None:
        return refusal
    if "CERTIFICATE_VERIFY_FAILED" in text:
        trusted = settings.redis_ssl_ca_certs or "the system's CA bundle"
        return (f"{where} presented a TLS certificate that {trusted} does not trust; set "
                f"{_ENV}REDIS_SSL_CA_CERTS to the CA that issued it")
    if tls and ("WRONG_VERSION_NUMBER" in text or "wrong version number" in text):
        return (f"{where} does not speak TLS on that port; use a redis:// URL in "
                f"{_ENV}REDIS_URL, or its TLS port")
    if not tls and ("reset by peer" in text or "Connection closed by server" in text):
        if _tls_at(parts.hostname or "127.0.0.1", parts.port or 6379):
            return (f"{where} closed the connection on the first command: it serves TLS; "
                    f"use a rediss:// URL in {_ENV}REDIS_URL")
        return (f"{where} closed the connection on the first command: what listens on "
                "that port is not Redis (another service, such as a Kafka broker?); check "
                f"the port in {_ENV}REDIS_URL")
    if isinstance(exc, ResponseError):
        return f"{where} refused a command ({text.rstrip('.')})"
    return None


def redis_refusal(settings: Settings, exc: BaseException) -> str | None:
    """One line when Redis answered but refused these credentials (authentication, ACL
    permissions), naming the settings to change; None for any other error. Sends nothing
    (safe on an event loop): the worker's threshold cache reports these as refusals, not as
    Redis being unreachable."""
    from redis.exceptions import AuthenticationError, NoPermissionError

    where = f"Redis at {safe_url(settings.redis_url)}"
    text = str(exc)
    if isinstance(exc, AuthenticationError) or "WRONGPASS" in text or "NOAUTH" in text or (
            "HELLO must be called" in text):
        if "HELLO must be called" in text or "NOAUTH" in text:
            return (f"{where} requires authentication; set {_ENV}REDIS_USERNAME and "
                    f"{_ENV}REDIS_PASSWORD")
        return (f"{where} rejected user {_redis_user(settings)!r} (wrong password or "
                f"disabled user); check {_ENV}REDIS_USERNAME and {_ENV}REDIS_PASSWORD")
    if isinstance(exc, NoPermissionError) or "NOPERM" in text:
        return (f"{where}: user {_redis_user(settings)!r} lacks a permission "
                f"({text.rstrip('.')}); grant it the sd:* keys and channels, e.g. ACL SETUSER "
                "NAME ~sd:* &sd:* +@all -@dangerous")
    return None


def _redis_user(settings: Settings) -> str:
    """The user redis-py sends: the URL's (its userinfo, then ?username=) override the
    setting."""
    parts = urlsplit(settings.redis_url)
    return (unquote(parts.username or "") or dict(parse_qsl(parts.query)).get("username")
            or settings.redis_username or "default")


def _speaks_resp(parts: SplitResult, timeout: float = 1.0) -> bool:
    """Whether the Redis URL's server answers a plaintext PING (a RESP reply, ``+``/``-``):
    asked only after a TLS connection to it failed."""
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379),
                                      timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16)[:1] in (b"+", b"-")
    except (OSError, ValueError):
        return False


def check_redis(settings: Settings, timeout: float = 5.0) -> None:
    """PING Redis with the settings' client options.

    Raises
    ------
    ConnectionFailed
        The server cannot be reached, or refuses these credentials or this TLS set-up; the
        message comes from :func:`describe_redis_error`.
    """
    from redis.exceptions import RedisError

    _check_files(settings)
    client = settings.redis_client(socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    except (RedisError, OSError) as exc:
        message, outage = _redis_diagnosis(settings, exc)
        raise ConnectionFailed(message, outage=outage) from None
    finally:
        client.close()
