from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stream_detector.cli import app

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


def test_bench_outside_a_source_tree_says_so(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    import stream_detector.cli as cli_module

    monkeypatch.setattr(cli_module, "__file__", str(tmp_path / "stream_detector" / "cli.py"))
    result = runner.invoke(app, ["bench"])
    assert result.exit_code == 1
    assert "source tree" in result.output
