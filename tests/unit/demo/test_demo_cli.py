"""The demo command's surface: options, one-line errors, interrupts that end cleanly."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stream_detector.cli.main import app
from stream_detector.demo.run import interrupts_handled

runner = CliRunner()


def test_help_shows_every_option_and_an_example() -> None:
    result = runner.invoke(app, ["demo", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--kind", "--duration", "--data", "--kafka", "--redis", "--rate", "--out",
                   "--no-live"):
        assert option in result.output
    assert "stream-detector demo --kind sales" in result.output


def test_an_unknown_kind_is_refused() -> None:
    assert runner.invoke(app, ["demo", "--kind", "logs"]).exit_code == 2


def test_a_missing_data_file_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--data", str(tmp_path / "nope.csv"), "--out",
                                 str(tmp_path)])
    assert result.exit_code == 1
    assert "nope.csv" in result.output and "Traceback" not in result.output


def test_an_error_after_a_signal_counts_as_the_interrupt() -> None:
    # a signal inside a C extension can surface as another error (confluent-kafka's poll)
    with pytest.raises(KeyboardInterrupt), interrupts_handled():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except KeyboardInterrupt:
            raise SystemError("returned NULL without setting an exception") from None


def test_errors_without_a_signal_pass_through_and_handlers_are_restored() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with pytest.raises(ValueError), interrupts_handled():
        raise ValueError("bad data")
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
