"""Acceptance: the default model beats Random Cut Forest on NAB realTweets (causal protocol).

Each of the 10 files is trained on its first 15% with the defaults, scored through the
worker's pipeline (the ``alert`` column is the real alerting decision) and NAB-scored.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.nab_realtweets import PUBLISHED, run_family
from offline_training.train_options import DEFAULTS

pytestmark = pytest.mark.slow


@pytest.mark.timeout(1200)
def test_default_model_beats_random_cut_forest_on_realtweets(nab_dir: Path) -> None:
    result = run_family(DEFAULTS["family"], epochs=30, nab=nab_dir)
    print(result["normalized"], result["detected_windows"], result["false_positives"])
    assert result["windows"] == 33
    assert result["normalized"]["standard"] > PUBLISHED["Random Cut Forest"]
    # most labelled windows found, and on average under one false alarm per file-day
    assert result["detected_windows"] >= 25
    assert result["false_positives"] < 10 * 47
