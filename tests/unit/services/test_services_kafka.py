"""The local Kafka broker without starting it: missing tools, cached jars, its config."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream_detector.exceptions import MissingToolError
from stream_detector.services.kafka import KAFKA_VERSION, KafkaBroker


def test_missing_java_and_maven_name_the_package_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(Path, "exists", lambda self: False)
    with pytest.raises(MissingToolError, match="apt-get install openjdk-17-jre-headless"):
        KafkaBroker(tmp_path)._java()
    with pytest.raises(MissingToolError, match="apt-get install maven"):
        KafkaBroker(tmp_path).ensure_jars()


def test_cached_jars_skip_maven(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path)
    broker.libs_dir.mkdir(parents=True)
    (broker.libs_dir / ".complete").write_text(KAFKA_VERSION)
    monkeypatch.setenv("PATH", str(tmp_path))  # no mvn reachable: must not be needed
    assert broker.ensure_jars() == broker.libs_dir


def test_rendered_config_is_loopback_kraft(tmp_path: Path) -> None:
    config = KafkaBroker(tmp_path)._render_config(tmp_path, 19092, 19093)
    text = config.read_text()
    assert "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093" in text
    assert "controller.quorum.voters=1@127.0.0.1:19093" in text
    assert "process.roles=broker,controller" in text
    assert f"log.dirs={tmp_path / 'data'}" in text
    assert "${" not in text
