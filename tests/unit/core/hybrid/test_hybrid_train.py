"""``train --model hybrid``: the events AE, and a reference held out of its fit."""

from __future__ import annotations

from pathlib import Path

import pytest

from offline_training.synthetic_events import EventsConfig, make_events, write_events
from offline_training.train import train
from offline_training.train_options import TrainOptions
from offline_training.trainer import TrainConfig
from schemas.card import ModelCard


@pytest.mark.slow
def test_hybrid_training_writes_the_nplm_section(tmp_path: Path) -> None:
    data = write_events(tmp_path / "bkg.csv",
                        make_events(EventsConfig(events=1500, signal_fraction=0.0), seed=3))
    report = train(TrainOptions(
        data=data, out=tmp_path / "reg", family="hybrid", name="hyb", plots=False,
        nplm={"sample_size": 100, "every": 20, "reference_fraction": 0.4},
        train=TrainConfig(max_epochs=2, progress=False, device="cpu"),
    ))
    card = ModelCard.model_validate_json((report.path / "card.json").read_text())
    section = card.nplm_card()
    assert card.family == "hybrid" and card.training["ae_family"] == "events"
    assert section is not None and (section.sample_size, section.every) == (100, 20)
    assert card.training["reference_records"] == 600  # the last 40%, not fitted on
    assert 580 <= len(section.reference) < 600  # minus the 1% the AE stage takes
    assert card.thresholds.default > 0
