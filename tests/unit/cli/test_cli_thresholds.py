"""`thresholds` and `schemas` commands without a Redis server: help, argument and error paths."""

from __future__ import annotations

import doctest
import json
import socket
from pathlib import Path

import pytest
from model_fixtures import card_dict
from typer.testing import CliRunner

from schemas.export import SCHEMA_FILES
from stream_detector.cli import common as cli
from stream_detector.cli import thresholds as cli_thresholds
from stream_detector.cli.main import app

runner = CliRunner()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connecting is refused at once


def one_error_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("error: ") and "Traceback" not in output
    return lines[0]


def test_cli_doctests() -> None:
    from stream_detector import connectivity  # the URL masking the messages use lives there

    for module in (cli, connectivity):
        result = doctest.testmod(module)
        assert result.failed == 0
    assert doctest.testmod(connectivity).attempted >= 2


@pytest.mark.parametrize(
    ("args", "example"),
    [
        (["thresholds"], "stream-detector thresholds publish --model registry/Twitter_volume_AAPL"),
        (["thresholds", "set"], "stream-detector thresholds set registry/Twitter_volume_AAPL"),
        (["thresholds", "get"], "stream-detector thresholds get nab Twitter_volume_AAPL"),
        (["thresholds", "list"], "stream-detector thresholds list registry/Twitter_volume_AAPL"),
        (["thresholds", "publish"], "stream-detector thresholds publish --model"),
        (["thresholds", "delete"], "stream-detector thresholds delete nab"),
        (["schemas", "export"], "stream-detector schemas export schemas-json/"),
    ],
)
def test_help_shows_an_example(args: list[str], example: str) -> None:
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0
    assert example in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["list", "nab"],
        ["get", "nab", "k"],
        ["set", "nab", "k", "1.0"],
        ["delete", "nab", "k"],
        ["publish", "--model", "nab"],
    ],
)
def test_unreachable_redis_is_one_red_line(args: list[str], tmp_path: Path) -> None:
    card = tmp_path / "m"
    card.mkdir()
    (card / "card.json").write_text(json.dumps(CARD))
    args = [str(card) if a == "nab" else a for a in args]
    url = f"redis://127.0.0.1:{closed_port()}/0"
    result = runner.invoke(app, ["thresholds", *args, "--redis", url])
    assert result.exit_code == 1
    line = one_error_line(result.output)
    assert f"Redis at {url}" in line and "Connection refused" in line


def test_a_name_needs_a_version() -> None:
    result = runner.invoke(app, ["thresholds", "list", "nab"])
    assert result.exit_code == 1
    assert "'nab' is neither a model folder nor a registry entry" in (
        one_error_line(result.output))


def test_publish_of_a_bare_name_says_it_needs_the_models_folder() -> None:
    result = runner.invoke(app, ["thresholds", "publish", "--model", "nab", "--version", "3"])
    assert result.exit_code == 1
    line = one_error_line(result.output)
    assert "nab is not a model folder or registry entry" in line
    assert "give its folder (registry/NAME, or registry/NAME with --version)" in line


def test_help_gives_thresholds_on_the_default_models_scale() -> None:
    """The help names the sigma training gives the default models (an example of 0.42
    would silence nothing)."""
    from offline_training.train_options import DEFAULTS

    sigma = DEFAULTS["threshold_value"]["sigma"]
    for args in (["thresholds", "--help"], ["thresholds", "set", "--help"]):
        text = runner.invoke(app, args, env={"COLUMNS": "200"}).output
        assert "Twitter_volume_AAPL 5.0" in text and "0.42" not in text
        assert f"alert at {sigma:g} sigma" in text


def test_threshold_values_must_be_finite() -> None:
    result = runner.invoke(app, ["thresholds", "set", "nab", "k", "nan", "-v", "1",
                                 "--redis", f"redis://127.0.0.1:{closed_port()}/0"])
    assert result.exit_code == 1
    assert "finite" in one_error_line(result.output)


def test_invalid_card_and_bad_url_are_errors_not_tracebacks(tmp_path: Path) -> None:
    (tmp_path / "card.json").write_text("{}")
    result = runner.invoke(app, ["thresholds", "publish", "--model", str(tmp_path)])
    assert result.exit_code == 1 and "is invalid" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["thresholds", "list", "nab", "-v", "1", "--redis", "http://x"])
    assert result.exit_code == 1
    assert "Redis URL must start with redis://" in one_error_line(result.output)


def test_unknown_method_is_a_usage_error() -> None:
    result = runner.invoke(app, ["thresholds", "set", "nab", "k", "1", "-v", "1", "--method", "x"])
    assert result.exit_code == 2


def test_passwords_stay_out_of_messages() -> None:
    url = f"redis://:hunter2@127.0.0.1:{closed_port()}/0"
    result = runner.invoke(app, ["thresholds", "list", "nab", "-v", "1", "--redis", url])
    assert result.exit_code == 1
    assert "hunter2" not in result.output and ":***@" in result.output


def test_schemas_export_writes_every_contract(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schemas", "export", str(tmp_path / "out")])
    assert result.exit_code == 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(SCHEMA_FILES)
    for name in SCHEMA_FILES:
        assert str(tmp_path / "out" / name) in result.output
        assert json.loads((tmp_path / "out" / name).read_text())["$schema"].startswith("https")


def test_schemas_export_into_a_file_fails_cleanly(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(app, ["schemas", "export", str(blocker)])
    assert result.exit_code == 2  # a usage error, as every command's output folder
    assert f"{blocker} is a file, not a folder" in result.output  # not just "File exists"


CARD = card_dict()


def test_the_cli_default_key_is_the_cards() -> None:
    from schemas.card import DEFAULT_KEY

    assert cli_thresholds._DEFAULT_KEY == DEFAULT_KEY


def test_help_stays_fast_by_not_importing_the_schemas() -> None:
    import subprocess
    import sys

    code = "import sys, stream_detector.cli.main; print(*sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60).stdout.split()
    heavy = {"pydantic", "redis", "confluent_kafka", "numpy", "offline_training"}
    assert not heavy & set(loaded)
    # the closed lists (typing only) are the one part of the schemas the options need
    assert {m for m in loaded if m.split(".")[0] == "schemas"} == {"schemas", "schemas.kinds"}


def test_url_options_override_only_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_DETECTOR_INPUT_TOPIC", "from-env")
    monkeypatch.setenv("STREAM_DETECTOR_REDIS_URL", "redis://env-host:1/0")
    settings = cli.settings_for(kafka_url="kafka://cli-host:9")
    assert (settings.kafka_url, settings.input_topic) == ("kafka://cli-host:9", "from-env")
    assert settings.redis_url == "redis://env-host:1/0"
