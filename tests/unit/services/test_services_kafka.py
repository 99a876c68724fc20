"""The local Kafka broker without starting it: missing tools, cached jars, its config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stream_detector.exceptions import MissingToolError, ServiceError
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


# A stand-in for mvn that behaves as Maven does with -DoutputDirectory: a relative folder is
# taken from the pom's folder (-f), not from where mvn was started.
FAKE_MVN = """#!/bin/sh
pom_dir=$(dirname "$(echo "$@" | sed 's/.*-f \\([^ ]*\\).*/\\1/')")
out=$(echo "$@" | sed 's/.*-DoutputDirectory=\\([^ ]*\\).*/\\1/')
case "$out" in /*) ;; *) out="$pom_dir/$out" ;; esac
{fail}
mkdir -p "$out" && touch "$out/kafka_2.13-3.9.1.jar"
"""


def _fake_mvn(tmp_path: Path, fail: str = "") -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mvn = bin_dir / "mvn"
    mvn.write_text(FAKE_MVN.replace("{fail}", fail))
    mvn.chmod(0o755)
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    (recipe / "pom.xml").write_text("<project/>")
    return recipe


def test_a_relative_cache_folder_gets_the_jars_where_it_points(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    """`services start --cache-dir ''` (or any relative folder) made Maven write the jars
    beside the pom, inside the checkout, and then reported a failure with no words."""
    recipe = _fake_mvn(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}/usr/bin:/bin")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    libs = KafkaBroker(Path("cache"), recipe_dir=recipe).ensure_jars()
    assert libs == work / "cache" / "kafka" / KAFKA_VERSION / "libs"
    assert (libs / "kafka_2.13-3.9.1.jar").is_file()
    assert sorted(p.name for p in recipe.iterdir()) == ["pom.xml"]


def test_a_maven_failure_is_told_without_colour_codes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    recipe = _fake_mvn(tmp_path, fail="printf '\\033[1;31m[ERROR]\\033[m no route\\n'; exit 1")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}/usr/bin:/bin")
    with pytest.raises(ServiceError) as failed:
        KafkaBroker(tmp_path / "cache", recipe_dir=recipe).ensure_jars()
    assert str(failed.value).endswith("failed:\n[ERROR] no route"), repr(str(failed.value))


def test_rendered_config_is_loopback_kraft(tmp_path: Path) -> None:
    config = KafkaBroker(tmp_path)._render_config(tmp_path, 19092, 19093)
    text = config.read_text()
    assert "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093" in text
    assert "controller.quorum.voters=1@127.0.0.1:19093" in text
    assert "process.roles=broker,controller" in text
    assert f"log.dirs={tmp_path / 'data'}" in text
    assert "${" not in text
