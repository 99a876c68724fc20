"""NAB scoring (Lavin & Ahmad 2015), a pure re-implementation of NAB's ``sweeper.py``.

A detector's alerts on one file are scored against labelled anomaly windows::

    rows:      0 .......... 15% (max 750) ......... [ window ]  ...... [ window ] ......
    scored:    |-- probationary, ignored --|  yes    yes  yes   yes      yes       yes
    alert in window:   A_TP * scaledSigmoid(position) / scaledSigmoid(-1)
                       position = -(right - i + 1) / width: -1 at the left edge, ~0 at the
                       right edge, so early detection earns ~A_TP and late detection ~0;
                       only the best (= earliest) alert in a window counts.
    missed window:     -A_FN
    alert outside:     A_FP * scaledSigmoid((i - prev_right) / (prev_width - 1)), which is
                       slightly negative just after a window and -A_FP far from it;
                       -A_FP before the first window.

``scaledSigmoid(x) = 2 / (1 + exp(5x)) - 1`` (and -1 for x > 3). The raw score of a file
is the sum of those parts; a corpus is normalised as ``100 (S - S_null) / (S_perfect -
S_null)`` with ``S_null`` the score of a detector that never alerts and ``S_perfect =
A_TP * number of labelled windows`` (NAB's ``runner.normalize``).

One deliberate difference: NAB divides by ``prev_width - 1`` and so fails on a one-row
window; here that denominator is at least 1.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from stream_detector.exceptions import DataError

__all__ = [
    "PROBATION_PERCENT",
    "PROFILES",
    "CorpusScore",
    "CostMatrix",
    "FileScore",
    "load_windows",
    "probationary_length",
    "scaled_sigmoid",
    "score_corpus",
    "score_file",
    "sweep_scores",
    "window_indices",
]

PROBATION_PERCENT = 0.15


@dataclass(frozen=True)
class CostMatrix:
    """Weights of one NAB application profile (``config/profiles.json``)."""

    tp: float
    fp: float
    fn: float
    tn: float = 1.0


PROFILES: dict[str, CostMatrix] = {
    "standard": CostMatrix(tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": CostMatrix(tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": CostMatrix(tp=1.0, fp=0.11, fn=2.0),
}


@dataclass(frozen=True)
class FileScore:
    """Raw NAB score of one file and NAB's row counts (scored rows only)."""

    score: float
    tp: int
    fp: int
    fn: int
    tn: int
    windows: int
    detected_windows: int

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class CorpusScore:
    """Summed raw scores over files and the normalised score (100 perfect, 0 null)."""

    raw: float
    null: float
    perfect: float
    normalized: float
    files: dict[str, FileScore] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "raw": self.raw,
            "null": self.null,
            "perfect": self.perfect,
            "normalized": self.normalized,
            "files": {name: s.to_dict() for name, s in self.files.items()},
        }


def scaled_sigmoid(position: float | np.ndarray) -> np.ndarray:
    """NAB's ``scaledSigmoid``: 0.98661 at -1 (window start), 0 at 0 (window end), -1 past 3.

    >>> [round(float(v), 5) for v in scaled_sigmoid(np.array([-1.0, -0.5, 0.0, 1.0, 3.5]))]
    [0.98661, 0.84828, 0.0, -0.98661, -1.0]
    """
    x = np.asarray(position, dtype=np.float64)
    # Clip before exp: positions far past a window would overflow (and warn) otherwise.
    value = 2.0 / (1.0 + np.exp(5.0 * np.minimum(x, 3.5))) - 1.0
    return np.where(x > 3.0, -1.0, value)


def probationary_length(rows: int, percent: float = PROBATION_PERCENT) -> int:
    """Rows at the start of a file that are not scored: 15% of them, at most 750.

    >>> probationary_length(1000), probationary_length(15902)
    (150, 750)
    """
    return int(min(math.floor(percent * rows), math.floor(percent * 5000)))


def window_indices(
    timestamps: np.ndarray, windows: Sequence[tuple[object, object]]
) -> list[tuple[int, int]]:
    """Map ``[start, end]`` window times to inclusive row indices of sorted ``timestamps``.

    NAB requires both edges to be row timestamps; here the window covers every row with
    ``start <= t <= end``, which is the same when they are.
    """
    stamps = np.asarray(timestamps).astype("datetime64[ns]")
    result: list[tuple[int, int]] = []
    for start, end in windows:
        lo = pd.Timestamp(str(start)).to_datetime64().astype("datetime64[ns]")
        hi = pd.Timestamp(str(end)).to_datetime64().astype("datetime64[ns]")
        left = int(np.searchsorted(stamps, lo, side="left"))
        right = int(np.searchsorted(stamps, hi, side="right")) - 1
        if right < left:
            raise DataError(f"window [{start}, {end}] contains no row; check the labels")
        if result and left <= result[-1][1]:
            raise DataError(f"window [{start}, {end}] overlaps or precedes the one before it")
        result.append((left, right))
    return result


def sweep_scores(
    rows: int, windows: Sequence[tuple[int, int]], profile: CostMatrix
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted score each row would earn if it alerted, and its window id (-1 outside).

    The first array is NAB's per-row ``S(t)`` column (probation not yet applied).
    """
    sweep = np.full(rows, -profile.fp)  # before the first window: far from any window
    window_of = np.full(rows, -1, dtype=np.int64)
    max_tp = float(scaled_sigmoid(-1.0))
    index = np.arange(rows)
    bounds = [*windows, (rows, rows)]
    for k, (left, right) in enumerate(windows):
        width = right - left + 1
        inside = index[left : right + 1]
        sweep[left : right + 1] = (
            scaled_sigmoid(-(right - inside + 1) / width) * profile.tp / max_tp
        )
        window_of[left : right + 1] = k
        after = index[right + 1 : bounds[k + 1][0]]
        sweep[after] = scaled_sigmoid((after - right) / max(width - 1, 1)) * profile.fp
    return sweep, window_of


def score_file(
    detections: np.ndarray,
    windows: Sequence[tuple[int, int]],
    profile: CostMatrix | str = "standard",
    probation_percent: float = PROBATION_PERCENT,
) -> FileScore:
    """NAB score of one file from boolean ``detections`` (n,) and inclusive window rows.

    To score real-valued anomaly scores at a threshold, pass ``scores >= threshold``
    (NAB's ``scoreDataSet`` counts a row as an alert when its score reaches the threshold).
    """
    costs = PROFILES[profile] if isinstance(profile, str) else profile
    alerts = np.asarray(detections, dtype=bool)
    sweep, window_of = sweep_scores(alerts.size, windows, costs)
    scored = np.arange(alerts.size) >= probationary_length(alerts.size, probation_percent)
    fired = alerts & scored
    inside = window_of >= 0
    total = float(sweep[fired & ~inside].sum())
    # Windows whose rows all fall in the probationary period are not scored at all (as NAB).
    live = np.unique(window_of[scored & inside])
    detected = 0
    for k in live:
        hits = sweep[fired & (window_of == k)]
        detected += int(hits.size > 0)
        total += float(hits.max()) if hits.size else -costs.fn
    return FileScore(
        score=total,
        tp=int((fired & inside).sum()),
        fp=int((fired & ~inside).sum()),
        fn=int((~alerts & scored & inside).sum()),
        tn=int((~alerts & scored & ~inside).sum()),
        windows=int(live.size),
        detected_windows=detected,
    )


def score_corpus(
    detections: Mapping[str, np.ndarray],
    windows: Mapping[str, Sequence[tuple[int, int]]],
    profile: CostMatrix | str = "standard",
    probation_percent: float = PROBATION_PERCENT,
) -> CorpusScore:
    """Sum per-file scores and normalise against the null and perfect detectors.

    Every file in ``detections`` needs an entry in ``windows`` (possibly empty); score each
    NAB group (``realTweets``, ...) separately to get NAB's per-group numbers.
    """
    costs = PROFILES[profile] if isinstance(profile, str) else profile
    missing = sorted(set(detections) - set(windows))
    if missing:
        raise DataError(f"no label windows for {missing}; add them (an empty list if none)")
    files = {
        name: score_file(alerts, windows[name], costs, probation_percent)
        for name, alerts in detections.items()
    }
    null = sum(
        score_file(np.zeros(len(alerts), bool), windows[name], costs, probation_percent).score
        for name, alerts in detections.items()
    )
    perfect = costs.tp * sum(len(windows[name]) for name in detections)
    raw = sum(s.score for s in files.values())
    span = perfect - null
    normalized = 100.0 * (raw - null) / span if span > 0 else 0.0
    return CorpusScore(raw, null, perfect, normalized, files)


def load_windows(path: str | Path) -> dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]]:
    """Read NAB's ``combined_windows.json``: ``{"group/file.csv": [[start, end], ...]}``."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read label windows ({exc})") from exc
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected an object of file name -> list of windows")
    result: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]] = {}
    for name, pairs in raw.items():
        try:
            result[name] = [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in pairs]
        except (TypeError, ValueError) as exc:
            raise DataError(
                f"{path}: windows of {name!r} must be [start, end] pairs ({exc})"
            ) from exc
    return result
