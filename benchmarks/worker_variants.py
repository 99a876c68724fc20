"""The worker with one change applied, to measure a proposed optimisation end to end.

    python -m benchmarks.worker_variants VARIANT worker --model DIR ...
    python -m benchmarks.worker_e2e --variant VARIANT

Variants (process-level patches; nothing in ``stream_detector`` is edited):

- ``baseline``: no change;
- ``linger20``: Faust producer ``producer_linger_ms=20`` instead of the worker's 1 (fewer,
  larger produce requests for the per-batch changelog writes);
- ``fetchwait1500``: the fetch wait Faust hard-codes (1.5 s) instead of the worker's
  ``fetch_max_wait`` setting (0.02 s): the worker before that setting;
- ``nochangelog``: key states kept in memory only, never sent to the changelog (an upper
  bound on what cheaper state persistence could gain; NOT crash-safe);
- ``quietlog``: no Faust terminal spinner (with a log level of WARNING or above it sets the
  root logger to DEBUG, so every library debug call builds a log record).
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["VARIANTS", "apply"]

VARIANTS = ("baseline", "linger20", "fetchwait1500", "nochangelog", "quietlog", "nofaustpatch")


def _linger() -> None:
    import faust

    base = faust.App

    class App(base):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["producer_linger_ms"] = 20
            super().__init__(*args, **kwargs)

    faust.App = App  # type: ignore[misc]


def _fetch_wait() -> None:
    import os

    os.environ["STREAM_DETECTOR_FETCH_MAX_WAIT"] = "1.5"  # read when the CLI builds Settings


def _no_changelog() -> None:
    from stream_detector.worker import table_store

    def flush(self: Any) -> int:
        for k, (state, _partition) in self.dirty.items():
            self.table.data[k] = state.to_bytes()
        n = len(self.dirty)
        self.dirty.clear()
        return n

    table_store.TableStore.flush = flush  # type: ignore[method-assign]


def _quiet_log() -> None:
    import faust

    init = faust.Worker.__init__

    def patched(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.spinner = None

    faust.Worker.__init__ = patched  # type: ignore[method-assign]


def _no_faust_patch() -> None:
    from stream_detector.worker import faust_patch

    faust_patch.install = lambda: False  # Faust as upstream


def apply(variant: str) -> None:
    """Apply ``variant``'s patch to this process."""
    patches = {"baseline": lambda: None, "linger20": _linger, "fetchwait1500": _fetch_wait,
               "nochangelog": _no_changelog, "quietlog": _quiet_log,
               "nofaustpatch": _no_faust_patch}
    if variant not in patches:
        raise SystemExit(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    patches[variant]()


if __name__ == "__main__":
    apply(sys.argv[1])
    del sys.argv[1]
    from stream_detector.cli.main import main

    main()
