"""Module paths written outside Python code (CI scripts, Dockerfiles, READMEs, manifests,
``python -c`` snippets) still name real modules and names: a move inside the package cannot
leave a stale ``stream_detector.x`` behind where mypy and the imports do not look."""

from __future__ import annotations

import importlib
import re
import subprocess
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
DOTTED = re.compile(r"\bstream_detector(?:\.[A-Za-z_]\w*)+")
FROM_IMPORT = re.compile(r"\bfrom (stream_detector(?:\.\w+)*) import ((?:\w+(?: as \w+)?(?:, )?)+)")
# logger names that are not modules (they group a module's quieter messages)
LOGGERS = {"stream_detector.console", "stream_detector.demo.admin", "stream_detector.demo.kafka",
           "stream_detector.services.probe", "stream_detector.ui.kafka"}


def text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout.split()
    paths = [REPO / name for name in listed if not name.endswith(".py")]
    return [p for p in paths if p.is_file() and b"\0" not in p.read_bytes()[:4096]]


@cache
def module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def resolves(dotted: str) -> bool:
    """``a.b.c``: the longest importable prefix, then attributes for the rest."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        if parts[cut - 1] == "__main__":  # importing it would run the command line
            return module(".".join(parts[: cut - 1])) is not None
        found = module(".".join(parts[:cut]))
        if found is not None:
            obj: object = found
            for attr in parts[cut:]:
                if not hasattr(obj, attr):
                    return False
                obj = getattr(obj, attr)
            return True
    return False


def stale_references(path: Path) -> list[str]:
    text = path.read_text(errors="replace")
    stale = [d for d in sorted(set(DOTTED.findall(text))) if d not in LOGGERS and not resolves(d)]
    for source, names in FROM_IMPORT.findall(text):
        found = module(source)
        for name in (n.split(" as ")[0].strip() for n in names.split(",")):
            if found is None or not hasattr(found, name):
                stale.append(f"from {source} import {name}")
    return stale


def test_the_scan_sees_the_files_that_name_modules() -> None:
    names = {p.relative_to(REPO).as_posix() for p in text_files()}
    assert {".ci/run", "README.md", "deploy/docker/Dockerfile", "pyproject.toml"} <= names
    assert stale_references(REPO / ".ci/run") == []
    assert not resolves("stream_detector.app") and resolves("stream_detector.worker.app")


@pytest.mark.parametrize("path", text_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_module_paths_outside_python_resolve(path: Path) -> None:
    stale = stale_references(path)
    assert not stale, f"{path.relative_to(REPO)} names what does not exist: {stale}"
