"""The record counter every benchmark child reports through (no imports beyond the stdlib,
so the peers' own venv, without stream_detector or Faust, can use it too)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

__all__ = ["RecordCounter", "counted_rate"]


class RecordCounter:
    """Counts records and, once ``expect`` arrived, writes ``out`` atomically as JSON with the
    wall-clock times (s since the epoch) of the first and the last counted record."""

    def __init__(self, expect: int, out: Path) -> None:
        self.expect, self.out = expect, out
        self.count = 0
        self.first: float | None = None

    def add(self, n: int) -> bool:
        """Count ``n`` records; True once ``expect`` were counted (the file is written)."""
        now = time.time()
        if self.first is None:
            self.first = now
        before = self.count
        self.count += n
        if before < self.expect <= self.count:
            tmp = self.out.with_suffix(".tmp")
            tmp.write_text(json.dumps({"first": self.first, "last": now, "count": self.count}))
            tmp.replace(self.out)
        return self.count >= self.expect


def counted_rate(out: Path, mode: str) -> dict[str, Any]:
    """What a child's :class:`RecordCounter` wrote to ``out``: records, seconds between the
    first and the last, and records/s (NaN when they share one clock reading)."""
    got = json.loads(out.read_text())
    seconds = got["last"] - got["first"]
    return {"mode": mode, "records": got["count"], "seconds": seconds,
            "records_per_s": got["count"] / seconds if seconds > 0 else float("nan")}
