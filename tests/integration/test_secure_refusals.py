"""Wrong credentials, an unknown CA and a plaintext client on a TLS port, against the secured
broker and redis-server: each command exits non-zero within seconds with one line that names
the problem (and the setting to change), and no password appears in what it prints.

Each case starts from the README example's environment (as the pipeline test does) and
changes one variable, then runs the real command line as a subprocess.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from secure_env import clean_environ, readme_environment, timed_cli
from secure_services import (
    PLAIN_PASSWORD,
    PLAIN_USER,
    REDIS_ADMIN_PASSWORD,
    REDIS_PASSWORD,
    SCRAM_PASSWORD,
    Pki,
)

from stream_detector.services.process import ServiceHandle, free_port

WRONG = "Wr0ngPassw0rd"  # must never be echoed either
SECRETS = (WRONG, SCRAM_PASSWORD, PLAIN_PASSWORD, REDIS_PASSWORD, REDIS_ADMIN_PASSWORD)
# a command needs this long to start Python and import its modules; the refusal itself takes
# well under a second (see the README's "checks the connection first")
WITHIN_SECONDS = 15.0

KAFKA_CASES = {
    "wrong SCRAM password": ({"KAFKA_SASL_PASSWORD": WRONG},
                             "rejected the SASL SCRAM-SHA-512 credentials of user "
                             "'stream-detector'"),
    "wrong PLAIN password": ({"KAFKA_SASL_MECHANISM": "PLAIN",
                              "KAFKA_SASL_USERNAME": PLAIN_USER,
                              "KAFKA_SASL_PASSWORD": WRONG},
                             f"rejected the SASL PLAIN credentials of user '{PLAIN_USER}'"),
    "unknown CA": ({"KAFKA_SSL_CAFILE": "{unknown_ca}"},
                   "presented a TLS certificate that {unknown_ca} does not trust"),
    "plaintext client on the TLS port": ({"KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"},
                                         "expects TLS, but STREAM_DETECTOR_KAFKA_SECURITY_"
                                         "PROTOCOL is PLAINTEXT"),
}
REDIS_CASES = {
    "wrong password": ({"REDIS_PASSWORD": WRONG}, "rejected user 'stream-detector'"),
    "unknown CA": ({"REDIS_SSL_CA_CERTS": "{unknown_ca}"},
                   "presented a TLS certificate that {unknown_ca} does not trust"),
    "plaintext client on the TLS port": ({"REDIS_URL": "redis://127.0.0.1:{redis_port}/0"},
                                         "it serves TLS; use a rediss:// URL"),
}


@pytest.fixture()
def base_env(secure_kafka: ServiceHandle, secure_redis: ServiceHandle, secure_pki: Pki,
             tmp_path: Path) -> dict[str, str]:
    return {**clean_environ(),
            **readme_environment(secure_kafka, secure_redis, secure_pki, tmp_path),
            "STREAM_DETECTOR_STATE_DIR": str(tmp_path / "state"),
            "STREAM_DETECTOR_WEB_PORT": str(free_port()),
            "STREAM_DETECTOR_PROVIDER": "cpu"}


def changed(env: dict[str, str], change: dict[str, str], values: dict[str, str]
            ) -> dict[str, str]:
    return {**env, **{f"STREAM_DETECTOR_{k}": v.format(**values) for k, v in change.items()}}


def assert_one_clear_line(args: tuple[str, ...], env: dict[str, str], phrase: str) -> None:
    done, seconds = timed_cli(env, *args)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode != 0, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and phrase in lines[0], lines
    assert not any(secret in lines[0] for secret in SECRETS)
    assert seconds < WITHIN_SECONDS, (seconds, lines)


@pytest.fixture()
def values(secure_pki: Pki, secure_redis: ServiceHandle) -> dict[str, str]:
    return {"unknown_ca": str(secure_pki.unknown_ca), "redis_port": str(secure_redis.port)}


# as subprocesses: one case per problem (the PLAIN variant and more run in-process below)
@pytest.mark.parametrize("case", [c for c in KAFKA_CASES if c != "wrong PLAIN password"])
def test_replay_refused_by_kafka(case: str, base_env: dict[str, str], values: dict[str, str],
                                 tmp_path: Path) -> None:
    change, phrase = KAFKA_CASES[case]
    data = tmp_path / "cpu.csv"
    data.write_text("timestamp,value\n2026-01-01 00:00:00,1.0\n")
    assert_one_clear_line(("replay", str(data), "--no-progress"),
                          changed(base_env, change, values), phrase.format(**values))


@pytest.mark.parametrize("case", list(REDIS_CASES))
def test_thresholds_refused_by_redis(case: str, base_env: dict[str, str],
                                     values: dict[str, str]) -> None:
    change, phrase = REDIS_CASES[case]
    assert_one_clear_line(("thresholds", "list", "tiny", "--version", "1"),
                          changed(base_env, change, values), phrase.format(**values))


# the worker's Kafka check is replay's and alerts' (cli_checks.require_kafka); its Redis check
# is its own (a Redis that is merely down lets it start degraded, wrong settings do not)
@pytest.mark.parametrize(("service", "case"), [("redis", "wrong password")])
def test_worker_refuses_to_start_on_settings_that_cannot_work(
    service: str, case: str, base_env: dict[str, str], values: dict[str, str], tmp_path: Path
) -> None:
    change, phrase = (KAFKA_CASES if service == "kafka" else REDIS_CASES)[case]
    from model_fixtures import window_mean_model, write_registry_model

    model = write_registry_model(tmp_path / "registry" / "tiny" / "1",
                                 window_mean_model(8, 1, last_k=1), window=8)
    assert_one_clear_line(("worker", "--model", str(model.parent.parent)),
                          changed(base_env, change, values), phrase.format(**values))


def test_alerts_refused_by_kafka(base_env: dict[str, str], values: dict[str, str]) -> None:
    change, phrase = KAFKA_CASES["unknown CA"]
    assert_one_clear_line(("alerts", "--dry-run", "--max-seconds", "5"),
                          changed(base_env, change, values), phrase.format(**values))


DIAGNOSES = {
    **{f"kafka: {case}": (change, phrase) for case, (change, phrase) in KAFKA_CASES.items()},
    "kafka: TLS without SASL": ({"KAFKA_SECURITY_PROTOCOL": "SSL"},
                                "the listener probably requires SASL"),
    "kafka: SASL without TLS": ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"},
                                "expects TLS, but STREAM_DETECTOR_KAFKA_SECURITY_PROTOCOL is "
                                "SASL_PLAINTEXT"),
    "kafka: mechanism the broker lacks": ({"KAFKA_SASL_MECHANISM": "SCRAM-SHA-256"},
                                          "does not offer SASL mechanism SCRAM-SHA-256 "
                                          "(it offers PLAIN,SCRAM-SHA-512)"),
    **{f"redis: {case}": (change, phrase) for case, (change, phrase) in REDIS_CASES.items()},
    "redis: no user": ({"REDIS_USERNAME": "", "REDIS_PASSWORD": ""}, "requires authentication"),
}


@pytest.mark.parametrize("case", list(DIAGNOSES))
def test_the_check_itself_names_the_problem_in_about_a_second(
    case: str, base_env: dict[str, str], values: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    from stream_detector.connectivity import check_kafka, check_redis
    from stream_detector.exceptions import ConnectionFailed
    from stream_detector.settings import Settings

    change, phrase = DIAGNOSES[case]
    for name, value in changed(base_env, change, values).items():
        if name.startswith("STREAM_DETECTOR_"):
            monkeypatch.setenv(name, value)
    settings = Settings()
    check = check_kafka if case.startswith("kafka") else check_redis
    start = time.monotonic()
    with pytest.raises(ConnectionFailed) as refused:
        check(settings)
    assert time.monotonic() - start < 3.0
    assert phrase.format(**values) in str(refused.value) and not refused.value.outage
    assert "\n" not in str(refused.value)
    assert not any(secret in str(refused.value) for secret in SECRETS)


def test_the_readme_error_example_is_what_a_wrong_password_gets(
    base_env: dict[str, str], secure_kafka: ServiceHandle, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import re

    from secure_env import EXAMPLE_KAFKA, ROOT

    from stream_detector.connectivity import check_kafka
    from stream_detector.exceptions import ConnectionFailed
    from stream_detector.settings import Settings

    readme = (ROOT / "README.md").read_text()
    (line,) = re.findall(r"^error: Kafka at .*$", readme, re.M)
    for name, value in {**base_env, "STREAM_DETECTOR_KAFKA_SASL_PASSWORD": WRONG}.items():
        if name.startswith("STREAM_DETECTOR_"):
            monkeypatch.setenv(name, value)
    with pytest.raises(ConnectionFailed) as refused:
        check_kafka(Settings())
    here = f"127.0.0.1:{secure_kafka.port}"
    assert f"error: {refused.value}" == line.replace(EXAMPLE_KAFKA, here)
