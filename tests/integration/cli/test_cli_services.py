"""`stream-detector services` for real: what a second start keeps, and `stop --wipe`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from stream_detector.cli.main import app
from stream_detector.services.kafka import KAFKA_VERSION, KafkaBroker
from stream_detector.settings import Settings

runner = CliRunner()
KEY = "sd:threshold:tour:1"


def services(cache: Path, *args: str) -> str:
    result = runner.invoke(app, ["services", *args, "--cache-dir", str(cache)])
    assert result.exit_code == 0, result.output
    return result.output


def redis_url(started: str) -> str:
    export = started.strip().splitlines()[-1]  # what the README's eval reads
    assert export.startswith("export STREAM_DETECTOR_KAFKA_URL=")
    return export.split("STREAM_DETECTOR_REDIS_URL=")[1]


def test_a_restart_says_what_it_kept_and_wipe_starts_empty(tmp_path: Path) -> None:
    """The Tour run twice: the second start resumes the first's data (a worker its key
    states, a key its threshold set by hand) and says so; `stop --wipe` empties it."""
    libs = KafkaBroker(Settings().cache_dir).ensure_jars()  # the jars of the session's broker
    (tmp_path / "kafka" / KAFKA_VERSION).mkdir(parents=True)
    (tmp_path / "kafka" / KAFKA_VERSION / "libs").symlink_to(libs)
    try:
        first = services(tmp_path, "start")
        assert "kept from earlier runs" not in first
        client = redis.Redis.from_url(redis_url(first))
        client.hset(KEY, "Twitter_volume_AAPL", json.dumps({"value": 5.0}))
        client.close()
        services(tmp_path, "stop")

        second = services(tmp_path, "start")
        assert "kept from earlier runs" in second and "--wipe" in second
        # the same URLs: a shell's exported variables and a running worker still fit
        assert second.strip().splitlines()[-1] == first.strip().splitlines()[-1]
        client = redis.Redis.from_url(redis_url(second))
        assert client.hget(KEY, "Twitter_volume_AAPL") is not None  # the AOF brought it back
        client.close()
        wiped = services(tmp_path, "stop", "--wipe")
        assert "kafka: stopped" in wiped and "redis: stopped" in wiped and "wiped" in wiped
        assert not (tmp_path / "services" / "kafka").exists()

        third = services(tmp_path, "start")
        assert "kept from earlier runs" not in third
        client = redis.Redis.from_url(redis_url(third))
        assert client.hget(KEY, "Twitter_volume_AAPL") is None
        client.close()
    finally:
        services(tmp_path, "stop", "--wipe")


def test_a_kafka_that_fails_to_start_leaves_its_redis_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis started first and was recorded only once Kafka had started too: every failed
    start left a redis-server that `services stop` could not find."""
    from stream_detector.exceptions import ServiceError
    from stream_detector.services.local import load_state

    def broken(*args: object, **kwargs: object) -> None:
        raise ServiceError("fetching Kafka jars with Maven failed")

    monkeypatch.setattr(KafkaBroker, "start", broken)
    try:
        failed = runner.invoke(app, ["services", "start", "--cache-dir", str(tmp_path)])
        assert failed.exit_code != 0
        recorded = load_state(tmp_path)
        assert list(recorded) == ["redis"]
        assert redis.Redis.from_url(recorded["redis"].url).ping()
    finally:
        stopped = services(tmp_path, "stop")
    assert "redis: stopped" in stopped
