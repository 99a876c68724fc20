"""The package's rooms and the one-way imports between them, checked over every module.

::

    common (settings, constants, exceptions, logs, connectivity)  <- every room
    core      <- worker, files, ui, demo, cli      (no Faust, no CLI, no torch)
    worker    <- demo, cli                          (no torch, no offline_training)
    alerts, services, files, ui, demo               <- cli

A room may import only the rooms listed for it in :data:`ALLOWED`: imports inside functions
count too, since a lazy import is still a dependency. The worker image carries ONNX Runtime,
not PyTorch, so importing any module of ``core`` or ``worker`` must load neither torch nor
``offline_training`` (checked in a fresh interpreter); ``core`` must not load Faust or the CLI
libraries either. No module imports a private (``_name``) name of another module.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "stream_detector"
COMMON = "common"
ROOMS = ("core", "worker", "alerts", "cli", "demo", "files", "services", "ui")
ALLOWED: dict[str, set[str]] = {
    COMMON: set(),
    "core": set(),
    "worker": {"core"},
    "alerts": {"core"},
    "files": {"core"},
    "services": set(),
    "ui": {"core", "services"},
    "demo": {"core", "files", "services", "ui", "worker"},
    "cli": set(ROOMS),
}


def room_of(module: str) -> str | None:
    """``stream_detector.core.x`` -> ``core``; top-level modules -> ``common``."""
    parts = module.split(".")
    if parts[0] != "stream_detector":
        return None
    if len(parts) > 1 and parts[1] in ROOMS:
        return parts[1]
    return COMMON


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[str, list[str]]]:
    """Every ``import`` in the file (module level or not): (module, names imported from it)."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


PACKAGE_FILES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_lives_in_a_known_room() -> None:
    strays = [p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()
              and p.name not in ROOMS]
    assert not strays, f"folders not in ROOMS (add them to this test's map): {strays}"
    assert {room_of(module_name(p)) for p in PACKAGE_FILES} == {COMMON, *ROOMS}


@pytest.mark.parametrize("path", PACKAGE_FILES, ids=lambda p: module_name(p))
def test_imports_go_one_way_between_rooms(path: Path) -> None:
    here = room_of(module_name(path))
    assert here is not None
    allowed = {here, COMMON} | ALLOWED[here]
    if module_name(path) == "stream_detector.__main__":
        allowed.add("cli")  # ``python -m stream_detector`` is the command line
    wrong = sorted({m for m, _ in imports_of(path) if room_of(m) not in (None, *allowed)})
    assert not wrong, f"{module_name(path)} ({here}) may not import {wrong}"


def loaded_after_import(modules: list[str]) -> set[str]:
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print(*sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return set(out.stdout.split())


def modules_of(room: str) -> list[str]:
    return sorted(module_name(p) for p in (PACKAGE / room).rglob("*.py"))


def heavy(loaded: set[str], roots: tuple[str, ...]) -> set[str]:
    return {m for m in loaded if m.split(".")[0] in roots}


def test_core_loads_no_faust_cli_or_torch() -> None:
    modules = modules_of("core")
    loaded = loaded_after_import(modules)
    assert set(modules) <= loaded  # the probe really imported them
    assert not heavy(loaded, ("torch", "offline_training", "faust", "mode", "aiokafka",
                              "typer", "click", "rich"))


def test_worker_loads_no_torch_or_training() -> None:
    modules = modules_of("worker")
    loaded = loaded_after_import(modules)
    assert set(modules) <= loaded
    assert "faust" in loaded  # the probe is sensitive: the worker room is Faust's
    assert not heavy(loaded, ("torch", "offline_training", "typer"))


def test_schemas_import_nothing_else_of_the_project() -> None:
    loaded = loaded_after_import(["schemas", "schemas.export"])
    assert "schemas.records" in loaded
    assert not {m for m in loaded if m.startswith(("stream_detector", "offline_training"))}


def project_files() -> list[Path]:
    roots = ("stream_detector", "schemas", "offline_training", "tests", "benchmarks")
    return sorted(p for r in roots for p in (REPO / r).rglob("*.py"))


def test_no_module_imports_a_private_name_of_another() -> None:
    own = ("stream_detector", "schemas", "offline_training", "benchmarks", "tests")
    offenders = [
        f"{path.relative_to(REPO)}: from {module} import {name}"
        for path in project_files()
        for module, names in imports_of(path)
        if module.split(".")[0] in own
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert not offenders, "private names imported across modules:\n" + "\n".join(offenders)


def doctested_modules() -> list[str]:
    names = [module_name(p) for p in (PACKAGE / "core").rglob("*.py")]
    return ["schemas.records", "schemas.events", "stream_detector.consumer_idle",
            "stream_detector.worker.models", *sorted(names)]


@pytest.mark.parametrize("module", doctested_modules())
def test_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0


def test_the_core_is_doctested() -> None:
    attempted = {m: doctest.testmod(importlib.import_module(m)).attempted
                 for m in doctested_modules()}
    documented = [m for m, n in attempted.items() if n > 0]
    assert {"schemas.records", "schemas.events", "stream_detector.core.scoring",
            "stream_detector.core.windowing", "stream_detector.core.thresholds",
            "stream_detector.core.events", "stream_detector.core.registry",
            "stream_detector.core.explanations"} <= set(documented)
