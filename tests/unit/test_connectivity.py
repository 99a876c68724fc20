"""What a refused connection is called: librdkafka's reports and redis-py's errors, as they
came from the real broker and redis-server of tests/integration/test_secure_refusals.py,
turned into one line that names the problem and the setting (no broker or server: a
loopback socket at most)."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.exceptions import AuthenticationError, ConnectionError, NoPermissionError
from redis.exceptions import TimeoutError as RedisTimeout

from stream_detector.connectivity import describe_redis_error, diagnose_kafka, safe_url
from stream_detector.settings import Settings

SECURE = Settings(kafka_url="kafka://b1:9093,b2:9093", kafka_security_protocol="SASL_SSL",
                  kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username="svc",
                  kafka_sasl_password="hunter2",  # noqa: S106 - a test value
                  kafka_ssl_cafile="/etc/ca.pem")
AUTH = ("_AUTHENTICATION: sasl_ssl://b1:9093/bootstrap: SASL authentication error: "
        "Authentication failed during authentication due to invalid credentials with SASL "
        "mechanism SCRAM-SHA-512 (after 337ms in state AUTH_REQ)")
UNTRUSTED = ("_SSL: sasl_ssl://b1:9093/bootstrap: SSL handshake failed: error:0A000086:SSL "
             "routines::certificate verify failed: broker certificate could not be verified, "
             "verify that ssl.ca.location is correctly configured (after 6ms in state "
             "SSL_HANDSHAKE)")
MECHANISM = ("_AUTHENTICATION: sasl_ssl://b1:9093/bootstrap: SASL SCRAM-SHA-512 mechanism "
             "handshake failed: Broker: Unsupported SASL mechanism: broker's supported "
             "mechanisms: PLAIN (after 304ms in state AUTH_HANDSHAKE)")
NO_SASL = ("FAIL [rdkafka#producer-3] [thrd:ssl://b1:9093/bootstrap]: ssl://b1:9093/bootstrap: "
           "Disconnected: SSL connection closed by peer (after 308ms in state UP)")


@pytest.mark.parametrize(("reports", "expected"), [
    ([AUTH], "Kafka at b1:9093,b2:9093 rejected the SASL SCRAM-SHA-512 credentials of user "
             "'svc'; check STREAM_DETECTOR_KAFKA_SASL_USERNAME and "
             "STREAM_DETECTOR_KAFKA_SASL_PASSWORD"),
    ([UNTRUSTED], "presented a TLS certificate that /etc/ca.pem does not trust; set "
                  "STREAM_DETECTOR_KAFKA_SSL_CAFILE"),
    ([MECHANISM], "does not offer SASL mechanism SCRAM-SHA-512 (it offers PLAIN)"),
    ([NO_SASL], "the listener probably requires SASL"),
    (["_ALL_BROKERS_DOWN: 1/1 brokers are down"], None),  # not telling yet: keep waiting
    ([], None),
])
def test_librdkafka_reports_become_one_line(reports: list[str], expected: str | None) -> None:
    said = diagnose_kafka(reports, SECURE)
    if expected is None:
        assert said is None
    else:
        assert said is not None and expected in said
        assert "hunter2" not in said and "\n" not in said


def test_the_first_telling_report_wins() -> None:
    said = diagnose_kafka(["_ALL_BROKERS_DOWN: 1/1 brokers are down", UNTRUSTED, AUTH], SECURE)
    assert said is not None and "does not trust" in said


REDIS = Settings(redis_url="rediss://app:s3cret@db:6380/0", redis_username="app",
                 redis_password="s3cret",  # noqa: S106 - a test value
                 redis_ssl_ca_certs="/etc/ca.pem")
PLAIN_REDIS = Settings(redis_url="redis://db:6380/0")


@pytest.mark.parametrize(("settings", "error", "expected"), [
    (REDIS, AuthenticationError("invalid username-password pair or user is disabled."),
     "rejected user 'app' (wrong password or disabled user)"),
    (REDIS, AuthenticationError("HELLO must be called with the client already authenticated"),
     "requires authentication; set STREAM_DETECTOR_REDIS_USERNAME"),
    (REDIS, ConnectionError("Error 1 connecting to db:6380. [SSL: CERTIFICATE_VERIFY_FAILED] "
                            "certificate verify failed: self-signed certificate in chain"),
     "presented a TLS certificate that /etc/ca.pem does not trust"),
    (REDIS, ConnectionError("Error 1 connecting to db:6380. [SSL: WRONG_VERSION_NUMBER] wrong "
                            "version number"), "does not speak TLS on that port"),
    # db:6380 is no TLS server either (the probe cannot reach it): not Redis at all
    (PLAIN_REDIS, ConnectionError("Error while reading from db:6380 : (104, 'Connection reset "
                                  "by peer')"), "is not Redis (another service"),
    (REDIS, NoPermissionError("this user has no permissions to access one of the keys"),
     "lacks a permission"),
    (PLAIN_REDIS, ConnectionError("Error 111 connecting to db:6380. Connection refused."),
     "cannot reach Redis at redis://db:6380/0 (Error 111"),
    # the user named in the URL, not 'default'; a CA file that is not there, by its setting
    (Settings(redis_url="redis://bob:s3cret@db:6380/0"), AuthenticationError("WRONGPASS"),
     "rejected user 'bob'"),
    (Settings(redis_url="redis://alice:s3cret@db:6380/0", redis_username="dave"),
     AuthenticationError("WRONGPASS"), "rejected user 'alice'"),  # redis-py sends the URL's
    (Settings(redis_url="redis://db:6380/0?username=carol&password=s3cret"),
     AuthenticationError("WRONGPASS"), "rejected user 'carol'"),
    (REDIS, ConnectionError("Error 2 connecting to db:6380. No such file or directory."),
     "STREAM_DETECTOR_REDIS_SSL_CA_CERTS names no file (/etc/ca.pem)"),
])
def test_redis_errors_become_one_line(settings: Settings, error: Exception, expected: str) -> None:
    said = describe_redis_error(settings, error)
    assert expected in said and "s3cret" not in said and "\n" not in said


def test_tls_to_a_plain_redis_server_is_named_as_such() -> None:
    """A rediss:// URL on a plain server's port timed out as 'cannot reach ... start it'."""
    import socket
    import threading

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        def answer() -> None:  # one plaintext PING, as redis-server answers it
            conn, _ = server.accept()
            with conn:
                conn.recv(64)
                conn.sendall(b"+PONG\r\n")

        threading.Thread(target=answer, daemon=True).start()
        settings = Settings(redis_url=f"rediss://127.0.0.1:{port}/0")
        said = describe_redis_error(settings, RedisTimeout("Timeout connecting to server"))
    assert said == (f"Redis at rediss://127.0.0.1:{port}/0 serves plain Redis, not TLS, on that "
                    "port; use a redis:// URL in STREAM_DETECTOR_REDIS_URL, or the server's TLS "
                    "port")


def test_urls_lose_their_password() -> None:
    assert safe_url("rediss://app:s3cret@db:6380/0") == "rediss://app:***@db:6380/0"
    assert safe_url("redis://db:6379/0") == "redis://db:6379/0"
    assert safe_url("app:s3cret@db:6379") == "***@db:6379"  # no scheme: not a URL's userinfo
    assert safe_url("rediss://app:s3/cret@db:6380/0") == "rediss://***@db:6380/0"
    assert safe_url("redis://a@b:c@db") == "redis://a@b:***@db"
    assert safe_url("redis://db:6379/0?password=s3cret") == "redis://db:6379/0?password=***"
    assert safe_url("rediss://u:s3cret@db/0?password=s3cret&db=1") == (
        "rediss://u:***@db/0?password=***&db=1")
    assert safe_url("unix:///run/redis@main.sock") == "unix:///run/redis@main.sock"  # a path
    assert safe_url("unix://app@/run/redis.sock") == "unix://***@/run/redis.sock"


@pytest.mark.parametrize(("files", "setting"), [
    ({"kafka_ssl_certfile": "bad.pem", "kafka_ssl_keyfile": "bad.pem"}, "KAFKA_SSL_CERTFILE"),
    ({"kafka_ssl_cafile": "bad.pem"}, "KAFKA_SSL_CAFILE"),
])
def test_a_file_librdkafka_cannot_read_is_named_by_its_setting(
    tmp_path: Path, files: dict[str, str], setting: str,
) -> None:
    """Before: 'Failed to create admin client: ssl.certificate.location failed: ...PEM lib'."""
    from stream_detector.connectivity import check_kafka
    from stream_detector.exceptions import ConnectionFailed

    (tmp_path / "bad.pem").write_text("not a certificate\n")
    settings = Settings(kafka_url="kafka://127.0.0.1:1", kafka_security_protocol="SSL",
                        **{k: str(tmp_path / v) for k, v in files.items()})
    with pytest.raises(ConnectionFailed, match=rf"STREAM_DETECTOR_{setting} \({tmp_path}/bad.pem\) "
                                               "is not a usable PEM file"):
        check_kafka(settings, timeout=2)


def test_a_plain_port_that_hangs_up_on_redis_is_not_called_tls() -> None:
    """--redis at the Kafka broker's port: it closes the connection on PING, and it is
    no TLS listener either (the unencrypted TLS case: tests/integration/test_secure_refusals)."""
    import socket
    import threading

    import redis as redis_lib

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        def hang_up() -> None:  # as a Kafka broker does on bytes that are no Kafka request
            for _ in range(3):  # the client's command, then the TLS probe (and a spare)
                conn, _ = server.accept()
                with conn:
                    conn.recv(64)

        threading.Thread(target=hang_up, daemon=True).start()
        settings = Settings(redis_url=f"redis://127.0.0.1:{port}/0")
        try:
            redis_lib.Redis.from_url(settings.redis_url, socket_timeout=2).ping()
        except redis_lib.RedisError as exc:
            said = describe_redis_error(settings, exc)
        else:
            raise AssertionError("a server that hangs up answered PING")
    assert "closed the connection on the first command: what listens on that port is not " \
           "Redis" in said and "TLS" not in said
