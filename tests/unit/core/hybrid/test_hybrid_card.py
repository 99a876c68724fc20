"""The card's NPLM section: validated for hybrid models, rejected when malformed."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from offline_training.hybrid import hybrid_options
from schemas.card import ModelCard, NPLMCard
from stream_detector.core.hybrid import HybridStage
from stream_detector.core.nplm import nplm_numpy_features


def card_dict(hybrid_dir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((hybrid_dir / "card.json").read_text())
    return loaded


def test_hybrid_card_carries_a_valid_nplm_section(hybrid_dir: Path) -> None:
    card = ModelCard.model_validate(card_dict(hybrid_dir))
    section = card.nplm_card()
    assert section is not None and card.family == "hybrid"
    assert section.width == 1  # events: window 1, so the log score only
    assert (section.sample_size, section.every, section.alpha) == (200, 50, 0.01)
    assert 1000 < len(section.reference) <= 1500  # held-out windows the AE does not flag
    assert section.ae_threshold > 0
    # windows over the AE threshold are cut from the reference as from a key's sample:
    # column 0 is log(score + 1e-12) (stream_detector.core.nplm.nplm_numpy_features)
    assert max(row[0] for row in section.reference) <= math.log(section.ae_threshold + 1e-12)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reference": [[0.1], [0.2, 0.3]] * 10}, "1 or 2 values"),
        ({"reference": [[0.1, 0.2, 0.3]] * 20}, "1 or 2 values"),
        ({"alpha": 1.0}, "less than 1"),
        ({"alpha": 0.0}, "greater than 0"),
        ({"every": 0}, "greater than or equal to 1"),
        ({"reference": [[0.1]] * 5}, "at least 10"),
        ({"p_threshold": 0.01}, "Extra inputs"),
    ],
)
def test_malformed_nplm_sections_are_rejected(
    hybrid_dir: Path, change: dict[str, Any], message: str
) -> None:
    raw = card_dict(hybrid_dir)
    raw["nplm"] = {**raw["nplm"], **change}
    with pytest.raises(ValidationError, match=message):
        ModelCard.model_validate(raw)


def test_reference_width_must_match_the_window(hybrid_dir: Path) -> None:
    raw = card_dict(hybrid_dir)
    raw["window"] = 8  # windows longer than 1 add the peak step error: 2 columns
    with pytest.raises(ValidationError, match="needs 2"):
        ModelCard.model_validate(raw)
    raw["nplm"] = {**raw["nplm"], "reference": [[r[0], r[0]] for r in raw["nplm"]["reference"]]}
    stage = HybridStage.from_card(ModelCard.model_validate(raw))
    assert stage is not None and stage.basis.size == 2 * 4
    # the worker's per-window features are the batch function's, row by row
    rng = np.random.default_rng(0)
    errors = rng.gamma(2.0, 0.1, size=(6, 8, 57)).astype(np.float32)
    scores = errors.mean(axis=(1, 2))
    rows = [stage.features(float(s), e) for s, e in zip(scores, errors, strict=True)]
    np.testing.assert_allclose(rows, nplm_numpy_features(scores, errors), rtol=1e-12)


def test_other_families_keep_nplm_a_free_dict(hybrid_dir: Path) -> None:
    raw = card_dict(hybrid_dir)
    raw.update(family="events", nplm={"note": "not a hybrid section"})
    assert ModelCard.model_validate(raw).nplm_card() is None
    with pytest.raises(ValidationError):
        NPLMCard.model_validate(raw["nplm"])


def test_hybrid_training_options_are_checked() -> None:
    assert hybrid_options({"every": 10})["every"] == 10
    with pytest.raises(ValueError, match="unknown nplm options"):
        hybrid_options({"evry": 10})
    with pytest.raises(ValueError, match="reference_fraction"):
        hybrid_options({"reference_fraction": 1.0})
