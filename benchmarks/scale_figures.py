"""Pure figures of the scale benchmark (:mod:`benchmarks.scale`): what a run sends, rates
from counter samples, process memory fields, changelog traffic, ratios and the table."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.report import markdown_table, ratio

__all__ = ["PER_MESSAGE", "WINDOW", "Plan", "changelog_summary", "phase_rate", "plan",
           "proc_cpu_seconds", "proc_status_bytes", "scale_markdown", "scale_ratios"]

WINDOW = 24  # as worker_e2e: the window-mean model of the throughput table
PER_MESSAGE = 10  # as the latency part's batched phases


@dataclass(frozen=True)
class Plan:
    """One run's records: ``window`` records for each of ``keys`` keys (one message a key:
    every window fills), then ``per_key`` records for each of the first ``timed_keys``
    keys, in messages of ``per_message`` records, keys in turn (every message another key)."""

    keys: int
    window: int
    timed_keys: int
    per_key: int
    per_message: int

    @property
    def warm_records(self) -> int:
        return self.keys * self.window

    @property
    def timed_records(self) -> int:
        return self.timed_keys * self.per_key


def plan(keys: int, timed: int, window: int = WINDOW, per_message: int = PER_MESSAGE) -> Plan:
    """About ``timed`` timed records as messages of ``per_message`` records, spread over at
    most ``keys`` keys: the same messages for any key count of at most ``timed /
    per_message`` keys (so only the number of keys held differs between such runs).

    >>> plan(100_000, 200_000)
    Plan(keys=100000, window=24, timed_keys=20000, per_key=10, per_message=10)
    >>> plan(10_000, 200_000)
    Plan(keys=10000, window=24, timed_keys=10000, per_key=20, per_message=10)
    """
    messages = timed // per_message
    if keys < 1 or messages < 1:
        raise ValueError(f"{keys} keys, {timed} timed records in messages of {per_message}: "
                         "give at least one key and one message")
    timed_keys = min(keys, messages)
    return Plan(keys, window, timed_keys, messages // timed_keys * per_message, per_message)


def phase_rate(samples: Sequence[tuple[float, float]], start: float,
               end: float) -> dict[str, float]:
    """Records/s between the first sample at or past ``start`` and the first at or past
    ``end`` (samples are ``(seconds, records counted)`` in time order).

    >>> phase_rate([(0.0, 0.0), (1.0, 50.0), (2.0, 150.0), (3.0, 260.0)], 50, 250)
    {'seconds': 2.0, 'records': 210.0, 'records_per_s': 105.0}
    """
    first = next((s for s in samples if s[1] >= start), None)
    last = next((s for s in samples if s[1] >= end), None)
    if first is None or last is None or last[0] <= first[0]:
        raise ValueError(f"the samples do not span {start:g} to {end:g} records "
                         "(poll more often, or time more records)")
    seconds, records = last[0] - first[0], last[1] - first[1]
    return {"seconds": seconds, "records": records, "records_per_s": records / seconds}


def proc_status_bytes(text: str, field: str) -> int:
    """A ``kB`` field of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``: peak RSS), in bytes.

    >>> proc_status_bytes("Name:\\tpython\\nVmHWM:\\t  2048 kB\\n", "VmHWM")
    2097152
    """
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == field:
            number, unit = value.split()
            if unit != "kB":
                raise ValueError(f"{field}: unexpected unit {unit!r}")
            return int(number) * 1024
    raise ValueError(f"{field} not in the process status (not Linux?)")


def proc_cpu_seconds(text: str, ticks: int) -> float:
    """User + system CPU seconds of a process (all its threads) from ``/proc/<pid>/stat``;
    ``ticks`` is ``os.sysconf("SC_CLK_TCK")``.

    >>> proc_cpu_seconds("42 (python3 (x)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0", 100)
    3.0
    """
    fields = text.rpartition(")")[2].split()  # the name may hold spaces and parentheses
    if len(fields) < 13:
        raise ValueError("not a /proc/<pid>/stat line (too few fields)")
    return (int(fields[11]) + int(fields[12])) / ticks


def changelog_summary(
    messages: Iterable[tuple[int, int, bytes, int]], start: dict[int, int],
    end: dict[int, int],
) -> dict[str, Any]:
    """Changelog messages ``(partition, offset, key, value bytes)`` in offset order:
    count and payload bytes (key + value) of those in ``[start[p], end[p])``, and the
    size of each key's last value (its state as the changelog holds it).

    >>> msgs = [(0, 0, b"a", 10), (0, 1, b"b", 20), (0, 2, b"a", 12), (1, 0, b"c", 30)]
    >>> s = changelog_summary(msgs, {0: 1, 1: 0}, {0: 3, 1: 0})
    >>> s["window_messages"], s["window_bytes"], s["keys"], s["state_bytes_mean"]
    (2, 34, 3, 20.666666666666668)
    """
    last: dict[bytes, int] = {}
    count = size = 0
    for partition, offset, key, value_size in messages:
        last[key] = value_size
        if start.get(partition, 0) <= offset < end.get(partition, 0):
            count += 1
            size += len(key) + value_size
    sizes = list(last.values())
    return {"window_messages": count, "window_bytes": size, "keys": len(sizes),
            "state_bytes_mean": statistics.fmean(sizes) if sizes else float("nan"),
            "state_bytes_min": min(sizes, default=0), "state_bytes_max": max(sizes, default=0)}


def scale_ratios(runs: Sequence[dict[str, Any]],
                 rate: str = "records_per_s") -> dict[str, float]:
    """``rate`` of each run against a baseline of the same series: ``keys_N_vs_M``
    against the 1-worker run with the fewest keys, ``workers_W_vs_1`` against the
    1-worker run with the same keys.

    >>> scale_ratios([{"keys": 10, "workers": 1, "records_per_s": 100.0},
    ...               {"keys": 10, "workers": 2, "records_per_s": 150.0},
    ...               {"keys": 100, "workers": 1, "records_per_s": 80.0}])
    {'keys_100_vs_10': 0.8, 'workers_2_vs_1': 1.5}
    """
    ones = sorted((r for r in runs if r["workers"] == 1), key=lambda r: r["keys"])
    if not ones:
        return {}
    base = ones[0]
    out = {f"keys_{r['keys']}_vs_{base['keys']}": ratio(r[rate], base[rate])
           for r in ones[1:]}
    for r in runs:
        alone = next((o for o in ones if o["keys"] == r["keys"]), None)
        if r["workers"] > 1 and alone is not None:
            out[f"workers_{r['workers']}_vs_1"] = ratio(r[rate], alone[rate])
    return out


COLUMNS = ("keys", "workers", "records_per_s", "vs_baseline", "records_per_cpu_s",
           "cpu_vs_baseline", "warm_records_per_s",
           "peak_rss_mib", "rss_growth_per_key_b", "state_b_per_key", "changelog_b_per_s",
           "changelog_msgs_per_s", "full_windows")


def _rows(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    base = min((r for r in runs if r["workers"] == 1), key=lambda r: r["keys"], default=None)
    mib = 1024 * 1024
    return [{
        "keys": r["keys"], "workers": r["workers"], "records_per_s": r["records_per_s"],
        "vs_baseline": ratio(r["records_per_s"], base["records_per_s"]) if base else "",
        "records_per_cpu_s": r["records_per_cpu_s"],
        "cpu_vs_baseline": (ratio(r["records_per_cpu_s"], base["records_per_cpu_s"])
                            if base else ""),
        "warm_records_per_s": r["warm_records_per_s"],
        "peak_rss_mib": " + ".join(f"{b / mib:.0f}" for b in r["rss_peak_bytes"]),
        "rss_growth_per_key_b": r["rss_growth_per_key_bytes"],
        "state_b_per_key": r["state_bytes_mean"],
        "changelog_b_per_s": r["changelog_bytes_per_s"],
        "changelog_msgs_per_s": r["changelog_messages_per_s"],
        "full_windows": f"{r['full_windows']:,}/{r['keys']:,}",
    } for r in runs]


def scale_markdown(res: dict[str, Any]) -> str:
    """The runs' table, the ratios and any failed runs, from :func:`benchmarks.scale.run`'s
    results (``window``, ``per_message``, ``partitions``, ``runs``, ``ratios``, ``errors``)."""
    md = (
        f"Worker with many keys: window {res['window']}, every key's window full; timed "
        f"records in messages of {res['per_message']} records of one key, keys in turn, on a "
        f"{res['partitions']}-partition topic. vs_baseline: records/s over the 1-worker run "
        "with the fewest keys (same run). records_per_cpu_s: timed records per CPU second "
        "of the worker processes (steadier than wall time on a shared machine). "
        "warm_records_per_s: the warm-up (one message of a "
        "window's records per key, each creating a key's state). peak_rss_mib: VmHWM per "
        "worker; rss_growth_per_key_b: (peak - RSS when ready) / keys. state_b_per_key: a "
        "key's encoded KeyState as its changelog holds it. changelog_b_per_s and _msgs_per_s: "
        "key-state changelog payload (key + value) written during the timed records.\n\n"
        + markdown_table(_rows(res.get("runs", [])), COLUMNS))
    for name, label in (("ratios", "records/s"), ("ratios_per_cpu_s", "records per CPU s")):
        if res.get(name):
            md += (f"\n\nRatios of {label}: " +
                   ", ".join(f"{k} {v:.3g}" for k, v in res[name].items()))
    errors = [{"run": k, "error": v} for k, v in res.get("errors", {}).items()]
    if errors:
        md += "\n\nFailed runs\n\n" + markdown_table(errors, ["run", "error"])
    return md
