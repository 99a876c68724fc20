"""Habituation after a page (``habituate``, issue #11: on tweet counts an incident is followed
by more bursts of its size, which paged as new incidents: most of realTweets' false
positives)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from stream_detector.core.components import habituation_bar
from stream_detector.core.detection import DetectionParams, DetectorState, alerts_of, decide

ROWS = 96  # windows a day (15-minute windows), short to keep the test quick
BIG, FOLLOW_UP, LATE = 5 * ROWS + 10, (6 * ROWS + 40, 7 * ROWS + 50), 12 * ROWS + 20


def _params(habituate: float) -> DetectionParams:
    """The AE and the short-term forecast with its trust, as the default has them; the bar
    halves every 2.5 days."""
    return DetectionParams(halflife=ROWS, warmup=ROWS, suppress=ROWS, value_weight=1.0,
                           value_trend=0.3, value_gate=1.0, habituate=habituate,
                           habituate_halflife=2.5 * ROWS)


def _key(seed: int, bursty: bool) -> tuple[np.ndarray, np.ndarray]:
    """Values (a daily cycle, noise 5; bursty: 2% of windows carry a heavy-tailed burst) and
    raw AE scores (log-normal, sd 0.3) with the injected incidents: a score 30 sigmas out on
    day 5, two of 12 sigmas on days 6 and 7 and one of 12 sigmas on day 12."""
    rng = np.random.default_rng(seed)
    n = 14 * ROWS
    t = np.arange(n)
    values = 100 + 30 * np.sin(2 * np.pi * t / ROWS) + rng.normal(0, 5, n)
    if bursty:
        hit = rng.random(n) < 0.02
        values[hit] += 5 * rng.lognormal(2.0, 0.8, int(hit.sum()))
    raw = np.exp(rng.normal(0, 0.3, n))
    for at, sigmas in ((BIG, 30), (FOLLOW_UP[0], 12), (FOLLOW_UP[1], 12), (LATE, 12)):
        raw[at] = np.exp(0.3 * sigmas)
    return values, raw


def _alerts(values: np.ndarray, raw: np.ndarray, p: DetectionParams) -> list[int]:
    s = DetectorState()
    return [i for i, (v, r) in enumerate(zip(values, raw, strict=True))
            if decide(s, float(r), 5.5, p, float(v)).alert]


def test_a_bursty_key_pages_again_only_for_as_large_a_score_until_the_bar_decays() -> None:
    follow_ups = {0.0: 0, 1.75: 0}
    for seed in range(6):
        values, raw = _key(seed, bursty=True)
        for h in follow_ups:
            alerts = _alerts(values, raw, _params(h))
            follow_ups[h] += sum(at in alerts for at in FOLLOW_UP)
            assert LATE in alerts  # a week on, the bar has halved three times
    assert follow_ups[0.0] >= 10 and follow_ups[1.75] <= follow_ups[0.0] // 2


def test_a_key_whose_residuals_look_gaussian_keeps_every_page() -> None:
    for seed in range(6):
        values, raw = _key(seed, bursty=False)
        alerts = _alerts(values, raw, _params(1.75))
        assert alerts == _alerts(values, raw, _params(0.0))
        assert all(at in alerts for at in (BIG, *FOLLOW_UP, LATE))


def test_the_bar_is_the_last_pages_score_scaled_by_distrust_and_decay() -> None:
    p = _params(2.0)
    s = DetectorState(seen=10 * ROWS, last_alert=10 * ROWS - 1 - 240, alert_z=12.0,
                      value_start=0, value_rate=0.02, value_tail=0.5)  # trust 0.11
    assert round(habituation_bar(s, p), 2) == round(2.0 * (1 - 0.25 * np.exp(
        2 * (0.0871 - 0.5))) * 12.0 * 0.5, 2)
    assert habituation_bar(s, _params(0.0)) == 0.0
    assert habituation_bar(replace(s, alert_z=0.0), p) == 0.0  # no page yet
    assert habituation_bar(replace(s, value_start=-1), p) == 0.0  # no value component
    # an AE score 8 sigmas out (history: log scores 0 +- 0.3) is over the threshold but
    # under the bar (10.7): not paged, counted as suppressed; one of 12 sigmas pages
    history = replace(s, mean=0.0, var=0.09)
    under = decide(replace(history), float(np.exp(0.3 * 8)), 5.5, p)
    assert under.detection_score > 7.9 and under.suppressed and not under.alert
    assert decide(replace(history), float(np.exp(0.3 * 12)), 5.5, p).alert


def test_alerts_of_and_decide_agree_and_the_bar_survives_a_restart() -> None:
    values, raw = _key(2, bursty=True)
    p = _params(1.75)
    one, many = DetectorState(), DetectorState()
    half = 6 * ROWS
    want = [i for i in range(values.size)
            if decide(one, float(raw[i]), 5.5, p, float(values[i])).alert]
    first = alerts_of(many, list(raw[:half]), 5.5, p, list(values[:half]))
    assert many.alert_z > 10  # the day-5 page
    restored = DetectorState.from_bytes(many.to_bytes())
    assert restored == many
    rest = alerts_of(restored, list(raw[half:]), 5.5, p, list(values[half:]))
    assert [i for i, _ in first] + [half + i for i, _ in rest] == want
    assert restored == one


def test_older_states_load_without_a_bar_and_keys_without_it_keep_their_size() -> None:
    values, raw = _key(2, bursty=True)
    with_bar, without = DetectorState(), DetectorState()
    for state, h in ((with_bar, 1.75), (without, 0.0)):  # the tails before it in both
        p = replace(_params(h), burst_weight=1.0, burst_gate=1.0, value_excess=0.4)
        alerts_of(state, list(raw), 5.5, p, list(values))
    assert with_bar.alert_z > 0 and without.alert_z == 0.0
    data = with_bar.to_bytes()
    assert len(data) == len(without.to_bytes()) + 8
    assert DetectorState.from_bytes(data[:-8]) == replace(with_bar, alert_z=0.0)
