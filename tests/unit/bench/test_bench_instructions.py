"""The instruction-count harness runs the worker's real batch step on exactly the records it
says, and says plainly when valgrind is missing."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from benchmarks.instructions import KEYS, main, run_step
from stream_detector.worker import runtime


@pytest.mark.parametrize(("per", "records", "stage"), [
    (100, 3_000, "all"), (100, 3_000, "parse"), (1, 400, "all")])
def test_the_step_takes_the_warm_up_and_then_the_counted_records(
    per: int, records: int, stage: str,
) -> None:
    warm = KEYS * per  # one message per key
    before = gc.get_threshold()
    assert run_step(per, records, 64, 1, stage, counted=False) == warm
    assert run_step(per, records, 64, 1, stage) == warm + records
    assert runtime.INLINE_SCORE_S < 1  # the worker's own setting is back
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0  # the heap too


def test_without_valgrind_it_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no valgrind there
    assert main(["--records", "100"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "valgrind" in err
