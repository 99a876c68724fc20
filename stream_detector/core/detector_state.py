"""One key's detection history (:class:`DetectorState`) and its bytes.

:mod:`stream_detector.core.detection` updates the state one window at a time; this module
holds its fields and their compact binary form, which the worker's changelog keeps inside
each key's :class:`~stream_detector.core.key_state.KeyState`. The layout grew as components
were added; each addition is a tail after the last, written only once its part has started,
so a model without it keeps its states' size and a state written before it still loads
(the missing parts start fresh)::

    head (40)   seen, last alert, AE mean, var, last z            the AE component only
    extra (52)  value / season / smoothing stats, ring length n   once values are used
    ring (4 n)  the last season of values (float32)
    start (8)   the window the value components started at
    shift (40)  shift levels, mean, var, count                    once shift or later started
    gate (8)    the seasonal exceedance rate                      once the seasonal trust has
    lik (32)    the likelihood's short mean, mean, var, count     once the likelihood has
    point (32)  value slope, rate, tail, last exceedance          once the value trust has
    burst (64)  shift slope; burst level, mean, var, count, rate,  once the burst or the
                tail, last exceedance                              shift's slope has
    excess (8)  the value residual's variance from exceedances     once it is non-zero
    page (8)    the detection score of the last page               once habituation has
    recur (12 + 4 r + 4 m + 8 k)  the last r values, the k kept      once recurrence has
                page shapes (m values) and the windows they paged at
"""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass, field
from typing import Final

from stream_detector.core.components import GAUSSIAN_RATE, gaussian_tail

__all__ = ["DetectorState"]

_STATE: Final = struct.Struct("<qqddd")  # v1: the AE history only (40 bytes)
_EXTRA: Final = struct.Struct("<ddddddI")  # v2: value, season, smoothing, ring length
_START: Final = struct.Struct("<q")  # after the ring: the window value components started at
_SHIFT: Final = struct.Struct("<ddddq")  # after that: shift levels, mean, var, count
_GATE: Final = struct.Struct("<d")  # after that: the seasonal exceedance rate (season_gate)
_LIK: Final = struct.Struct("<dddq")  # after that: the likelihood's short mean, mean, var, count
_POINT: Final = struct.Struct("<dddq")  # after that: value slope, rate, tail, last exceedance
_BURST: Final = struct.Struct("<ddddqddq")  # after that: shift slope, burst level, mean, var,
# count, rate, tail, last exceedance
_EXCESS: Final = struct.Struct("<d")  # after that: the value variance exceedances added
_PAGE: Final = struct.Struct("<d")  # after that: the detection score of the last page
_RECUR: Final = struct.Struct("<III")  # after that: counts of recent values, shape values and
# shapes, then those arrays (float32, float32, int64)
_NEVER: Final = -(2**62)  # ``value_last`` of a key that has never exceeded (a window long past)


@dataclass
class DetectorState:
    """One key's detection history: 40 bytes with the AE component only, else 100 plus
    4 per seasonal step (plus 40 once the shift component, 48 once the seasonal trust has
    started, 80 once the likelihood stage has, 112 once the value component's trust or
    slope has, 176 once the burst component or the shift's slope has, 184 once the value
    residual's exceedances have added variance: ``value_excess``, 192 once a page has set a
    habituation bar: ``habituate``; then 12 plus 4 per recent value, 4 per kept shape value
    and 8 per kept shape once recurrence has started: ``recur_memory``)."""

    seen: int = 0
    last_alert: int = -(2**62)
    mean: float = 0.0  # AE component: log raw scores
    var: float = 0.0
    last_z: float = 0.0
    vmean: float = 0.0  # value component
    vvar: float = 0.0
    smean: float = 0.0  # season component: value minus the value a season earlier
    svar: float = 0.0
    level: float = 0.0  # short-term mean of the detection score (``smooth``)
    local: float = 0.0  # short-term level of the values (``local_halflife``)
    ring: array[float] = field(default_factory=lambda: array("f"))  # last season of values
    value_start: int = -1  # the window the value components started at (-1: not yet)
    shift: float = 0.0  # shift component: short-term mean of seasonal differences
    shift_slow: float = 0.0  # ... and their longer-term mean
    shmean: float = 0.0
    shvar: float = 0.0
    shift_seen: int = 0  # seasonal differences the shift history has seen (0: fresh)
    season_rate: float = GAUSSIAN_RATE  # share of windows with a seasonal |z| > gate_cut
    lik_short: float = 0.0  # likelihood stage: short-term mean of |detection score|
    lik_mean: float = 0.0  # ... and the long-term mean and variance of that short mean
    lik_var: float = 0.0
    lik_seen: int = 0  # short means the long-term history has seen (0: fresh)
    slope: float = 0.0  # value component: short-term slope of the values (``value_trend``)
    value_rate: float = GAUSSIAN_RATE  # ... its share of windows starting |z| > gate_cut
    value_tail: float = field(default_factory=lambda: gaussian_tail(3.0))  # ... their log size
    value_last: int = _NEVER  # ... and the window it last exceeded gate_cut at
    shift_slope: float = 0.0  # shift component: slope of its longer-term mean (shift_trend)
    burst_level: float = 1.0  # burst component: short-term mean of squared value z-scores
    burst_mean: float = 0.0  # ... and the history of its log
    burst_var: float = 0.0
    burst_seen: int = 0  # ... levels that history has seen (0: fresh)
    burst_rate: float = GAUSSIAN_RATE  # ... its trust: share of windows starting |z| > cut
    burst_tail: float = field(default_factory=lambda: gaussian_tail(3.0))  # their log size
    burst_last: int = _NEVER  # ... and the burst window it last exceeded gate_cut at
    vexcess: float = 0.0  # value component: the variance its exceedances added (value_excess)
    alert_z: float = 0.0  # detection score of the last page (habituation; 0: none kept)
    recent: array[float] = field(default_factory=lambda: array("f"))  # last ``recur`` values
    shapes: array[float] = field(default_factory=lambda: array("f"))  # kept page shapes
    shape_at: array[int] = field(default_factory=lambda: array("q"))  # ... and their windows

    def to_bytes(self) -> bytes:
        head = _STATE.pack(self.seen, self.last_alert, self.mean, self.var, self.last_z)
        lik = self.lik_seen > 0
        if self.value_start < 0 and not self.ring and self.level == 0.0 and not lik and (
                not self.recent):
            return head
        extra = _EXTRA.pack(self.vmean, self.vvar, self.smean, self.svar, self.level,
                            self.local, len(self.ring))
        recur = bool(self.recent)
        paged = self.alert_z != 0.0 or recur
        excess = paged or self.vexcess != 0.0
        burst = excess or self.burst_seen > 0 or self.shift_slope != 0.0
        point = burst or self.value_last != _NEVER or self.slope != 0.0 or (
            self.value_rate != GAUSSIAN_RATE)
        lik = lik or point
        gated = self.season_rate != GAUSSIAN_RATE or lik
        tail = b"" if not (self.shift_seen or gated) else _SHIFT.pack(
            self.shift, self.shift_slow, self.shmean, self.shvar, self.shift_seen)
        if gated:
            tail += _GATE.pack(self.season_rate)
        if lik:
            tail += _LIK.pack(self.lik_short, self.lik_mean, self.lik_var, self.lik_seen)
        if point:
            tail += _POINT.pack(self.slope, self.value_rate, self.value_tail, self.value_last)
        if burst:
            tail += _BURST.pack(self.shift_slope, self.burst_level, self.burst_mean,
                                self.burst_var, self.burst_seen, self.burst_rate,
                                self.burst_tail, self.burst_last)
        if excess:
            tail += _EXCESS.pack(self.vexcess)
        if paged:
            tail += _PAGE.pack(self.alert_z)
        if recur:
            tail += _RECUR.pack(len(self.recent), len(self.shapes), len(self.shape_at)) + (
                self.recent.tobytes() + self.shapes.tobytes() + self.shape_at.tobytes())
        return head + extra + self.ring.tobytes() + _START.pack(self.value_start) + tail

    @classmethod
    def from_bytes(cls, data: bytes) -> DetectorState:
        """Read :meth:`to_bytes`; older, shorter layouts start the missing parts fresh.

        Raises ``ValueError`` when the length fits no layout (a corrupt key state)."""
        state = cls(*_STATE.unpack_from(data))
        if len(data) == _STATE.size:
            return state
        *stats, n = _EXTRA.unpack_from(data, _STATE.size)
        start = _STATE.size + _EXTRA.size
        end = start + 4 * n
        tails = len(data) - end - _START.size
        full = _SHIFT.size + _GATE.size + _LIK.size
        point = full + _POINT.size
        burst = point + _BURST.size
        paged = burst + _EXCESS.size + _PAGE.size
        if tails in (0, _SHIFT.size, _SHIFT.size + _GATE.size, full, point, burst,
                     burst + _EXCESS.size, paged) or tails >= paged + _RECUR.size:
            (state.value_start,) = _START.unpack_from(data, end)
            if tails:  # written without it: the shift starts fresh
                (state.shift, state.shift_slow, state.shmean, state.shvar,
                 state.shift_seen) = _SHIFT.unpack_from(data, end + _START.size)
            at = end + _START.size + _SHIFT.size
            if tails > _SHIFT.size:  # written without it: the prior rate
                (state.season_rate,) = _GATE.unpack_from(data, at)
            if tails > _SHIFT.size + _GATE.size:  # written without it: the stage starts fresh
                (state.lik_short, state.lik_mean, state.lik_var,
                 state.lik_seen) = _LIK.unpack_from(data, at + _GATE.size)
            if tails > full:  # written without it: the value component's trust starts fresh
                (state.slope, state.value_rate, state.value_tail,
                 state.value_last) = _POINT.unpack_from(data, end + _START.size + full)
            if tails > point:  # written without it: the burst and the shift's slope start fresh
                (state.shift_slope, state.burst_level, state.burst_mean, state.burst_var,
                 state.burst_seen, state.burst_rate, state.burst_tail,
                 state.burst_last) = _BURST.unpack_from(data, end + _START.size + point)
            if tails > burst:  # written without it: no excess (the spread as it was)
                (state.vexcess,) = _EXCESS.unpack_from(data, end + _START.size + burst)
            if tails > burst + _EXCESS.size:  # written without it: no bar until the next page
                (state.alert_z,) = _PAGE.unpack_from(
                    data, end + _START.size + burst + _EXCESS.size)
            if tails > paged:  # written without it: no recent values, no kept shapes
                _read_recur(state, data, end + _START.size + paged)
        elif len(data) == end:  # written before value_start was kept: started at window 0
            state.value_start = 0
        else:
            raise ValueError("detector state has the wrong length (corrupt key state)")
        (state.vmean, state.vvar, state.smean, state.svar, state.level, state.local) = stats
        state.ring = array("f", data[start:end])
        return state


def _read_recur(state: DetectorState, data: bytes, at: int) -> None:
    """The recurrence tail at ``at``, which must end ``data``."""
    r, m, k = _RECUR.unpack_from(data, at)
    at += _RECUR.size
    if len(data) != at + 4 * (r + m) + 8 * k:
        raise ValueError("detector state has the wrong length (corrupt key state)")
    state.recent = array("f", data[at:at + 4 * r])
    state.shapes = array("f", data[at + 4 * r:at + 4 * (r + m)])
    state.shape_at = array("q", data[at + 4 * (r + m):])
