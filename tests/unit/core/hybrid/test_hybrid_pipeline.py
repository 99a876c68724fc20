"""The hybrid pipeline on generated 57-feature events: a resonance yields p < 0.01 events,
background alone does not, and every p-value is the NPLM test recomputed from scratch."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hybrid_fixtures import event_records, runtime_of
from scipy import stats

from offline_training.synthetic_events import EventsConfig, make_events, write_events
from schemas.card import NPLMCard
from schemas.events import event_id_for
from stream_detector.core.hybrid import p_value_severity
from stream_detector.core.model_runtime import Scored
from stream_detector.core.nplm import (
    chi2_sf,
    combine_p_values,
    flagged_count_sf,
    nplm_numpy_basis,
    nplm_numpy_features,
    nplm_numpy_test,
)
from stream_detector.files.batch import score_file, score_records


def scored(hybrid_dir: Path, source: str, signal: float, seed: int) -> list[Scored]:
    rt = runtime_of(hybrid_dir)
    return [s for s, _ in score_records(rt, event_records(source, 1000, signal, seed))]


def test_signal_gives_p_value_events_and_background_does_not(hybrid_dir: Path) -> None:
    signal = scored(hybrid_dir, "det-sig", 0.2, seed=12)
    background = scored(hybrid_dir, "det-bkg", 0.0, seed=11)
    low = [s.event for s in signal if s.event and s.event.p_value is not None
           and s.event.p_value < 0.01]
    assert len(low) >= 5
    tests = [s.nplm.p_value for s in background if s.nplm is not None]
    assert len(tests) >= 10 and min(tests) >= 0.01  # tests ran; none crossed alpha
    assert not [s for s in background if s.event and s.event.p_value is not None
                and s.event.p_value < 0.01]
    print(f"signal p min {min(e.p_value for e in low if e.p_value is not None):.3g}, "  # noqa: T201
          f"background p min {min(tests):.3f} over {len(tests)} tests")


def test_nplm_events_describe_the_sample(hybrid_dir: Path) -> None:
    items = scored(hybrid_dir, "det-sig", 0.2, seed=12)
    section = NPLMCard.model_validate(runtime_of(hybrid_dir).card.nplm)
    kept = [s for s in items if s.raw_score <= section.ae_threshold]  # the sample's windows
    nplm_only = [s for s in items if s.event and s.nplm and s.nplm.alert
                 and s.event.threshold_source.method == "fpr"]
    assert nplm_only
    for s in nplm_only:
        assert s.event is not None and s.nplm is not None
        newest = next(i for i, k in enumerate(kept) if k is s)
        oldest = kept[newest - section.sample_size + 1].pending.window
        assert s.event.window_start == oldest.start_text
        assert s.event.window_end == s.pending.window.end_text
        assert s.event.event_id == event_id_for("hyb", "1", "det-sig", s.event.window_end)
        assert s.event.p_value == s.nplm.p_value and not s.decision.alert
        assert s.event.severity == pytest.approx(p_value_severity(s.nplm.p_value))
        # the sample's test, and a score above its threshold like every event's
        assert s.event.sample is not None
        assert (s.event.sample.size, s.event.sample.reference_size) == (
            section.sample_size, len(section.reference))
        assert (s.event.sample.t, s.event.sample.dof) == (s.nplm.t, s.nplm.dof)
        assert s.event.sample.p_value == s.nplm.p_value and s.event.sample.alpha == 0.01
        assert s.event.threshold == pytest.approx(2.0)  # -log10 alpha
        assert s.event.score == pytest.approx(-math.log10(s.nplm.p_value))
        assert s.event.score > s.event.threshold
        assert s.event.raw_score == s.nplm.t


def test_p_values_equal_the_test_recomputed_from_scores(hybrid_dir: Path) -> None:
    items = scored(hybrid_dir, "det-sig", 0.2, seed=12)
    section = NPLMCard.model_validate(runtime_of(hybrid_dir).card.nplm)
    assert section.flag_rate is not None and 0.0 < section.flag_rate < 0.05
    reference = np.asarray(section.reference)
    basis = nplm_numpy_basis(reference, section.degree)
    raw = np.array([s.raw_score for s in items])
    kept = np.flatnonzero(raw <= section.ae_threshold)  # windows in the ring, in order
    features = nplm_numpy_features(raw[kept]).astype(np.float32)
    tested = [s.nplm for s in items if s.nplm is not None]
    ends = range(section.sample_size, len(features) + 1, section.every)
    assert len(tested) == len(ends) >= 10
    for outcome, end in zip(tested, ends, strict=True):
        assert outcome is not None
        sample = features[end - section.sample_size : end]
        shape = nplm_numpy_test(basis, reference, sample, ridge=section.ridge)
        first, last = kept[end - section.sample_size], kept[end - 1]
        flagged = int((raw[first:last] > section.ae_threshold).sum())  # taken inside the span
        p_count = stats.nbinom.sf(flagged - 1, section.sample_size, 1 - section.flag_rate)
        combined = stats.combine_pvalues([shape.p_value, p_count], method="fisher").pvalue
        assert outcome.flagged == flagged
        assert outcome.p_shape == pytest.approx(shape.p_value, rel=1e-6, abs=1e-12)
        assert outcome.p_count == pytest.approx(p_count, rel=1e-6, abs=1e-12)
        assert outcome.p_value == pytest.approx(combined, rel=1e-6, abs=1e-12)
    assert max(o.flagged for o in tested if o is not None) >= 2  # the count path ran


def test_ae_alerts_are_single_windows_without_a_p_value(hybrid_dir: Path) -> None:
    items = scored(hybrid_dir, "det-sig", 0.2, seed=12)
    ae_events = [s.event for s in items if s.decision.alert]
    tested = [s for s in items if s.nplm is not None]
    assert ae_events and tested  # both stages ran
    for event in ae_events:
        assert event is not None and event.p_value is None and event.sample is None
        assert event.window_start == event.window_end  # one event, window 1
    for s in items:  # every event with a p-value is a sample's, on the window it completed
        if s.event is not None and s.event.p_value is not None:
            assert s.nplm is not None and s.event.sample is not None


def test_scoring_is_deterministic(hybrid_dir: Path) -> None:
    first = [s.event.model_dump() for s in scored(hybrid_dir, "det-sig", 0.2, 12) if s.event]
    again = [s.event.model_dump() for s in scored(hybrid_dir, "det-sig", 0.2, 12) if s.event]
    assert first and first == again


def test_score_file_reports_the_p_values(hybrid_dir: Path, tmp_path: Path) -> None:
    data = write_events(tmp_path / "sig.csv",
                        make_events(EventsConfig(events=1000, signal_fraction=0.2), seed=12))
    rows = score_file(hybrid_dir, data, provider="cpu")
    tested = [i for i, r in enumerate(rows) if r.p_value is not None and r.event_id == ""]
    alerts = [r for r in rows if r.alert and r.p_value is not None and r.p_value < 0.01]
    assert tested and alerts and all(r.event_id for r in alerts)
    # a test below alpha without an event is one the key's quiet period swallowed: it lies
    # within `suppress` (50, the fixture's) windows after the key's previous event
    events = [i for i, r in enumerate(rows) if r.event_id]
    silenced = [i for i in tested if (rows[i].p_value or 1.0) < 0.01]
    assert all(any(0 < i - j < 50 for j in events) for i in silenced)


@pytest.mark.parametrize("kept", [1, 10, 250])
def test_flagged_count_tail_matches_scipy(kept: int) -> None:
    for rate in (0.001, 0.01, 0.3):
        for flagged in (0, 1, 2, 5, 20, 60):
            assert flagged_count_sf(flagged, kept, rate) == pytest.approx(
                stats.nbinom.sf(flagged - 1, kept, 1 - rate), rel=1e-9, abs=1e-300)


def test_fisher_combination_matches_scipy() -> None:
    for first, second in ((0.5, 0.5), (0.01, 0.9), (1e-8, 0.2), (1.0, 1.0)):
        assert combine_p_values(first, second) == pytest.approx(
            stats.combine_pvalues([first, second], method="fisher").pvalue, rel=1e-9)


@pytest.mark.parametrize("dof", [1, 2, 3, 4, 8, 9, 25])
def test_closed_form_chi2_matches_scipy(dof: int) -> None:
    for x in (1e-3, 0.5, float(dof), 13.28, 40.0, 120.0, 400.0):
        assert chi2_sf(x, dof) == pytest.approx(stats.chi2.sf(x, dof), rel=1e-10, abs=1e-300)
    assert chi2_sf(0.0, dof) == 1.0 and chi2_sf(math.inf, dof) == 0.0
