"""Detection settings as durations: the same defaults for 1-minute, 5-minute, hourly and
daily data.

The detector counts in windows (``stream_detector.core.detection``: half-life, warm-up, quiet
period after an alert and the half-life of the bar a page sets). Written as window counts,
one default cannot fit every cadence: 288 windows is a day of 5-minute data but ten months
of daily sales, during which a key could not alert. So ``train`` keeps these settings as
durations and turns them into windows with the cadence it learned (stored in the card's
``time`` section), within floors that keep the key's history statistically meaningful on
slow data::

    setting    duration   floor    cap    1-min   5-min   hourly   daily
    halflife   1 day      30              1440     288       30      30
    warmup     1 day      30       288     288     288       30      30
    suppress   1 day      window   288     288     288       24      24
    habituate_halflife
               2.5 days    1              3600     720       60       3
    recur_horizon
               30 days     1             43200    8640      720      30

(``window``: the windows one record stays in, 24 by default: a bad day is in the input of
the next 24 daily windows, and with a 1-window quiet period it paged 16 days in a row.)

The warm-up and the quiet period after a page take at most ``max_windows`` windows
(:data:`MAX_WINDOWS`, 288: a day of 5-minute windows; 0: no cap). A key's statistics need
a number of observations, not a duration; at 1-minute steps a day was 1,440 windows (8,640
at 10 seconds), so a key could not alert in its first day, and an incident silenced the key
for a day: on the generated held-out sensors (1-minute rows, 2.8 days a file) the default
missed two thirds of the windows (4 of the 6 fault levels in the first day, the rest within
a day of an earlier page). The seasonal components keep their own warm-up of a season.

The card's ``detection`` section holds the resulting window counts (what the worker reads)
and the durations they came from (``*_s``). A window count given explicitly (``--config``
``detection: {warmup: 50}``) wins over the duration.

``confirm`` (a window pages only when the key's previous window was high too) holds at
steps of up to ``confirm_step_s`` (default :data:`CONFIRM_STEP_S`, 15 minutes) and is set
to 0 at slower ones: a one-window blip of 5-minute counts is usually noise, but an hour or
a day that stands out is an incident on its own.
"""

from __future__ import annotations

import math
from typing import Any, Final

__all__ = ["CAPPED", "CONFIRM_STEP_S", "DURATION_DEFAULTS", "FLOORS", "FALLBACK_WINDOWS",
           "MAX_WINDOWS", "detection_windows"]

DAY: Final = 86_400.0
DURATION_DEFAULTS: Final[dict[str, float]] = {"halflife_s": DAY, "warmup_s": DAY,
                                              "suppress_s": DAY,
                                              "habituate_halflife_s": 2.5 * DAY,
                                              "recur_horizon_s": 30 * DAY}
FLOORS: Final[dict[str, int]] = {"halflife": 30, "warmup": 30, "suppress": 1,
                                 "habituate_halflife": 1, "recur_horizon": 1}
FALLBACK_WINDOWS: Final = 288  # no cadence known: a day is the old window-count default
CONFIRM_STEP_S: Final = 900.0  # longest step at which ``confirm`` holds (15 minutes)
MAX_WINDOWS: Final = 288  # most windows a warm-up or quiet period takes from its duration
CAPPED: Final = ("warmup", "suppress")  # the settings ``max_windows`` caps


def detection_windows(
    section: dict[str, Any], cadence_s: float | None, stride: int = 1, span: int = 1
) -> dict[str, Any]:
    """``section`` with every ``<name>_s`` duration turned into a ``<name>`` window count.

    ``span``: the windows one record stays in (window / stride), the floor of a quiet
    period from a duration: on daily sales a day's quiet period was 1 window while a bad
    day stays in the next 24 windows' input, and one bad day paged 16 days in a row. The
    warm-up and quiet period take at most ``section["max_windows"]`` windows
    (:data:`MAX_WINDOWS` when absent, 0: no cap); a window count given explicitly is kept.

    >>> detection_windows({"warmup_s": 86_400.0}, 86_400.0)["warmup"]  # daily data
    30
    >>> detection_windows({"warmup_s": 86_400.0}, 300.0)["warmup"]  # 5-minute data
    288
    >>> [detection_windows({"suppress_s": 86_400.0}, s, span=24)["suppress"]
    ...  for s in (300.0, 86_400.0)]  # a day, at least the windows a record stays in
    [288, 24]
    >>> detection_windows({"warmup_s": 86_400.0, "warmup": 50}, 300.0)["warmup"]
    50
    >>> [detection_windows({"suppress_s": 86_400.0, **cap}, 60.0)["suppress"]
    ...  for cap in ({}, {"max_windows": 0})]  # 1-minute data: capped, and without the cap
    [288, 1440]
    >>> detection_windows({"habituate_halflife_s": 216_000.0}, None)["habituate_halflife"]
    720
    >>> [detection_windows({"confirm": 0.75}, s)["confirm"] for s in (300.0, 3600.0, None)]
    [0.75, 0.0, 0.75]
    """
    out = dict(section)
    step = cadence_s * stride if cadence_s and cadence_s > 0 else None
    cap = int(out.get("max_windows", MAX_WINDOWS))
    for name, floor in FLOORS.items():
        seconds = out.get(f"{name}_s")
        if seconds is None or name in section:
            continue
        windows = (round(FALLBACK_WINDOWS * float(seconds) / DAY) if step is None
                   else math.ceil(float(seconds) / step))
        if name in CAPPED and cap > 0:
            windows = min(windows, cap)
        out[name] = max(floor, span if name == "suppress" else 1, windows)
    if out.get("confirm") and step is not None and step > float(
            out.get("confirm_step_s", CONFIRM_STEP_S)):
        out["confirm"] = 0.0  # an hour or a day that stands out is an incident on its own
    return out
