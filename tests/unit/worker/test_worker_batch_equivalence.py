"""A batch read together (core/batch_runs, key groups, lazy window metadata) gives exactly
the events and dead letters of the same messages one a batch, on random adversarial feeds.

The feeds mix lone records and lists of one to 40 records over a few keys (one of 256
characters, one astral, one with a trailing space), in one timestamp layout or several
(``Z``, fractions, a space, ``+00:00``, ``+02:00``, date only, out of range), with repeats,
late and skewed records, gaps, imputed flags, ``-0``, huge values, duplicate JSON keys,
extra fields, a second key in a list, whitespace or a BOM before the JSON, tombstones,
junk bytes and records of a kind no model serves; the model's stride varies, and the
worker restarts from its table (a new runtime) between batches.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model_fixtures import window_mean_model, write_registry_model
from test_worker_faults import _Table, collecting_senders

from stream_detector.core.model_runtime import ModelRuntime
from stream_detector.core.registry import load_model
from stream_detector.worker.messages import Message
from stream_detector.worker.metrics import WorkerMetrics
from stream_detector.worker.runtime import WorkerRuntime
from stream_detector.worker.table_store import TableStore
from stream_detector.worker.threshold_cache import ThresholdCache

_KEYS = ["a", "b", "k" * 256, "\U0001f600x", "a "]
_LAYOUTS = ["T", "TZ", "Tf", "S", "Sf6", "off0", "off2", "date", "old"]
_BASE = datetime(2026, 1, 1)
_MODELS: dict[int, ModelRuntime] = {}
_DIR = tempfile.TemporaryDirectory(prefix="batch-equivalence-")


def _model(stride: int) -> ModelRuntime:
    """A window-of-4 model on the newest value (raw score, threshold 50), 1 s cadence."""
    if stride not in _MODELS:
        directory = write_registry_model(
            Path(_DIR.name) / f"s{stride}", window_mean_model(4, 1, last_k=1), window=4,
            features=["value"], threshold=50.0,
            detection={"normalise": False, "warmup": 0, "suppress": 1},
            time={"cadence_s": 1.0, "gap_steps": 3.0, "skew_steps": 12.0, "confirm": 3})
        card = json.loads((directory / "card.json").read_text())
        card["stride"] = stride
        (directory / "card.json").write_text(json.dumps(card))
        loaded = load_model(directory, preference="cpu")
        _MODELS[stride] = ModelRuntime(
            loaded, ThresholdCache(loaded.card, client=None).lookup)  # type: ignore[arg-type]
    return _MODELS[stride]


def _stamp(layout: str, seconds: int) -> str:
    t = _BASE + timedelta(seconds=seconds)
    formats = {"T": "%Y-%m-%dT%H:%M:%S", "TZ": "%Y-%m-%dT%H:%M:%SZ", "S": "%Y-%m-%d %H:%M:%S",
               "Sf6": "%Y-%m-%d %H:%M:%S.%f", "off0": "%Y-%m-%dT%H:%M:%S+00:00",
               "date": "%Y-%m-%d"}
    if layout == "Tf":
        return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    if layout == "off2":
        return (t + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")
    if layout == "old":
        return "1850-01-01T00:00:00"
    return t.strftime(formats[layout])


@st.composite
def _feed(draw: Any) -> list[bytes | None]:
    """A feed's message values, in order (see the module docstring)."""
    keys = draw(st.lists(st.sampled_from(_KEYS), min_size=1, max_size=3, unique=True))
    clock = dict.fromkeys(keys, 0)
    shared = draw(st.sampled_from(_LAYOUTS[:6]))  # most records in one layout
    odd = draw(st.sampled_from([0.0, 0.0, 0.3, 1.0]))  # how often things go wrong
    out: list[bytes | None] = []
    for _ in range(draw(st.integers(1, 40))):
        r = draw(st.floats(0, 1))
        if r < 0.1 * odd:
            out.append(draw(st.sampled_from([None, b"[", b"{}", b"[]", b"null", b"\xff", json.dumps(
                {"kind": "sales", "date": "2026-01-01", "store": 1, "item": 2,
                 "sales": 3}).encode()])))
            continue
        key = draw(st.sampled_from(keys))
        rows = []
        n = draw(st.sampled_from([1, 1, 1, 1, 2, 3, 19, 20, 40]))
        for _ in range(n):
            clock[key] = max(0, clock[key] + draw(st.sampled_from([1] * 8 + [0, -2, 5, 30])))
            layout = shared if draw(st.floats(0, 1)) >= 0.1 * odd else draw(
                st.sampled_from(_LAYOUTS))
            value = draw(st.sampled_from(["10.0"] * 8 + ["100", "100.0", "-0", "-0.0", "55.5",
                                                         "3e38", "1e39", "1e308", "-1e39"]))
            ascii_only = draw(st.booleans())
            fields = [("kind", '"series"'), ("series", json.dumps(key, ensure_ascii=ascii_only)),
                      ("timestamp", json.dumps(_stamp(layout, clock[key]))), ("value", value)]
            extra = draw(st.sampled_from(
                ["none"] * 6 + ["imputed", "not_imputed", "version", "duplicate"]
                + (["other_key", "unknown"] if odd else [])))
            fields += {"imputed": [("imputed", "true")], "not_imputed": [("imputed", "false")],
                       "version": [("schema_version", "1")], "other_key": [
                           ("series", json.dumps(draw(st.sampled_from(_KEYS))))],
                       "unknown": [("unexpected", "1")], "none": [], "duplicate": []}[extra]
            if extra == "duplicate":  # the later value wins
                fields.insert(0, ("value", "999"))
            rows.append("{" + ", ".join(f'"{k}": {v}' for k, v in
                                        draw(st.permutations(fields))) + "}")
        body = rows[0] if n == 1 and draw(st.booleans()) else "[" + ", ".join(rows) + "]"
        if draw(st.floats(0, 1)) < 0.1 * odd:
            body = draw(st.sampled_from([" ", "\n", "\ufeff"])) + body
        out.append(body.encode())
    return out


def _check_windows(feed: list[bytes | None], stride: int, events: list[str],
                   dead: list[str]) -> None:
    """Each event names a window the records say exists: per key, the records of the
    messages not dead-lettered, in order; the event's window ends at a record ``e`` with
    ``(e + 1 - 4) % stride == 0``, its window_start and window_end are the texts of records
    ``e - 3`` and ``e``, its source the message of record ``e``, and it is imputed when one
    of the four records is (an oracle independent of the windows' bookkeeping)."""
    refused = {json.loads(d)["offset"] for d in dead}
    records: dict[str, list[tuple[str, int, bool]]] = {}
    for offset, raw in enumerate(feed):
        if offset in refused or raw is None:
            continue
        doc = json.loads(raw.decode("utf-8-sig"))
        for r in doc if isinstance(doc, list) else [doc]:
            records.setdefault(r["series"], []).append(
                (r["timestamp"], offset, r.get("imputed", False)))
    for text in events:
        event = json.loads(text)
        rows = records[event["key"]]
        assert any(
            rows[e][:2] == (event["window_end"], event["source"]["offset"])
            and rows[e - 3][0] == event["window_start"]
            and any(row[2] for row in rows[e - 3 : e + 1]) == event["quality"]["imputed"]
            for e in range(3, len(rows), 1) if (e + 1 - 4) % stride == 0), event


def _outputs(feed: list[bytes | None], stride: int, cuts: list[int],
             restarts: set[int]) -> tuple[list[str], list[str]]:
    """Events (less ``detected_at``) and dead letters (less ``at``), canonical JSON, sorted:
    the feed processed in batches ending before each of ``cuts``, with a new runtime over
    the same table at each of ``restarts``."""
    send_event, send_dead, events, dead = collecting_senders()
    table = _Table()

    def runtime() -> WorkerRuntime:
        return WorkerRuntime([_model(stride)], TableStore(table), WorkerMetrics(), send_event,
                             send_dead)

    async def scenario() -> None:
        rt = runtime()
        bounds = sorted({0, len(feed), *cuts, *restarts})
        for lo, hi in zip(bounds, bounds[1:], strict=False):
            if lo in restarts:
                rt = runtime()
            await rt.process([Message(feed[i], "in", 0, i) for i in range(lo, hi)])

    asyncio.run(scenario())

    def canonical(raw: bytes, drop: str) -> str:
        doc = json.loads(raw)
        doc.pop(drop)
        return json.dumps(doc, sort_keys=True)
    return (sorted(canonical(e, "detected_at") for e in events),
            sorted(canonical(d, "at") for d in dead))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(feed=_feed(), stride=st.sampled_from([1, 2, 3, 5]), data=st.data())
def test_batches_give_the_events_and_dead_letters_of_one_message_a_batch(
    feed: list[bytes | None], stride: int, data: st.DataObject
) -> None:
    points = list(range(1, len(feed)))
    cuts = data.draw(st.lists(st.sampled_from(points), max_size=3) if points else st.just([]))
    restarts = set(data.draw(st.lists(st.sampled_from(points), max_size=2)
                             if points else st.just([])))
    alone = _outputs(feed, stride, list(range(len(feed))), restarts)
    together = _outputs(feed, stride, cuts, restarts)
    assert together == alone
    _check_windows(feed, stride, *together)
