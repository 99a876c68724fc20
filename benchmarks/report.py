"""Pure helpers shared by the benchmarks: statistics, ratios, tables, result files.

No I/O except :func:`write_results`, which writes ``<name>.json`` and ``<name>.md``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "RESULTS_DIR",
    "environment",
    "histogram_from_prometheus",
    "interleaved",
    "markdown_table",
    "median_rate",
    "paired_rates",
    "percentiles",
    "prometheus_value",
    "ratio",
    "write_results",
]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def percentiles(values: Sequence[float], qs: Sequence[float] = (50, 90, 99)) -> dict[str, float]:
    """Nearest-rank percentiles (no interpolation: every value reported was observed).

    >>> percentiles([5.0, 1.0, 3.0, 2.0, 4.0], (50, 100))
    {'p50': 3.0, 'p100': 5.0}
    """
    if not values:
        return {f"p{q:g}": math.nan for q in qs}
    ordered = sorted(values)
    out = {}
    for q in qs:
        if not 0 < q <= 100:
            raise ValueError(f"percentile must be in (0, 100], got {q}")
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        out[f"p{q:g}"] = ordered[rank - 1]
    return out


def ratio(measured: float, baseline: float) -> float:
    """``measured / baseline``; NaN when the baseline is zero or missing.

    >>> ratio(90.0, 100.0), math.isnan(ratio(1.0, 0.0))
    (0.9, True)
    """
    if not baseline or math.isnan(baseline):
        return math.nan
    return measured / baseline


def median_rate(
    fn: Callable[[], object], items: int, repeats: int = 5, min_seconds: float = 0.2
) -> float:
    """Median items per second of ``fn`` (``items`` per call) over ``repeats`` timings.

    Each timing loops ``fn`` until ``min_seconds`` passed, so fast calls are not dominated
    by timer resolution; one untimed call warms caches first.
    """
    fn()
    rates = sorted(_timed_rate(fn, items, min_seconds) for _ in range(repeats))
    return rates[len(rates) // 2]


def _timed_rate(fn: Callable[[], object], items: int, min_seconds: float) -> float:
    calls = 0
    start = time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return calls * items / elapsed


def paired_rates(
    fns: Sequence[Callable[[], object]], items: int, repeats: int = 5, min_seconds: float = 0.2,
    settle: float = 0.02,
) -> list[float]:
    """Median items/s of each of ``fns``, timed in alternation (a, b, a, b, ...).

    On a shared CPU the load drifts; alternating short timings exposes every function to
    the same drift, so their ratio is steadier than that of two separate timing runs.
    A pause of ``settle`` seconds before each timing lets the previous function's ONNX
    Runtime threads stop spinning, so no function is timed against another's thread pool.
    """
    for fn in fns:
        fn()
    rates: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            time.sleep(settle)
            rates[i].append(_timed_rate(fn, items, min_seconds))
    return [sorted(r)[len(r) // 2] for r in rates]


def interleaved(
    baseline: Callable[[], object], measured: Callable[[], object], items: int,
    seconds: float, min_pairs: int = 7,
) -> tuple[float, float, float]:
    """Items/s of ``baseline`` and ``measured`` (``items`` per call) and their ratio,
    timed call by call in alternation (a b, b a, a b, ...) for ``seconds`` and at least
    ``min_pairs`` pairs.

    Both are the fastest call of each (as :mod:`timeit` advises: on a shared CPU a slower
    call was slowed by other processes, not by the code), and the ratio is
    ``fastest(baseline) / fastest(measured)``; alternating call by call gives both the
    same chances. On two cores with other jobs running, medians of millisecond calls
    moved 2-5x between runs (a call spans several scheduler time slices), minima by a
    few percent. One untimed call of each warms caches first.
    """
    baseline()
    measured()
    ta: list[float] = []
    tb: list[float] = []
    clock = time.perf_counter
    deadline = clock() + seconds
    while len(ta) < min_pairs or clock() < deadline:
        first, second = ((baseline, ta), (measured, tb))[:: 1 if len(ta) % 2 else -1]
        for fn, out in (first, second):
            start = clock()
            fn()
            out.append(clock() - start)
    return items / min(ta), items / min(tb), min(ta) / min(tb)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A Markdown table of ``rows`` (dicts) with the given column order.

    >>> print(markdown_table([{"a": 1, "b": 0.5}], ["a", "b"]))
    | a | b |
    |---|---|
    | 1 | 0.5 |
    """
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    """Where the numbers come from: host, cores, load (the CPU may be shared)."""
    import numpy
    import onnxruntime

    load = os.getloadavg()
    return {
        "host": platform.node(), "python": platform.python_version(),
        "cpus": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)),
        "loadavg_1_5_15": [round(x, 2) for x in load],
        "onnxruntime": onnxruntime.__version__, "numpy": numpy.__version__,
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_results(
    name: str, data: Mapping[str, Any], markdown: str, out_dir: Path | None = None
) -> Path:
    """Write ``<name>.json`` and ``<name>.md`` (title + environment line + tables)."""
    out = Path(out_dir or RESULTS_DIR)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "environment": environment(), **data}
    (out / f"{name}.json").write_text(json.dumps(payload, indent=2, default=_json_default))
    env = payload["environment"]
    head = (f"# {name}\n\n{env['time_utc']}, {env['affinity']} CPUs, load average "
            f"{env['loadavg_1_5_15']} (a shared machine: compare ratios, not absolutes)\n\n")
    (out / f"{name}.md").write_text(head + markdown + "\n")
    return out / f"{name}.md"


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def prometheus_value(text: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """Sum of the samples called ``name`` (optionally matching ``labels``) in an exposition.

    >>> prometheus_value('a_total{kind="series"} 3.0\\na_total{kind="x"} 2.0\\n', "a_total")
    5.0
    """
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        metric, _, value = line.rpartition(" ")
        base, _, label_text = metric.partition("{")
        if base != name:
            continue
        if labels and any(f'{k}="{v}"' not in label_text for k, v in labels.items()):
            continue
        total += float(value)
    return total


def histogram_from_prometheus(text: str, name: str) -> dict[str, float]:
    """Per-bucket (not cumulative) counts of histogram ``name``: ``{"<=le": count}``.

    >>> histogram_from_prometheus('h_bucket{le="1.0"} 2.0\\nh_bucket{le="+Inf"} 5.0\\n', "h")
    {'<=1': 2.0, '<=+Inf': 3.0}
    """
    out: dict[str, float] = {}
    previous = 0.0
    for line in text.splitlines():
        if not line.startswith(f"{name}_bucket{{"):
            continue
        metric, _, value = line.rpartition(" ")
        le = metric.split('le="', 1)[1].split('"', 1)[0]
        label = le if le == "+Inf" else f"{float(le):g}"
        cumulative = float(value)
        out[f"<={label}"] = cumulative - previous
        previous = cumulative
    return out
