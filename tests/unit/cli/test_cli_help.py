"""Every command's --help reads whole in an 80-column terminal, and its examples run.

The rich help layout squeezed the option table into 80 columns by cutting names with an
ellipsis (``--threshold-met…``, ``STREAM_DETECTOR_AL…``) and rewrapped example command
lines mid-flag; a user copying an example got half a command.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from stream_detector.cli.main import app


def _commands() -> list[tuple[str, Any]]:
    found, todo = [], [("", typer.main.get_command(app))]
    while todo:
        name, command = todo.pop()
        found.append((name.strip(), command))
        todo += [(f"{name} {n}", c) for n, c in getattr(command, "commands", {}).items()]
    return sorted(found, key=lambda item: item[0])


COMMANDS = _commands()


def _help(name: str, columns: int) -> str:
    result = CliRunner().invoke(app, [*name.split(), "--help"], terminal_width=columns,
                                env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.output


def _examples(help_text: str) -> list[str]:
    """The example command lines of a help text (one per line after ``Example``)."""
    _, _, tail = help_text.partition("Example")
    return [line.strip() for line in tail.splitlines()
            if re.match(r"\s*(STREAM_DETECTOR_\w+=\S+ )?stream-detector\b", line)]


def test_the_walk_finds_every_command() -> None:
    names = {name for name, _ in COMMANDS}
    assert {"", "train", "thresholds set", "services start", "schemas export"} <= names
    assert len(names) >= 20


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n or "root" for n, _ in COMMANDS])
def test_help_at_80_columns_shows_every_option_and_example_whole(name: str, command: Any) -> None:
    shown = _help(name, 80)
    assert "\u2026" not in shown, f"`{name} --help` cuts a word:\n{shown}"
    for param in command.params:
        for opt in (*param.opts, *param.secondary_opts):
            if opt.startswith("-"):
                assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", shown), (
                    f"`{name} --help` at 80 columns lacks {opt}:\n{shown}")
    source = command.help or ""
    for example in _examples(source):
        assert example in shown, f"`{name} --help` rewraps the example {example!r}:\n{shown}"


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n or "root" for n, _ in COMMANDS])
def test_every_example_names_a_command_and_flags_it_has(name: str, command: Any) -> None:
    root: Any = typer.main.get_command(app)
    for example in _examples(command.help or ""):
        words = shlex.split(example.split(" # ")[0])
        words = words[words.index("stream-detector") + 1:]
        target, used = root, []
        while words and words[0] in getattr(target, "commands", {}):
            target, used = target.commands[words[0]], [*used, words.pop(0)]
        assert used, f"{example!r}: names no command"
        known = {o for p in target.params for o in (*p.opts, *p.secondary_opts)}
        for word in words:
            if word == "--":
                break
            if word.startswith("-") and not re.fullmatch(r"-[\d.]+", word):
                assert word.split("=")[0] in known, (
                    f"{example!r}: `{' '.join(used)}` has no {word}")


@pytest.mark.parametrize("columns", [60, 80, 100, 200])
@pytest.mark.parametrize("total", [12, 158_902, 10_000_000])
def test_a_progress_line_keeps_its_counts_and_times_inside_the_terminal(
    columns: int, total: int,
) -> None:
    """Replay's and score's progress line: rich cut its end (counts, times) at 80 columns
    for a long file name; now the bar shrinks, then the title is cut."""
    import io

    from rich.console import Console

    from stream_detector.cli import common

    console = Console(width=columns, force_terminal=True, record=True, file=io.StringIO())
    title = "Twitter_volume_AAPL.csv -> records"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(common, "err_console", console)
        with common.records_progress(title, total, enabled=True) as advance:
            advance(total // 3)
    text = console.export_text().rstrip("\n").splitlines()[-1]
    line = "Twitter" + text.rsplit("Twitter", 1)[-1]  # the last refresh of the live line
    assert len(line) <= columns
    assert f"{total // 3}/{total} records" in line, line
    assert re.search(r"\d:\d\d:\d\d [-\d]:[-\d]{2}:[-\d]{2}$", line), line


def test_common_doctests() -> None:
    import doctest

    from stream_detector.cli import common

    result = doctest.testmod(common)
    assert result.failed == 0 and result.attempted >= 3
