"""Run every throughput/latency benchmark: quick by default (< 5 minutes), ``--full`` longer
(< 20 minutes).

``stream-detector bench`` calls :func:`run_all`; ``python -m benchmarks [--full]`` does too.
The NAB detection-quality run (``benchmarks/nab_realtweets.py``) trains 10 models per
family and is run on its own.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from benchmarks.e2e_support import sigterm_unwinds
from benchmarks.report import RESULTS_DIR

__all__ = ["main", "run_all"]

BENCHMARKS = ("scoring_ceiling", "event_building", "worker_e2e", "scale")
QUICK = ("scoring_ceiling", "worker_e2e")  # quick mode: no event-building, no AAPL part


def run_all(full: bool = False, out_dir: Path | None = None,
            only: tuple[str, ...] | None = None, peers: bool = True) -> dict[str, Any]:
    """Run the benchmarks named in ``only`` (default: all when ``full``, else
    :data:`QUICK`); each writes JSON + Markdown to ``out_dir`` (default
    ``benchmarks/results``) and prints its table. Then ``bench.json`` (top-level
    ``ratios``, see :mod:`benchmarks.summary`, plus every part's results) and
    ``bench.md`` (the ratios and every part's tables). Returns the combined results."""
    from benchmarks import event_building, scoring_ceiling, worker_e2e
    from benchmarks.report import environment, write_results
    from benchmarks.summary import ratios, summary_markdown

    names = only or (BENCHMARKS if full else QUICK)
    results: dict[str, Any] = {}
    tables: list[str] = []
    started_all = time.perf_counter()
    for name in names:
        started = time.perf_counter()
        print(f"== {name} ({'full' if full else 'quick'})", flush=True)
        if name == "scoring_ceiling":
            results[name] = scoring_ceiling.run(full, out_dir)
        elif name == "event_building":
            results[name] = event_building.run(full, out_dir)
        elif name == "worker_e2e":
            parts = ("throughput", "aapl", "latency") if full else ("throughput", "latency")
            results[name] = worker_e2e.run(full, out_dir, parts, peers=peers)
        elif name == "scale":  # 10k/100k keys, 1 vs 2 workers: --full only (~6 min)
            from benchmarks import scale

            results[name] = scale.run(full, out_dir)
        else:
            raise ValueError(f"unknown benchmark {name!r}; choose from {BENCHMARKS}")
        md = Path(out_dir or RESULTS_DIR) / f"{name}.md"
        if md.exists():
            tables.append(md.read_text().replace("# ", "## ", 1))
        print(f"== {name} done in {time.perf_counter() - started:.0f} s\n", flush=True)
    values = ratios(results)
    load = environment()["loadavg_1_5_15"]
    head = summary_markdown(values, f"{'full' if full else 'quick'} run, "
                            f"{time.perf_counter() - started_all:.0f} s, load average {load}")
    path = write_results("bench", {"ratios": values, "full": full, "parts": results},
                         head + "\n\n" + "\n\n".join(tables), out_dir)
    print(head)
    print(f"\nwritten: {path} (+ .json)")
    return {"ratios": values, **results}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="longer runs, more repetitions")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=None)
    parser.add_argument("--no-peers", action="store_true",
                        help="skip the peers (quixstreams, plain loop) in the throughput table")
    args = parser.parse_args(argv)
    sigterm_unwinds()
    run_all(args.full, args.out, tuple(args.only) if args.only else None, not args.no_peers)


if __name__ == "__main__":
    main()
