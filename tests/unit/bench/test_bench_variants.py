"""Worker variants: every name the CLI offers has a patch, and a typo is refused."""

from __future__ import annotations

import pytest

from benchmarks.worker_variants import VARIANTS, apply


def test_unknown_variant_is_refused_with_the_choices() -> None:
    with pytest.raises(SystemExit, match="linger20"):
        apply("linger2O")


def test_baseline_changes_nothing() -> None:
    import faust

    before = faust.App
    apply("baseline")
    assert faust.App is before
    assert VARIANTS[0] == "baseline"


def test_fetchwait1500_gives_the_worker_faust_s_own_fetch_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stream_detector.settings import Settings

    monkeypatch.setenv("STREAM_DETECTOR_FETCH_MAX_WAIT", "0.02")  # undone after the test
    assert Settings().fetch_max_wait == 0.02
    apply("fetchwait1500")
    assert Settings().fetch_max_wait == 1.5
