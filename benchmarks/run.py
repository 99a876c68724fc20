"""Run every throughput/latency benchmark: quick by default (< 5 minutes), ``--full`` longer.

``stream-detector bench`` calls :func:`run_all`; ``python -m benchmarks [--full]`` does too.
The NAB detection-quality run (``benchmarks/nab_realtweets.py``) trains 10 models per
family and is run on its own.
"""

from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path
from typing import Any

__all__ = ["main", "run_all"]

BENCHMARKS = ("scoring_ceiling", "event_building", "worker_e2e")


def run_all(full: bool = False, out_dir: Path | None = None,
            only: tuple[str, ...] = BENCHMARKS) -> dict[str, Any]:
    """Run the benchmarks named in ``only``; each writes JSON + Markdown to ``out_dir``
    (default ``benchmarks/results``) and prints its table. Returns their results."""
    from benchmarks import event_building, scoring_ceiling, worker_e2e

    results: dict[str, Any] = {}
    for name in only:
        started = time.perf_counter()
        print(f"== {name} ({'full' if full else 'quick'})", flush=True)
        if name == "scoring_ceiling":
            results[name] = scoring_ceiling.run(full, out_dir)
        elif name == "event_building":
            results[name] = event_building.run(full, out_dir)
        elif name == "worker_e2e":
            results[name] = worker_e2e.run(full, out_dir)
        else:
            raise ValueError(f"unknown benchmark {name!r}; choose from {BENCHMARKS}")
        print(f"== {name} done in {time.perf_counter() - started:.0f} s\n", flush=True)
    return results


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds the context managers: children and services stop


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="longer runs, more repetitions")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    run_all(args.full, args.out, tuple(args.only))


if __name__ == "__main__":
    main()
