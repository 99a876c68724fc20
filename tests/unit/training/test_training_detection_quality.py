"""Acceptance: the default detector on NAB's artificial groups (causal protocol).

Each file's model trains on its first 15% with the defaults and the whole file is scored
through the worker's pipeline; the seasonal component is what finds the changed days of
artificialWithAnomaly, and nothing may alert on artificialNoAnomaly after the probation.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.detection_quality import PUBLISHED, nab_detections, nab_scores

pytestmark = pytest.mark.slow


@pytest.mark.timeout(1200)
def test_default_beats_the_published_detectors_on_the_artificial_groups(
    nab_dir: Path, tmp_path: Path
) -> None:
    detections = nab_detections(30, tmp_path, ("artificialWithAnomaly", "artificialNoAnomaly"),
                                nab_dir, ("default",))
    scores = nab_scores(detections["default"], nab_dir)
    print(scores)
    assert scores["artificialNoAnomaly"]["alerts_after_probation"] == 0
    best = max(aw for _, aw in PUBLISHED.values())
    assert scores["artificialWithAnomaly"]["standard"] > best
