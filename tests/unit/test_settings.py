from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from stream_detector.exceptions import ConfigurationError
from stream_detector.settings import Settings, invalid_settings, kafka_bootstrap_servers


def test_reads_urls_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_DETECTOR_KAFKA_URL", "kafka://10.0.0.1:9093,10.0.0.2:9093")
    monkeypatch.setenv("STREAM_DETECTOR_REDIS_URL", "rediss://cache:6380/2")
    s = Settings()
    assert s.bootstrap_servers == "10.0.0.1:9093,10.0.0.2:9093"
    assert s.redis_url == "rediss://cache:6380/2"


def test_rejects_bad_urls() -> None:
    with pytest.raises(ValidationError, match="redis://"):
        Settings(redis_url="http://x:1")
    with pytest.raises(ValidationError):
        Settings(kafka_url="kafka://")
    with pytest.raises(ConfigurationError):
        kafka_bootstrap_servers("kafka://,")


@pytest.mark.parametrize("url", [
    "http://app:hunter2@cache:6379/0", "app:hunter2@cache:6379", "ftp://app:hun/ter2@cache",
    "app:hunter2@", "kafka://app:hunter2@", "redis//app:hunter2@cache"])
def test_a_refused_redis_url_is_named_without_its_password(url: str) -> None:
    from stream_detector.cli.common import settings_for

    with pytest.raises(ConfigurationError) as refused:  # what the CLI prints
        settings_for(redis_url=url)
    said = str(refused.value)
    assert "must start with redis://" in said and "***@" in said
    assert "hunter2" not in said and "hun/ter2" not in said


@pytest.mark.parametrize(("url", "servers"), [
    ("kafka://a:1", "a:1"), ("a:1,b", "a:1,b"), ("KAFKA://h:9092/", "h:9092"),
    ("kafka://[::1]:9092; [fe80::2]", "[::1]:9092,[fe80::2]"),
])
def test_kafka_urls_name_brokers_with_optional_ports(url: str, servers: str) -> None:
    assert Settings(kafka_url=url).bootstrap_servers == servers


@pytest.mark.parametrize(("url", "says"), [
    ("http://h:9092", "must start with kafka://, not http://"),
    ("redis://cache:6379/0", "must start with kafka://, not redis://"),
    ("kafka://h:abc", "'h:abc' is not HOST:PORT"), ("kafka://h:0", "'h:0'"),
    ("kafka://h:65536", "'h:65536'"), ("kafka://h:", "'h:'"),
    ("kafka://a:1,h:9092/topic", "'h:9092/topic'"), ("kafka://h q:1", "'h q:1'"),
    ("::1:9092", "'::1:9092'"), ("[::1:9092", "'[::1:9092'"), ("[::1]9092", "'[::1]9092'"),
    ("kafka://h:\u00b2", "is not HOST:PORT"), ("kafka://h:\uff19\uff10", "is not HOST:PORT"),
])
def test_a_malformed_kafka_url_is_refused_naming_the_fault(url: str, says: str) -> None:
    from stream_detector.cli.common import settings_for

    with pytest.raises(ConfigurationError, match="^--kafka: ") as refused:  # the flag's value
        settings_for(kafka_url=url)
    assert says in str(refused.value)
    with pytest.raises(ValidationError) as invalid:  # from the environment: the variable
        Settings(kafka_url=url)
    assert invalid_settings(invalid.value).startswith("STREAM_DETECTOR_KAFKA_URL: ")


@pytest.mark.parametrize("url", ["kafka://app:hunter2@b1:9093", "b0:1,app:hunter2@b1:9093",
                                 "kafka://b0:1;hunter2@b1", "kafka://app:hunter2,b1@b2:9092",
                                 "kafka://app:hunter2;b1@b2:9092", "app:hunter2://b1@b2"])
def test_credentials_in_the_kafka_url_are_refused_without_repeating_them(url: str) -> None:
    from stream_detector.cli.common import settings_for

    with pytest.raises(ConfigurationError) as refused:  # what the CLI prints
        settings_for(kafka_url=url)
    said = str(refused.value)
    assert "KAFKA_SASL_PASSWORD" in said and "hunter2" not in said and "b1" not in said


def test_sasl_ssl_options_reach_confluent_config_and_secret_stays_hidden(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STREAM_DETECTOR_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("STREAM_DETECTOR_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("STREAM_DETECTOR_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("STREAM_DETECTOR_KAFKA_SASL_PASSWORD", "hunter2")
    monkeypatch.setenv("STREAM_DETECTOR_KAFKA_SSL_CAFILE", "/etc/ca.pem")
    s = Settings()
    conf = s.confluent_config(**{"group.id": "g"})
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["sasl.username"] == "svc"
    assert conf["sasl.password"] == "hunter2"
    assert conf["ssl.ca.location"] == "/etc/ca.pem"
    assert conf["group.id"] == "g"
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.model_dump())


def test_plaintext_has_no_credentials() -> None:
    s = Settings(kafka_url="kafka://127.0.0.1:1")
    assert s.faust_broker_credentials() is None
    assert "sasl.username" not in s.confluent_config()


def test_redis_auth_and_tls_pass_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_DETECTOR_REDIS_USERNAME", "worker")
    monkeypatch.setenv("STREAM_DETECTOR_REDIS_PASSWORD", "s3cret")
    monkeypatch.setenv("STREAM_DETECTOR_REDIS_SSL_CA_CERTS", "/etc/redis-ca.pem")
    monkeypatch.setenv("STREAM_DETECTOR_REDIS_URL", "rediss://db:6380/0")
    kwargs = Settings().redis_kwargs()
    assert kwargs == {
        "username": "worker", "password": "s3cret", "ssl_ca_certs": "/etc/redis-ca.pem"
    }


def test_tls_options_only_go_to_tls_redis_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    # redis-py's plain connection class rejects ssl_* keywords with a TypeError
    monkeypatch.setenv("STREAM_DETECTOR_REDIS_SSL_CA_CERTS", "/etc/redis-ca.pem")
    monkeypatch.setenv("STREAM_DETECTOR_REDIS_URL", "redis://db:6379/0")
    assert "ssl_ca_certs" not in Settings().redis_kwargs()
    client = Settings().redis_client()
    client.connection_pool.make_connection()  # builds the connection object, no I/O
    client.close()


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(ValidationError):
        s.kafka_url = "kafka://other:1"  # type: ignore[misc]
    assert isinstance(s.cache_dir, Path)


def test_a_namespace_prefixes_topics_app_id_and_redis_keys_once() -> None:
    from stream_detector.core.thresholds import change_channel, hash_name
    from stream_detector.settings import Settings

    plain = Settings()
    assert (plain.input_topic, plain.app_id, plain.redis_prefix) == (
        "records", "stream-detector", "sd:")
    team = Settings(namespace="team-a", output_topic="team-a.anomalies")
    assert (team.input_topic, team.output_topic, team.dead_letter_topic, team.app_id) == (
        "team-a.records", "team-a.anomalies", "team-a.records-dead-letter",
        "team-a.stream-detector")
    assert team.redis_prefix == "sd:team-a:"
    assert hash_name("nab", "3", team.namespace) == "sd:team-a:threshold:nab:3"
    assert change_channel(team.namespace) == "sd:team-a:thresholds:changed"


def test_an_invalid_variable_is_named_with_what_is_wrong_never_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stream_detector.settings import get_settings

    monkeypatch.setenv("STREAM_DETECTOR_BATCH_WAIT", "abc123xyz")
    monkeypatch.setenv("STREAM_DETECTOR_FETCH_MAX_WAIT", "7.25")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError) as info:
            get_settings()
    finally:
        get_settings.cache_clear()
    text = str(info.value)
    assert text.startswith("STREAM_DETECTOR_BATCH_WAIT: input should be a valid number")
    assert "STREAM_DETECTOR_FETCH_MAX_WAIT: input should be less than or equal to 1.5" in text
    assert "abc123xyz" not in text and "7.25" not in text and "\n" not in text


def test_the_command_line_says_it_in_one_line_without_a_traceback() -> None:
    # services status reads the settings (its cache folder) before anything else
    import os
    import subprocess
    import sys

    env = {**os.environ, "STREAM_DETECTOR_SESSION_TIMEOUT": "soon"}
    done = subprocess.run(
        [sys.executable, "-m", "stream_detector", "services", "status"], env=env,
        capture_output=True, text=True, timeout=120, check=False,
        cwd=Path(__file__).resolve().parents[2])  # this checkout's package, whatever the venv
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: STREAM_DETECTOR_SESSION_TIMEOUT: input should be a valid number, unable to "
        "parse string as a number"]


@pytest.mark.parametrize(("env", "said"), [
    ({"STREAM_DETECTOR_REDIS_URL": "redis://127.0.0.1:99999/0"}, "port from 1 to 65535"),
    ({"STREAM_DETECTOR_REDIS_URL": "redis://h:abc/0"}, "redis://HOST:PORT/DB"),
    ({"STREAM_DETECTOR_REDIS_URL": "redis://h:0/0"}, "port from 1 to 65535"),
    ({"STREAM_DETECTOR_REDIS_URL": "redis://u:hunter2@h:6379/abc"}, "'redis://u:***@h:6379/abc'"),
    ({"STREAM_DETECTOR_REDIS_URL": "redis://h:6379/0/extra"}, "a database number"),
    ({"STREAM_DETECTOR_REDIS_URL": "redis://h:6379/\u00b2"}, "a database number"),
    ({"STREAM_DETECTOR_REDIS_URL": "redis://u:hunter2@h:6379/0?db=x"}, "options redis-py reads"),
    ({"STREAM_DETECTOR_REDIS_URL": "redis://h/0?socket_timeout=abc"}, "options redis-py reads"),
    ({"STREAM_DETECTOR_REDIS_URL": "rediss://h/0?ssl_cert_reqs=bogus"}, "options redis-py reads"),
    ({"STREAM_DETECTOR_REDIS_URL": "unix:///tmp/r.sock?db=abc"}, "options redis-py reads"),
    ({"STREAM_DETECTOR_LOG_LEVEL": "LOUD"}, "'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'"),
    ({"STREAM_DETECTOR_APP_ID": "bad id!"}, "STREAM_DETECTOR_APP_ID"),
    ({"STREAM_DETECTOR_HEARTBEAT_INTERVAL": "30"},
     "STREAM_DETECTOR_HEARTBEAT_INTERVAL (30 s) must be at most a third of "
     "STREAM_DETECTOR_SESSION_TIMEOUT (8 s)"),
])
def test_settings_that_could_only_fail_later_are_one_line_now(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], said: str,
) -> None:
    from stream_detector.cli.common import settings_for

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as refused:  # tracebacks or a churning group before
        settings_for()
    assert said in str(refused.value) and "hunter2" not in str(refused.value)


@pytest.mark.parametrize("url", ["redis://h", "redis://h:6379", "redis://h:6379/", "rediss://h/2",
                                 "unix:///run/redis.sock?db=1"])
def test_redis_urls_without_a_port_or_database_still_work(url: str) -> None:
    assert Settings(redis_url=url).redis_url == url


def test_the_log_level_is_read_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_DETECTOR_LOG_LEVEL", " debug")
    assert Settings().log_level == "DEBUG"


def test_a_topic_given_empty_stays_empty_under_a_namespace() -> None:
    """It became the namespaced default topic (ns.records) while, without a namespace, the
    same empty name is refused when the worker creates its topics."""
    settings = Settings(namespace="ns", input_topic="", output_topic="out")
    assert (settings.input_topic, settings.output_topic) == ("", "ns.out")


@pytest.mark.parametrize(("field", "value"), [
    ("input_topic", "a b"), ("output_topic", "alerts/prod"), ("dead_letter_topic", ".."),
    ("output_topic", "x" * 250), ("input_topic", "caf\u00e9"),
])
def test_a_topic_kafka_would_refuse_is_refused_by_its_variable(field: str, value: str) -> None:
    """`ui --events a/b` followed nothing, silently; the worker learnt it only from Kafka."""
    with pytest.raises(ValidationError) as invalid:
        Settings(**{field: value})
    assert invalid_settings(invalid.value).startswith(
        f"STREAM_DETECTOR_{field.upper()}: {value[:60]!r}")
    assert "is not a Kafka topic name" in invalid_settings(invalid.value)


def test_a_namespace_that_makes_a_topic_too_long_is_refused() -> None:
    assert Settings(namespace="ns", input_topic="r" * 246).input_topic == "ns." + "r" * 246
    with pytest.raises(ValidationError, match="is not a Kafka topic name"):
        Settings(namespace="ns", input_topic="r" * 247)


@pytest.mark.parametrize("name", ["STREAM_DETECTOR_UI_HOST", "STREAM_DETECTOR_WEB_HOST"])
def test_an_empty_host_is_refused_not_every_interface(
    monkeypatch: pytest.MonkeyPatch, name: str,
) -> None:
    """`ui` with an empty host listened on 0.0.0.0 and [::] (allow-writes included)."""
    from stream_detector.cli.common import settings_for

    monkeypatch.setenv(name, "")
    with pytest.raises(ConfigurationError, match=name):
        settings_for()


def test_settings_doctests() -> None:
    """Broker lists: parsing and the addresses the connection checks dial."""
    import doctest

    import stream_detector.service_urls
    import stream_detector.settings

    result = doctest.testmod(stream_detector.service_urls)
    assert result.failed == 0 and result.attempted >= 3
    assert doctest.testmod(stream_detector.settings).failed == 0


def test_the_cache_folder_is_absolute_and_never_empty(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    """A relative cache folder moved with the current folder (services started in one place
    were not found from another); an empty one was the current folder."""
    monkeypatch.chdir(tmp_path)
    assert Settings(cache_dir="rel").cache_dir == tmp_path / "rel"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert Settings(cache_dir="~/c").cache_dir == tmp_path / "home" / "c"
    with pytest.raises(ValidationError) as invalid:
        Settings(cache_dir=" ")
    assert invalid_settings(invalid.value).startswith("STREAM_DETECTOR_CACHE_DIR: is empty")


def test_a_bad_namespace_is_one_error_not_one_per_prefixed_name() -> None:
    with pytest.raises(ValidationError) as invalid:
        Settings(namespace="team a")
    assert invalid_settings(invalid.value) == (
        "STREAM_DETECTOR_NAMESPACE: 'team a' is not a namespace: use up to 40 letters, "
        "digits, '_' and '-'")


def test_an_app_id_made_too_long_by_the_namespace_names_both() -> None:
    assert Settings(namespace="n" * 40, app_id="a" * 159).app_id == "n" * 40 + "." + "a" * 159
    with pytest.raises(ValidationError) as invalid:
        Settings(namespace="n" * 40, app_id="a" * 160)
    said = invalid_settings(invalid.value)
    assert said.startswith("STREAM_DETECTOR_APP_ID: with STREAM_DETECTOR_NAMESPACE 'nnn")
    assert "201 characters, over 200" in said
    with pytest.raises(ValidationError, match="'a b' is not an app id"):
        Settings(app_id="a b")
