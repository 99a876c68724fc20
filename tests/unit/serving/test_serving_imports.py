"""The worker's modules must not pull in torch or offline_training (the worker image
carries ONNX Runtime, not PyTorch), and schemas must not import the rest of the project."""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys

import pytest

WORKER_MODULES = [
    "stream_detector.scoring",
    "stream_detector.registry",
    "stream_detector.windowing",
    "stream_detector.events",
    "stream_detector.thresholds",
]
# worker modules without doctests of their own
UNDOCTESTED = ["stream_detector.threshold_cache"]


def loaded_after_import(modules: list[str]) -> set[str]:
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print(*sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return set(out.stdout.split())


def test_worker_modules_do_not_import_torch_or_training() -> None:
    modules = WORKER_MODULES + UNDOCTESTED
    loaded = loaded_after_import(modules)
    assert set(modules) <= loaded  # the probe really imported them
    assert not {m for m in loaded if m == "torch" or m.startswith("torch.")}
    assert not {m for m in loaded if m.startswith("offline_training")}


def test_schemas_import_nothing_else_of_the_project() -> None:
    loaded = loaded_after_import(["schemas", "schemas.export"])
    assert "schemas.records" in loaded
    assert not {m for m in loaded if m.startswith(("stream_detector", "offline_training"))}


@pytest.mark.parametrize(
    "module",
    ["schemas.records", "schemas.events", *WORKER_MODULES],
)
def test_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
