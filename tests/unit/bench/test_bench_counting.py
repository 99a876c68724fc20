"""The benchmark children's record counter."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.counting import RecordCounter, counted_rate


def test_writes_its_file_once_when_the_expected_count_is_reached(tmp_path: Path) -> None:
    out = tmp_path / "done.json"
    counter = RecordCounter(5, out)
    assert counter.add(3) is False and not out.exists()
    assert counter.add(2) is True
    first = json.loads(out.read_text())
    assert first["count"] == 5 and first["first"] <= first["last"]
    out.unlink()
    assert counter.add(1) is True and not out.exists()  # written once, not again


def test_counted_rate_reads_what_the_counter_wrote(tmp_path: Path) -> None:
    out = tmp_path / "done.json"
    out.write_text(json.dumps({"first": 10.0, "last": 12.5, "count": 1000}))
    assert counted_rate(out, "plain") == {"mode": "plain", "records": 1000, "seconds": 2.5,
                                          "records_per_s": 400.0}
