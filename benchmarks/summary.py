"""The headline ratios of one ``stream-detector bench`` run, from the parts' results.

``ratios`` (all measured in the same run, each against its baseline):

- ``batched_vs_bare_agent``: worker / bare Faust agent, 100 records a message (goal >= 0.8);
- ``single_vs_bare_agent``: the same with 1 record a message (goal >= 0.9);
- ``single_vs_quixstreams``: worker / the faster quixstreams per-record peer, 1 a message;
- ``batched_vs_plain_loop``: worker / the plain confluent-kafka loop, 100 a message;
- ``latency_p99_ms_at_5k``: p99 produce-to-event latency at 5,000 records/s, 1% alerting
  (goal < 50; a value, not a ratio);
- ``latency_floor_p99_ms_at_5k``: p99 produce-to-consume latency of the same paced messages
  read by a plain consumer (:func:`benchmarks.latency.transport_floor`): the producer's and
  the broker's share, no goal;
- ``scoring_vs_ort_at_64`` / ``_at_1024``: the worst family's scoring stage / raw ONNX
  Runtime at that batch (goal >= 0.9 at 64 and above).
"""

from __future__ import annotations

import math
from typing import Any

from benchmarks.report import markdown_table, ratio

__all__ = ["GOALS", "ratios", "summary_markdown"]

# name -> (comparison, goal); a ratio without a goal is reported only
GOALS: dict[str, tuple[str, float]] = {
    "batched_vs_bare_agent": (">=", 0.8),
    "single_vs_bare_agent": (">=", 0.9),
    "single_vs_quixstreams": (">=", 1.0),
    "latency_p99_ms_at_5k": ("<", 50.0),
    "scoring_vs_ort_at_64": (">=", 0.9),
    "scoring_vs_ort_at_1024": (">=", 0.9),
}


def _rate(tp: dict[str, Any], shape: str, who: str) -> float:
    return float(tp.get(shape, {}).get(who, {}).get("records_per_s", math.nan))


def ratios(results: dict[str, Any]) -> dict[str, float]:
    """The headline ratios from ``{"scoring_ceiling": ..., "worker_e2e": ...}``."""
    e2e = results.get("worker_e2e", {})
    tp = e2e.get("throughput", {})
    out = {
        "batched_vs_bare_agent": ratio(_rate(tp, "batched_100", "worker"),
                                       _rate(tp, "batched_100", "bare_agent")),
        "single_vs_bare_agent": ratio(_rate(tp, "single", "worker"),
                                      _rate(tp, "single", "bare_agent")),
        "single_vs_quixstreams": ratio(_rate(tp, "single", "worker"), max(
            _rate(tp, "single", "quix_state"), _rate(tp, "single", "quix_dict"))),
        "batched_vs_plain_loop": ratio(_rate(tp, "batched_100", "worker"),
                                       _rate(tp, "batched_100", "plain")),
        "latency_p99_ms_at_5k": next(
            (float(p["latency_ms"]["p99"]) for p in e2e.get("latency", [])
             if p.get("rate_target") == 5_000.0 and p.get("per_message") == 1
             and "latency_ms" in p), math.nan),
        "latency_floor_p99_ms_at_5k": float(
            e2e.get("latency_floor", {}).get("latency_ms", {}).get("p99", math.nan)),
    }
    rows = results.get("scoring_ceiling", {}).get("rows", [])
    for batch in (64, 1024):
        got = [r["ratio"] for r in rows if r["batch"] == batch]
        out[f"scoring_vs_ort_at_{batch}"] = min(got) if got else math.nan
    return out


def _met(name: str, value: float) -> str:
    if name not in GOALS or math.isnan(value):
        return "not measured" if math.isnan(value) else ""
    op, goal = GOALS[name]
    ok = value >= goal if op == ">=" else value < goal
    return f"{'met' if ok else 'NOT met'} ({op} {goal:g})"


def summary_markdown(values: dict[str, float], load: str) -> str:
    """The ratios with their goals, as a Markdown table."""
    rows = [{"ratio": k, "value": v, "goal": _met(k, v)} for k, v in values.items()]
    return (f"Headline ratios, each against a baseline of the same run ({load})\n\n" +
            markdown_table(rows, ["ratio", "value", "goal"]))
