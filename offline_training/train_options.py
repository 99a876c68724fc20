"""What ``stream-detector train`` takes and returns: its options, the defaults they fall back
on (the default model and its detection and threshold rules) and the report.

:func:`offline_training.train.train` runs the training flow; :mod:`offline_training.train_card`
builds the card from these options.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from offline_training.durations import DURATION_DEFAULTS
from offline_training.trainer import TrainConfig, TrainResult
from schemas.card import ModelCard
from schemas.kinds import CalibrationMethod, RecordKind

__all__ = ["DEFAULTS", "EVENT_DETECTION", "PARITY_RTOL", "TrainOptions", "TrainReport",
           "detection_defaults"]

# The default model: what `train` builds without --model. Chosen on NAB realTweets and
# the two artificial groups under the causal protocol (benchmarks/detection_quality.py), one
# configuration for all: a small dense AE on 24-step windows of standard-scaled values,
# scoring the newest 8 steps; its log score and the value's change from one season earlier
# (a day: detection.season_rows of the training cadence) are z-scores against the key's own
# history, the detection score is the larger (the seasonal one weighed 0.6; the anomaly
# likelihood of the score itself weighed 1, like every z; the value's residual from a
# short-term forecast, with its own trust: a one-step spike the others smooth over; a
# short-term mean of its square against its history, with the same trust: a variance
# burst; the level-shift baseline follows a slope and holds still during a shift; the
# variance the forecast residual's exceedances add fades in 0.4 of the half-life, so an
# anomaly does not widen the key's spread for days), alerting at 5.5 sigma at most once a
# day (288 five-minute windows) and, on a key whose values burst often and far, only at a
# score near its last page's (a bar that halves every 2.5 days), and at steps of up to 15
# minutes only when the window before was high too (0.75 of the threshold) or the
# short-term forecast alone sees a spike (realTweets 112 -> 105 false positives, one-window
# AE blips); a page the AE component leads habituates at 1.75 instead of 1.5 (realTweets
# 105 -> 94: AE excursions a few days after the key's page before); a window whose shape
# repeats one of the key's last 8 pages of the last 30 days (r >= 0.825, at most 1.2 times
# its size) does not page on a bursty key (trust < 0.5; stream_detector/core/recurrence.py:
# realTweets 94 -> 66 false positives, every window still found). The detection defaults
# hold for every family on series and sales; events have their own (EVENT_DETECTION).
# Series are scaled without a log: on counts, log1p blows up the noise of the quiet hours
# (0 -> 1 -> 0 tweets) until it drowns real spikes (NAB 41-50 with log1p, 61-63 without,
# over three seeds).
DEFAULTS: dict[str, Any] = {
    "family": "dense", "window": 24, "last": 8,
    "transform": {"series": "none", "sales": "log1p", "events": "none"},
    # durations, turned into windows with the learned cadence (offline_training/durations.py)
    "detection": {**DURATION_DEFAULTS, "offset_factor": 3.0, "season_weight": 0.6,
                  "shift_weight": 1.0, "season_gate": 1.0, "likelihood_weight": 1.0,
                  "value_weight": 1.0, "value_trend": 0.3, "value_gate": 1.0,
                  "shift_trend": 0.015, "shift_hold": 3.0, "burst_weight": 1.0,
                  "burst_gate": 1.0, "value_excess": 0.4, "habituate": 1.5,
                  "habituate_ae": 1.75, "confirm": 0.75, "collapse": 1.0,
                  "recur_memory": 8},
    "threshold_method": {True: "sigma", False: "percentile"},  # by detection.normalise
    # how the score weighs features, per record kind (offline_training.models.ScoringHead):
    # "spread" divides each feature's squared error by its spread on the held-out validation
    # windows and takes the root mean square. Events: ROC AUC 0.86 -> 0.97 between signal and
    # background (benchmarks/detection_quality.py); series stay plain (one feature).
    "error_norm": {"events": "spread"},
    "threshold_value": {"sigma": 5.5, "percentile": 99.5, "contamination": 0.005,
                        "fpr": 0.005},
}

# Events are independent feature vectors (a trigger's physics events, a fleet's readings):
# the series defaults judged each against a history of 288 events, kept a key silent for its
# first 288 and for 288 after each alert, and so dropped about three of four detected
# anomalies (37 of 42 signal events scored above the threshold, 10 alerted). Each event is
# now judged alone, on its raw score, against a percentile of the validation scores.
EVENT_DETECTION: dict[str, Any] = {"normalise": False, "warmup": 0, "suppress": 0}


def detection_defaults(kind: str) -> dict[str, Any]:
    """The detection section a record kind starts from (a copy): events their own
    (:data:`EVENT_DETECTION`), series and sales ``DEFAULTS["detection"]``."""
    return dict(EVENT_DETECTION if kind == "events" else DEFAULTS["detection"])

# Export parity of a trained model: 1e-5 absolute plus this share of its largest output.
PARITY_RTOL = 1e-5


@dataclass
class TrainOptions:
    """Everything ``train`` needs; the CLI fills it from flags and an optional config file."""

    data: Path
    out: Path
    family: str = DEFAULTS["family"]
    kind: RecordKind | None = None
    key: str | None = None
    name: str | None = None
    version: str | None = None
    window: int | None = None
    stride: int = 1
    last: int | None = None  # score the newest `last` steps of a window (None: all)
    train_fraction: float | None = None
    train_until: str | None = None
    scaler: str = "standard"
    transform: str | None = None
    threshold_method: CalibrationMethod | None = None  # None: sigma when scores are normalised
    threshold_value: float | None = None  # None: the method's default (DEFAULTS)
    error_norm: str | None = None  # "none" or "spread"; None: the record kind's (DEFAULTS)
    per_key_thresholds: bool = False
    model_config: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    detection: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    plots: bool = True
    nplm: dict[str, Any] = field(default_factory=dict)  # hybrid: offline_training.hybrid
    strict_time: bool = False  # refuse repeated/out-of-order times (default: flag them)
    missing: Literal["reject", "impute"] = "reject"  # empty/NaN/inf values: refuse or fill in
    step: Callable[[str], None] = field(default=lambda _: None, repr=False)  # progress text
    # which keys the model serves in a worker: "trained" (the keys in the data), "all" (every
    # key of its kind) or "pattern:REGEX"; None: trained for series, all for sales and events
    serves: str | None = None


@dataclass
class TrainReport:
    """Where the model went and what it took."""

    path: Path
    card: ModelCard
    result: TrainResult
    seconds: float
    plots: list[Path] = field(default_factory=list)
    time_line: str = ""  # what the time policy flagged in the data (files.time_report)
    per_key_line: str = ""  # why --per-key-thresholds stored fewer than the keys (or "")
    plots_line: str = ""  # why a plot was not written (or "")
