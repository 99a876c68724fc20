"""The serving pieces together, as the worker and the offline path will chain them:
parse -> window -> scale -> score -> threshold -> event. Online (record by record) and
offline (whole file at once) must give the same anomalies."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from schemas.events import SourceRef
from schemas.records import parse_message
from stream_detector.core.events import build_event, is_anomaly
from stream_detector.core.registry import load_model
from stream_detector.core.scoring import ScaleTable
from stream_detector.core.windowing import WindowState
from stream_detector.core.windows import sliding_windows
from stream_detector.worker.threshold_cache import ThresholdCache

sys.path.insert(0, str(Path(__file__).parent))
from test_core_scoring import tiny_onnx, write_model  # noqa: E402

WINDOW, STRIDE = 4, 2


def messages() -> list[bytes]:
    rng = np.random.default_rng(7)
    values = rng.normal(10.0, 1.0, size=60)
    values[[25, 26, 47]] += 12.0  # injected spikes
    return [
        json.dumps(
            {
                "kind": "series",
                "series": "cpu",
                "timestamp": f"2026-11-22T08:{i // 60:02d}:{i % 60:02d}Z",
                "value": float(v),
            }
        ).encode()
        for i, v in enumerate(values)
    ]


def test_online_and_offline_agree(tmp_path: Path) -> None:
    scaler = {"method": "standard", "params": {"*": {"center": [10.0], "scale": [1.0]}}}
    model = load_model(
        write_model(
            tmp_path / "m",
            tiny_onnx(window=WINDOW, features=1),
            window=WINDOW,
            stride=STRIDE,
            features=["value"],
            scaler=scaler,
            thresholds={"method": "percentile", "value_param": 99.0, "default": 4.0},
        ),
        preference="cpu",
    )
    card, scorer = model.card, model.scorer
    table = ScaleTable(card.scaler, card.n_features)
    cache = ThresholdCache(card, client=None)  # type: ignore[arg-type]  # card values only
    source = SourceRef(topic="records", partition=0)

    # online: one record at a time, state serialised between records like a changelog
    online = []
    blob = WindowState(card.window, card.n_features, card.stride).to_bytes()
    for offset, raw in enumerate(messages()):
        (rec,) = parse_message(raw, expected_width=card.n_features)
        state = WindowState.from_bytes(blob)
        win = state.push(rec.values, rec.epoch_ns, rec.timestamp_text)
        blob = state.to_bytes()
        if win is None:
            continue
        batch = scorer.score(table.transform(win.values[None], [rec.key]))
        threshold = cache.lookup(rec.key)
        if is_anomaly(float(batch.scores[0]), threshold.value):
            online.append(
                build_event(
                    card,
                    key=rec.key,
                    window_start=win.start_text,
                    window_end=win.end_text,
                    score=float(batch.scores[0]),
                    threshold=threshold,
                    errors=batch.errors[0],
                    observed=win.values[-1],
                    provider=scorer.provider,
                    source=source.model_copy(update={"offset": offset}),
                    detected_at="fixed",
                )
            )

    # offline: the whole series at once
    records = [parse_message(raw)[0] for raw in messages()]
    values = np.array([r.values for r in records], dtype=np.float32)
    windows = sliding_windows(values, card.window, card.stride)
    scores = scorer.score(table.transform(windows, ["cpu"] * len(windows))).scores
    ends = [card.window - 1 + i * card.stride for i in range(len(windows))]
    offline = [
        (records[e].timestamp_text, float(s)) for e, s in zip(ends, scores, strict=True) if s > 4.0
    ]

    assert len(online) >= 2, "the injected spikes should alert"
    assert [(e.window_end, e.score) for e in online] == offline
    assert len({e.event_id for e in online}) == len(online)
    assert all(e.threshold_source.scope == "card_default" for e in online)
    assert all(e.top_contributors[0].name == "value" for e in online)
