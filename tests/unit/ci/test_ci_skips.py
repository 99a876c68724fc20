"""The CI skip rule, run in a real inner pytest session (pytester)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ci_skips import ALLOWLIST, allowed, read_allowlist

INNER = """
import pytest

def test_needs_a_validator():
    pytest.skip("hadolint is not installed")

@pytest.mark.xfail(strict=True)
def test_known_bug():
    assert False

def test_runs():
    assert True
"""


def _inner(pytester: pytest.Pytester, allowlist: str) -> None:
    pytester.makepyfile(test_inner=INNER)
    pytester.makeconftest('pytest_plugins = ["ci_skips"]')
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    (pytester.path / "skips.txt").write_text(allowlist)


def run_inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str,
              allowlist: str = "") -> pytest.RunResult:
    _inner(pytester, allowlist)
    monkeypatch.setenv("CI", ci)
    monkeypatch.setattr("ci_skips.ALLOWLIST", pytester.path / "skips.txt")
    return pytester.runpytest_inprocess("-p", "no:cacheprovider")


def test_outside_ci_a_skip_is_a_skip(pytester: pytest.Pytester,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_inner(pytester, monkeypatch, ci="")
    result.assert_outcomes(passed=1, skipped=1, xfailed=1)


def test_in_ci_an_unlisted_skip_fails_and_says_what_to_do(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_inner(pytester, monkeypatch, ci="true")
    result.assert_outcomes(passed=1, failed=1, xfailed=1)
    result.stdout.fnmatch_lines(["*skipped in CI: hadolint is not installed*skips.txt*"])


def test_in_ci_a_listed_skip_stays_a_skip(pytester: pytest.Pytester,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_inner(pytester, monkeypatch, ci="1",
                       allowlist="test_inner.py::test_needs_a_validator  # no GPU here\n")
    result.assert_outcomes(passed=1, skipped=1, xfailed=1)


def test_entries_need_a_reason_and_prefixes_end_in_separators(tmp_path: Path) -> None:
    listed = tmp_path / "list.txt"
    listed.write_text("# comment\n\na.py::t[  # why\nb.py::exact  # why\n")
    entries = read_allowlist(listed)
    assert entries == ["a.py::t[", "b.py::exact"]
    assert allowed("a.py::t[cuda]", entries) and allowed("b.py::exact", entries)
    assert not allowed("b.py::exact_other", entries) and not allowed("a.py::t", entries)
    listed.write_text("c.py::t\n")
    with pytest.raises(ValueError, match="needs a '# reason'"):
        read_allowlist(listed)


def test_the_projects_allowlist_is_short_and_reasoned() -> None:
    entries = read_allowlist(ALLOWLIST)
    assert len(entries) <= 5, "the allow-list is for reasoned exceptions, not a parking lot"
    tests_root = ALLOWLIST.parent.parent
    for entry in entries:
        assert (tests_root / entry.split("::")[0]).is_file(), f"{entry}: no such test file"
