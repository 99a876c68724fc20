from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stream_detector.cli.main import app

runner = CliRunner()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("services", "train", "evaluate", "score", "worker", "replay", "thresholds",
                 "demo", "bench"):
        assert name in result.output


def test_status_is_down_and_non_zero_without_services(tmp_path: Path) -> None:
    result = runner.invoke(app, ["services", "status", "--json", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert json.loads(result.output) == {"kafka": None, "redis": None}


def test_status_down_says_how_to_start(tmp_path: Path) -> None:
    result = runner.invoke(app, ["services", "status", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "kafka: down" in result.output
    assert "start them with `stream-detector services start`" in result.output


def test_stop_with_nothing_started_names_where_it_looked(tmp_path: Path) -> None:
    for _ in range(2):  # stopping twice is harmless and says why nothing happened
        result = runner.invoke(app, ["services", "stop", "--cache-dir", str(tmp_path)],
                               env={"COLUMNS": "300"})
        assert result.exit_code == 0
        assert result.output.startswith("nothing to stop:") and str(tmp_path) in result.output


def test_bench_outside_a_source_tree_says_so(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    import stream_detector.cli.demo as demo_commands

    fake = tmp_path / "stream_detector" / "cli" / "demo.py"
    monkeypatch.setattr(demo_commands, "__file__", str(fake))
    result = runner.invoke(app, ["bench"])
    assert result.exit_code == 1
    assert "source tree" in result.output


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    """Settings are read once per process; these tests change the environment."""
    from stream_detector.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("fresh_settings")
def test_alerts_without_a_webhook_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAM_DETECTOR_ALERT_WEBHOOK_URL", raising=False)
    result = runner.invoke(app, ["alerts", "--max-seconds", "0"])
    assert result.exit_code == 1
    assert "STREAM_DETECTOR_ALERT_WEBHOOK_URL" in result.output


@pytest.mark.usefixtures("fresh_settings")
def test_alerts_reads_the_webhook_from_the_setting_and_never_prints_its_token() -> None:
    # a bad scheme fails before Kafka is touched: proof the setting was read, masked
    result = runner.invoke(app, ["alerts", "--max-seconds", "0"],
                           env={"STREAM_DETECTOR_ALERT_WEBHOOK_URL": "ftp://hooks.example/T0/s3cr3t"})
    assert result.exit_code == 1
    assert "not http or https" in result.output and "s3cr3t" not in result.output
