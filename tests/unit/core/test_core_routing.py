"""Routing: each record goes to exactly one model (keys, then patterns, then catch-all),
or to none; conflicting claims are refused when the models are loaded."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from model_fixtures import card_dict

from schemas.card import ModelCard
from schemas.events import SourceRef
from schemas.records import parse_message
from stream_detector.core.key_state import DictStore
from stream_detector.core.model_runtime import ModelRuntime
from stream_detector.core.pipeline import Pipeline
from stream_detector.core.registry import load_model
from stream_detector.core.routing import Router, check_routes
from stream_detector.exceptions import ConfigurationError
from stream_detector.worker.threshold_cache import ThresholdCache

sys.path.insert(0, str(Path(__file__).parent))
from test_core_scoring import tiny_onnx, write_model  # noqa: E402


class Card:
    def __init__(self, name: str, kind: str = "series", **serves: Any) -> None:
        self.card = ModelCard.model_validate(card_dict(name=name, record_kind=kind,
                                                       serves=serves))


def test_keys_then_patterns_then_catch_all_then_none() -> None:
    aapl, web, rest = Card("aapl", keys=["AAPL"]), Card("web", pattern=r"web-\d+"), Card("rest")
    sales = Card("sales", kind="sales", keys=["1/7"])
    router = Router([rest, web, aapl, sales])
    assert router.route("series", "AAPL") is aapl
    assert router.route("series", "web-12") is web
    assert router.route("series", "web-12x") is rest  # patterns match in full
    assert router.route("series", "GOOG") is rest
    assert router.route("sales", "1/7") is sales
    assert router.route("sales", "2/7") is None
    assert router.route("events", "detector-a") is None
    assert "sales: keys 1/7" in router.describe("sales")
    assert router.describe("events") == "no events model is loaded"


def test_first_matching_pattern_wins_in_model_order() -> None:
    first, second = Card("first", pattern="a.*"), Card("second", pattern=".*")
    assert Router([first, second]).route("series", "abc") is first
    assert Router([second, first]).route("series", "abc") is second


def test_conflicting_claims_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="both serve every series key"):
        Router([Card("a"), Card("b")])
    with pytest.raises(ConfigurationError, match="both list series key 'AAPL'"):
        check_routes([Card("a", keys=["AAPL", "X"]).card, Card("b", keys=["AAPL"]).card])
    Router([Card("a"), Card("b", kind="sales")])  # one catch-all per kind is fine


def test_invalid_pattern_is_a_card_error() -> None:
    with pytest.raises(ValueError, match="not a regular expression"):
        Card("bad", pattern="(")


def _runtime(tmp_path: Path, name: str, **serves: Any) -> ModelRuntime:
    loaded = load_model(write_model(tmp_path / name, tiny_onnx(window=2, features=1),
                                    name=name, window=2, features=["value"], serves=serves),
                        preference="cpu")
    return ModelRuntime(loaded, ThresholdCache(loaded.card, client=None).lookup)  # type: ignore[arg-type]


def test_pipeline_scores_each_record_with_one_model(tmp_path: Path) -> None:
    a = _runtime(tmp_path, "a", keys=["AAPL"])
    b = _runtime(tmp_path, "b", keys=["GOOG"])
    pipeline = Pipeline([a, b], DictStore())
    pending = []
    for i in range(4):
        for key in ("AAPL", "GOOG", "IBM"):
            raw = json.dumps({"kind": "series", "series": key, "value": float(i),
                              "timestamp": f"2026-01-01T00:00:0{i}"}).encode()
            pending += pipeline.ingest(parse_message(raw), SourceRef(topic="t"))
    assert sorted((p.model.name, p.key) for p in pending) == (
        [("a", "AAPL")] * 3 + [("b", "GOOG")] * 3)  # IBM: nobody's; no key scored twice


# --- hot swap: key state across versions ------------------------------------------------


def _version(tmp_path: Path, version: str, features: list[str]) -> ModelRuntime:
    loaded = load_model(write_model(tmp_path / version, tiny_onnx(window=2, features=1),
                                    version=version, window=2, features=features),
                        preference="cpu")
    return ModelRuntime(loaded, ThresholdCache(loaded.card, client=None).lookup)  # type: ignore[arg-type]


def _feed(pipeline: Pipeline, start: int, count: int) -> None:
    for i in range(start, start + count):
        raw = json.dumps({"kind": "series", "series": "cpu", "value": float(i % 3),
                          "timestamp": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}"}).encode()
        pending = pipeline.ingest(parse_message(raw), SourceRef(topic="t", partition=0,
                                                                 offset=i))
        pipeline.decide(pending, Pipeline.score(pending))


@pytest.mark.parametrize(("features", "carried"), [(["value"], True), (["other"], False)])
def test_compatible_versions_keep_windows_and_detection_history(
    tmp_path: Path, features: list[str], carried: bool
) -> None:
    store = DictStore()
    pipeline = Pipeline([_version(tmp_path, "1", ["value"])], store)
    _feed(pipeline, 0, 50)
    before = store.states[("tiny", "cpu")]
    assert before.version == "1" and before.detector.seen == 49
    pipeline.set_models([_version(tmp_path, "2", features)])
    _feed(pipeline, 50, 1)
    after = store.states[("tiny", "cpu")]
    assert after.version == "2"
    # compatible: window and history carry on (a window is scored at once); else afresh
    assert after.detector.seen == (50 if carried else 0)
