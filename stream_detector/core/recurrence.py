"""Recurrence: a window whose shape repeats one of the key's recent pages is not news.

A bursty key (tweet counts, request rates) has its own repertoire of excursions: a bot
that posts for an hour every few days, a daily job that doubles the traffic for a while.
Each of them scores far above the threshold against the key's noise, and the per-window
statistics of :mod:`stream_detector.core.components` cannot tell the fifth such plateau
from a first incident. A person who has been paged for one recognises the next by its
shape. So each key keeps the shapes of its last ``recur_memory`` pages: the last
``recur`` values (one per window, the model's window by default) at the moment it paged.
On a bursty key (the short-term forecast's trust below ``recur_trust``, 0.5 by default:
:func:`~stream_detector.core.components.value_trust`) a window that would page is held
back when its own last ``recur`` values

- correlate with a kept shape at Pearson r >= ``recur_corr`` at some shift of up to
  ``recur_lag`` x ``recur`` values (the same shape, wherever it started inside the span), and
- are at most ``recur_size`` times that shape's size (the largest absolute deviation from
  its median; a larger excursion of the same shape still pages), and
- that shape was kept at most ``recur_horizon`` windows ago (a month by default: a
  pattern last paged for long ago is news again; a held-back repeat does not renew it).

An excursion that outlasts the kept one by more than the shift allowed pages (its shape no
longer matches): holding back the rest of a repeat's excursion as well lost 5 of the 33
realTweets windows (news that starts like the key's routine bursts, then goes on).

Pearson r of two z-normalised subsequences is the z-normalised Euclidean distance of the
matrix-profile literature, ``d^2 = 2 L (1 - r)`` (Mueen et al., "MASS", 2015; Yeh et al.,
"Matrix Profile I", ICDM 2016); a window far from every earlier subsequence is a *left
discord* (Lu et al., "DAMP", KDD 2022). DAMP searches the whole past; a key here keeps
only its pages' shapes, so its state stays bounded (4 x ``recur`` + 8 bytes per shape) and
the search runs only when a window would page. A window across a gap in the key's data
(judged, not learnt) still adds its value to the last ``recur``: the shape is what the key
showed. The NPLM stage of a hybrid model pages on samples, not windows, and is not held back.

On a key whose residuals look Gaussian (trust near 1: a taxi feed's holidays, a machine's
repeated faults) each such page stays news: without the trust condition the generated
taxi feeds at half the anomaly size lost one of their repeated holiday-like days.

Measured (``benchmarks/detection_quality.py``): NAB realTweets 94 -> 66 false positives
with every window still found (standard score 79.3 -> 83.3); no change on the artificial
groups, the demo's kinds or the generated series of other shapes. Looser matching
(r >= 0.775, shifts of 0.375 x ``recur``) holds back a labelled window's first page too.

>>> from stream_detector.core.detection import DetectionParams, DetectorState
>>> p = DetectionParams(recur=6, recur_memory=2, recur_lag=0.0, recur_horizon=100,
...                     recur_trust=2.0)  # every key
>>> s = DetectorState()
>>> for v in [1, 1, 1, 9, 5, 2]:
...     observe(s, float(v), p)
>>> s.seen = 6
>>> recurs(s, p), keep(s, p)  # nothing kept yet; the page keeps its shape
(False, None)
>>> for v in [1, 1, 1, 10, 6, 2]:  # the same burst, a bit larger
...     observe(s, float(v), p)
>>> s.seen = 12
>>> recurs(s, p)
True
>>> for v in [1, 1, 1, 30, 15, 4]:  # the same shape, three times the size: news
...     observe(s, float(v), p)
>>> recurs(s, p)
False
"""

from __future__ import annotations

import math
from array import array
from typing import TYPE_CHECKING, Final

import numpy as np

from stream_detector.core.components import trust_now

if TYPE_CHECKING:
    from stream_detector.core.detection import DetectionParams
    from stream_detector.core.detector_state import DetectorState

__all__ = ["RECUR_MAX", "RECUR_MEMORY_MAX", "RECUR_MIN", "keep", "match_size", "observe",
           "recurs"]

RECUR_MIN: Final = 8  # fewest values training gives a page's shape (a correlation needs a few)
RECUR_MAX: Final = 256  # most values a shape may hold (``recur``)
RECUR_MEMORY_MAX: Final = 64  # most shapes a key may keep (``recur_memory``): with the
# longest shapes 64 KiB of state per key


def observe(state: DetectorState, value: float, p: DetectionParams) -> None:
    """Append the window's newest ``value`` to the key's last ``recur`` values (a NaN,
    a window without a value, is skipped)."""
    if p.recur <= 0 or p.recur_memory <= 0 or math.isnan(value):
        return
    recent = state.recent
    if len(recent) >= p.recur:
        del recent[: len(recent) - p.recur + 1]
    recent.append(value)


def recurs(state: DetectorState, p: DetectionParams) -> bool:
    """Whether the key's last ``recur`` values repeat a shape one of its pages kept within
    the last ``recur_horizon`` windows (:func:`match_size`); False while fewer are known,
    and on a key whose short-term forecast's trust is ``recur_trust`` or more."""
    n = len(state.shape_at)
    if n == 0 or len(state.recent) < p.recur or len(state.shapes) != n * p.recur:
        return False  # nothing kept, too few values yet, or shapes of another length
    if trust_now(state, p) >= p.recur_trust:
        return False  # a key whose residuals look Gaussian: each such page is news
    newest = state.seen - 1
    live = [i for i, at in enumerate(state.shape_at) if newest - at <= p.recur_horizon]
    if not live:
        return False
    kept = np.frombuffer(state.shapes, dtype=np.float32).reshape(n, p.recur)[live]
    current = np.frombuffer(state.recent, dtype=np.float32)[-p.recur:]  # (longer when a
    # model with a longer ``recur`` wrote it and no value has come since)
    return match_size(current, kept, round(p.recur_lag * p.recur), p.recur_corr,
                      p.recur_size) > 0


def keep(state: DetectorState, p: DetectionParams) -> None:
    """Keep the key's last ``recur`` values as the shape of the page it just made (the
    oldest kept shape goes once ``recur_memory`` are kept)."""
    if p.recur <= 0 or p.recur_memory <= 0 or len(state.recent) < p.recur:
        return
    if len(state.shapes) != len(state.shape_at) * p.recur:  # kept at another length
        state.shapes, state.shape_at = array("f"), array("q")
    state.shapes.extend(state.recent[-p.recur:])
    state.shape_at.append(state.seen - 1)
    extra = len(state.shape_at) - p.recur_memory
    if extra > 0:
        del state.shapes[: extra * p.recur]
        del state.shape_at[:extra]


def match_size(current: np.ndarray, kept: np.ndarray, lag: int, corr: float, size: float
               ) -> float:
    """The size of a shape of ``kept`` (n, L) that ``current`` (L,) repeats at at most
    ``size`` times its size; 0.0 when it repeats none.

    Shape: Pearson r >= ``corr`` over the overlap at some shift of up to ``lag`` values
    either way. Size (:func:`_size`): the largest absolute deviation from the median; a
    kept shape of size 0 (a flat stretch) matches nothing.

    >>> burst = np.array([0, 0, 5, 9, 4, 1, 0, 0], dtype=np.float32)
    >>> match_size(np.roll(burst, 2), burst[None, :], 2, 0.8, 1.2)  # shifted by 2
    8.5
    >>> match_size(np.roll(burst, 2), burst[None, :], 0, 0.8, 1.2)  # no shift allowed
    0.0
    >>> match_size(-burst, burst[None, :], 2, 0.8, 1.2)  # a dip is another shape
    0.0
    """
    cur = current.astype(np.float64)
    ref = kept.astype(np.float64)
    sizes = _size(ref)
    fits = (sizes > 0) & (_size(cur) <= size * sizes)
    ref, sizes = ref[fits], sizes[fits]
    n = cur.size
    for shift in range(-min(lag, n - 2), min(lag, n - 2) + 1):
        if ref.shape[0] == 0:
            break
        a = cur[max(0, shift): n + min(0, shift)]
        b = ref[:, max(0, -shift): n + min(0, -shift)]
        a = a - a.mean()
        b = b - b.mean(axis=1, keepdims=True)
        norm = np.sqrt(float(a @ a) * (b * b).sum(axis=1))
        hit = np.flatnonzero((norm > 0) & ((b @ a) >= corr * norm))
        if hit.size:
            return float(sizes[hit[0]])
    return 0.0


def _size(values: np.ndarray) -> np.ndarray:
    """The largest absolute deviation of ``values`` (..., L) from their median, per row."""
    return np.asarray(np.abs(values - np.median(values, axis=-1, keepdims=True)).max(axis=-1))
