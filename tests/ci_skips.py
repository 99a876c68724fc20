"""In CI a skipped test is a failure, unless tests/skip_allowlist.txt names it with a reason.

A test that skips because its validator, data set or service went missing passes silently
everywhere; in CI (``CI=true``) that would let a run be green without checking anything.
This plugin turns such a skip into a failure that says what to do. ``xfail`` is untouched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ALLOWLIST = Path(__file__).with_name("skip_allowlist.txt")


def in_ci() -> bool:
    """Whether this run is CI's: ``CI`` set to a true value, as CI services and .ci/run do."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def read_allowlist(path: Path | None = None) -> list[str]:
    """Node ids (or prefixes ending in ``::`` or ``[``) from the allow-list; each needs a reason.

    Raises
    ------
    ValueError
        When an entry has no ``# reason``.
    """
    path = ALLOWLIST if path is None else path
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        entry, _, reason = line.partition("#")
        if not reason.strip():
            raise ValueError(f"{path.name}:{number}: '{entry.strip()}' needs a '# reason'")
        entries.append(entry.strip())
    return entries


def allowed(nodeid: str, entries: list[str]) -> bool:
    """Whether ``nodeid`` is listed exactly, or falls under a listed ``::``/``[`` prefix."""
    return any(
        nodeid == entry or (entry.endswith(("::", "[")) and nodeid.startswith(entry))
        for entry in entries
    )


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _fail_unlisted_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not report.skipped or hasattr(report, "wasxfail") or not in_ci():
        return
    if allowed(report.nodeid, read_allowlist()):
        return
    report.outcome = "failed"
    report.longrepr = (
        f"skipped in CI: {_skip_reason(report)}. Install what the test needs in .ci/run / "
        f"deploy/, or list '{report.nodeid}  # why' in tests/{ALLOWLIST.name}"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport() -> Iterator[None]:
    outcome = yield
    _fail_unlisted_skip(outcome.get_result())  # type: ignore[attr-defined]


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report() -> Iterator[None]:
    outcome = yield
    _fail_unlisted_skip(outcome.get_result())  # type: ignore[attr-defined]
