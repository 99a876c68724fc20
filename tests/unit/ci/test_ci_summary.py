""".ci/pytest-summary: the pytest summary line is printed last, and no test run fails CI."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / ".ci" / "pytest-summary"


def summarise(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    log = tmp_path / "pytest.log"
    log.write_text(text)
    return subprocess.run(["bash", str(SCRIPT), str(log)], capture_output=True, text=True,
                          timeout=30, check=False)


def test_prints_the_last_summary_line(tmp_path: Path) -> None:
    done = summarise(tmp_path, "... [100%]\n=== 1 failed, 640 passed, 1 skipped in 412.31s "
                               "(0:06:52) ===\nmake: *** [Makefile:14: test] Error 1\n")
    assert done.returncode == 0
    assert done.stdout.splitlines() == ["=== 1 failed, 640 passed, 1 skipped in 412.31s "
                                        "(0:06:52) ==="]


@pytest.mark.parametrize("text", [
    "============================ no tests ran in 0.12s =============================\n",
    "=== 3 skipped in 0.50s ===\n",
    "ImportError while loading conftest\n",
])
def test_a_run_without_a_passed_test_fails(tmp_path: Path, text: str) -> None:
    done = summarise(tmp_path, text)
    assert done.returncode == 1
    assert "error: no test ran" in done.stderr
