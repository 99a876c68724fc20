"""Addresses of the services as settings give them: Kafka broker lists and the Redis URL
options redis-py would refuse, checked without any network."""

from __future__ import annotations

from typing import NoReturn

from stream_detector.exceptions import ConfigurationError

__all__ = ["broker_addresses", "kafka_bootstrap_servers", "pool_refuses"]


def kafka_bootstrap_servers(url: str) -> str:
    """Turn ``kafka://h1:9092,h2:9092`` (or a bare ``h:p`` list) into ``h1:9092,h2:9092``.

    Brokers are separated by ``,`` or ``;``; a broker without a port gets the client's
    default (9092); IPv6 addresses go in brackets (``[::1]:9092``).

    Raises:
        ConfigurationError: no broker named, a scheme other than ``kafka://``, a port that
            is not a number from 1 to 65535, a path or blank inside a broker's address, or
            credentials in the URL (``user:password@``: those belong in the SASL settings,
            and the message never repeats them).

    >>> kafka_bootstrap_servers("kafka://127.0.0.1:9092")
    '127.0.0.1:9092'
    >>> kafka_bootstrap_servers("kafka://a:1;b:2")
    'a:1,b:2'
    """
    if "@" in url:  # before any split: a password may hold , ; or ://
        _refuse_credentials()
    scheme, sep, rest = url.partition("://")
    if not sep:
        rest = url
    elif scheme.lower() != "kafka":
        raise ConfigurationError(f"Kafka URL must start with kafka://, not {scheme}://; "
                                 "use kafka://HOST:PORT[,HOST:PORT]")
    hosts = [h.strip().rstrip("/") for h in rest.replace(";", ",").split(",") if h.strip()]
    if not hosts:
        raise ConfigurationError(f"Kafka URL {url!r} names no broker; use kafka://HOST:PORT")
    for host in hosts:
        _check_broker(host)
    return ",".join(hosts)


def _refuse_credentials() -> NoReturn:
    raise ConfigurationError(
        "Kafka URL carries credentials (user:password@); set them in "
        "STREAM_DETECTOR_KAFKA_SASL_USERNAME and STREAM_DETECTOR_KAFKA_SASL_PASSWORD "
        "with STREAM_DETECTOR_KAFKA_SECURITY_PROTOCOL=SASL_SSL instead")


def broker_addresses(servers: str) -> list[tuple[str, int]]:
    """(host, port) of each broker of ``servers`` (:func:`kafka_bootstrap_servers`' form):
    IPv6 hosts without their brackets, a broker without a port on Kafka's default, 9092.

    Raises:
        ConfigurationError: a broker is not ``HOST[:PORT]``, as in :func:`kafka_bootstrap_servers`.

    >>> broker_addresses("b1:9093,[::1]:9092,b2,[::1]")
    [('b1', 9093), ('::1', 9092), ('b2', 9092), ('::1', 9092)]
    """
    return [_check_broker(server) for server in servers.split(",")]


def _check_broker(host: str) -> tuple[str, int]:
    if host.startswith("["):  # [IPv6]:port
        name, bracket, after = host[1:].partition("]")
        port = after.removeprefix(":")
        bad = not (bracket and name) or after[:1] not in ("", ":") or after == ":"
    else:
        name, colon, port = host.rpartition(":") if ":" in host else (host, "", "")
        bad = not name or ":" in name or bool(colon and not port)
    bad = bad or any(c in name for c in "/ \t?#[]") or (
        port != "" and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536))
    if bad:
        raise ConfigurationError(f"Kafka broker {host!r} is not HOST:PORT (port 1-65535); "
                                 "use kafka://HOST:PORT[,HOST:PORT]")
    return name, int(port) if port else 9092


def pool_refuses(url: str) -> bool:
    """Whether redis-py refuses the URL's options (``?db=x``, ``?socket_timeout=abc``, an
    unknown ``?ssl_cert_reqs=``) when it builds a connection (no network: nothing connects).
    Asked only of URLs with options: importing redis costs every command ~0.1 s at start."""
    import redis

    try:
        pool = redis.ConnectionPool.from_url(url)
        pool.make_connection()
    except (ValueError, TypeError, redis.RedisError):
        return True
    pool.disconnect()
    return False
