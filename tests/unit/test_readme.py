"""The README stays true: its configuration table and its commands match the code."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from stream_detector.settings import markdown_table

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_configuration_table_is_the_generated_one() -> None:
    assert markdown_table() in README, "regenerate it: python -m stream_detector.settings"


def test_readme_make_targets_exist() -> None:
    targets = set(re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), flags=re.M))
    for target in re.findall(r"^make ([a-z-]+)", README, flags=re.M):
        assert target in targets, f"README mentions `make {target}`; the Makefile lacks it"


# --- commands: every `stream-detector ...` the READMEs show names a real command and options

DOCS = ("README.md", "deploy/README.md", "benchmarks/README.md")
_CALL = re.compile(r"(?<![\w/.-])(?:\.venv/bin/)?stream-detector[ \t]+([^`|&;#)\n]*)")


def _code(text: str) -> list[tuple[str, bool]]:
    """The text of fenced blocks (line by line) and inline code spans, each with whether it
    is a block line starting with the command (where a typo must not pass unnoticed)."""
    text = re.sub(r"\\\n[ \t]*", " ", text)  # shell line continuations
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.M | re.S)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", text, flags=re.M | re.S))
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [(line, bool(_CALL.match(line))) for line in lines] + [(s, False) for s in spans]


def _readme_calls() -> list[tuple[str, str, bool]]:
    calls = []
    for name in DOCS:
        for code, anchored in _code((ROOT / name).read_text()):
            calls += [(name, m.group(1).strip(), anchored) for m in _CALL.finditer(code)]
    return calls


def _resolve(words: list[str]) -> tuple[Any, list[str]] | None:
    """The click command the words name, and the names of the commands on the way."""
    import typer

    from stream_detector.cli.main import app

    command: Any = typer.main.get_command(app)
    path: list[str] = []
    for word in words:
        sub = getattr(command, "commands", {}).get(word)
        if sub is None:
            break
        command, path = sub, [*path, word]
    return (command, path) if path else None


def test_readme_commands_and_options_exist() -> None:
    calls = _readme_calls()
    assert len(calls) >= 15, "the README commands were not found; is the pattern stale?"
    for doc, call, anchored in calls:
        found = _resolve(call.split())
        if found is None:  # prose such as "stream-detector lives in": only blocks must match
            assert not anchored, f"{doc}: `stream-detector {call}`: no such command"
            continue
        command, path = found
        known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
        for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", call):
            assert flag in known, (
                f"{doc}: `stream-detector {call}`: `{' '.join(path)}` has no {flag}")


def test_readme_outputs_leave_the_clone_clean() -> None:
    """What the README's commands write inside the checkout (--out) is ignored by git."""
    ignored = {line.strip().strip("/") for line in (ROOT / ".gitignore").read_text().splitlines()
               if line.startswith("/")}
    outs = [m for _, call, _ in _readme_calls() for m in re.findall(r"--out\s+(\S+)", call)]
    assert len(outs) >= 3
    for out in outs:
        if not out.startswith((".", "/")):
            assert out.split("/")[0] in ignored, f"README writes {out}; add /{out} to .gitignore"


def _leaf_commands() -> list[tuple[str, Any]]:
    import typer

    from stream_detector.cli.main import app

    leaves, todo = [], [("", typer.main.get_command(app))]
    while todo:
        name, command = todo.pop()
        subs = getattr(command, "commands", None)
        if subs is None:
            leaves.append((name.strip(), command))
        else:
            todo += [(f"{name} {n}", c) for n, c in subs.items()]
    return leaves


def test_every_command_help_has_an_example() -> None:
    """The README promises it: "Every command has `--help` with examples"."""
    from typer.testing import CliRunner

    from stream_detector.cli.main import app

    leaves = _leaf_commands()
    assert len(leaves) >= 15
    for name, _ in leaves:
        result = CliRunner().invoke(app, [*name.split(), "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, name
        assert "Example" in result.output, f"`stream-detector {name} --help` shows no example"


# --- paths: what the README names in backticks or links is in the repository

_GENERATED = ("benchmarks/results/", "benchmarks/.peers-venv")


def _tracked_tops() -> set[str]:
    """Top-level folders holding tracked files: not runs/, registry/ or reports/, which
    `make demo` and the Tour create (the README names paths inside them too)."""
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.splitlines()
    return {name.split("/")[0] for name in listed if "/" in name}


def test_readme_paths_exist() -> None:
    tops = {t for t in _tracked_tops() if not t.startswith(".")}
    names = re.findall(r"`([^`\s]+)`", README) + re.findall(r"\]\(([^)\s]+)\)", README)
    files = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py") if ".venv" not in p.parts]
    checked = 0
    for name in {n.rstrip(".,") for n in names}:
        if re.search(r"[{}*<>$~:]", name) or name.startswith(_GENERATED):
            continue
        if name.split("/")[0] in tops:
            assert (ROOT / name).exists(), f"README names `{name}`; it is not in the repository"
            checked += 1
        elif name.endswith(".py"):  # a module named inside its room, e.g. `acks.py`
            assert any(f.endswith(f"/{name}") or f == name for f in files), (
                f"README names `{name}`; no such module in the repository")
            checked += 1
    assert checked >= 10
