"""The key's detection state in bytes: each layout's size, round trips, corrupt lengths."""

from __future__ import annotations

from array import array

import pytest

from stream_detector.core.detector_state import DetectorState

RING = array("f", [1.0, 2.0, 3.0])


@pytest.mark.parametrize(("state", "size"), [
    (DetectorState(seen=5, mean=1.0, var=2.0, last_z=0.5), 40),  # the AE component only
    (DetectorState(seen=5, ring=RING, value_start=2), 40 + 52 + 12 + 8),
    (DetectorState(seen=5, ring=RING, value_start=2, shift_seen=3), 112 + 40),
    (DetectorState(seen=5, ring=RING, value_start=2, season_rate=0.01), 112 + 48),
    (DetectorState(seen=5, ring=RING, value_start=2, lik_seen=4), 112 + 80),
    (DetectorState(seen=5, ring=RING, value_start=2, value_last=9), 112 + 112),
    (DetectorState(seen=5, ring=RING, value_start=2, burst_seen=3), 112 + 176),
    (DetectorState(seen=5, ring=RING, value_start=2, vexcess=0.5), 112 + 184),
    (DetectorState(seen=5, ring=RING, value_start=2, alert_z=7.0), 112 + 192),
    (DetectorState(seen=5, ring=RING, value_start=2, recent=array("f", [1.0, 2.0])),
     112 + 192 + 12 + 8),  # recurrence: the last values, no page kept yet
    (DetectorState(seen=5, ring=RING, value_start=2, recent=array("f", [1.0, 2.0]),
                   shapes=array("f", [3.0, 4.0]), shape_at=array("q", [4])),
     112 + 192 + 12 + 8 + 8 + 8),
])
def test_each_part_adds_its_tail_only_once_started_and_round_trips(
        state: DetectorState, size: int) -> None:
    data = state.to_bytes()
    assert len(data) == size
    assert DetectorState.from_bytes(data) == state


def test_every_field_survives_the_longest_layout() -> None:
    a = DetectorState(seen=7, last_alert=3, mean=.1, var=.2, last_z=.3, vmean=.4, vvar=.5,
                      smean=.6, svar=.7, level=.8, local=.9, ring=RING, value_start=1,
                      shift=1.1, shift_slow=1.2, shmean=1.3, shvar=1.4, shift_seen=5,
                      season_rate=.02, lik_short=1.5, lik_mean=1.6, lik_var=1.7, lik_seen=6,
                      slope=1.8, value_rate=.03, value_tail=.4, value_last=4,
                      shift_slope=1.9, burst_level=2.1, burst_mean=2.2, burst_var=2.3,
                      burst_seen=8, burst_rate=.04, burst_tail=.5, burst_last=6, vexcess=2.4,
                      alert_z=2.5, recent=array("f", [1.0, 2.0, 3.0]),
                      shapes=array("f", [4.0, 5.0, 6.0] * 2), shape_at=array("q", [2, 6]))
    assert DetectorState.from_bytes(a.to_bytes()) == a


def test_a_state_written_before_value_start_was_kept_started_at_window_zero() -> None:
    data = DetectorState(seen=5, ring=RING, value_start=2).to_bytes()
    assert DetectorState.from_bytes(data[:-8]).value_start == 0


@pytest.mark.parametrize("cut", [1, 3, 20])
def test_a_length_that_fits_no_layout_is_refused(cut: int) -> None:
    data = DetectorState(seen=5, ring=RING, value_start=2, lik_seen=4).to_bytes()
    with pytest.raises(ValueError, match="corrupt"):
        DetectorState.from_bytes(data[:-cut])


@pytest.mark.parametrize("cut", [1, 4, 8, 17])
def test_a_cut_recurrence_tail_is_refused(cut: int) -> None:
    data = DetectorState(seen=5, ring=RING, value_start=2, recent=array("f", [1.0, 2.0]),
                         shapes=array("f", [3.0, 4.0]), shape_at=array("q", [4])).to_bytes()
    with pytest.raises(ValueError, match="corrupt"):
        DetectorState.from_bytes(data[:-cut])
