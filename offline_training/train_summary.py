"""What ``stream-detector train`` prints at the end: a few lines a person reads
(:func:`summary_lines`) or, with ``--json``, the machine-readable summary (:func:`dumps`).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stream_detector.logs import printable

if TYPE_CHECKING:
    from offline_training.train_options import TrainReport

__all__ = ["MAX_CARD_KEYS", "dumps", "summary", "summary_lines", "training_keys"]

MAX_CARD_KEYS = 10_000  # the card lists the keys it was trained on, up to this many


def training_keys(records: Any, window: int | None = None) -> dict[str, Any]:
    """The card's ``training`` entries naming the keys trained on (``thresholds set``
    refuses others) and how many there were; with ``window`` (records), also the keys with
    fewer records than it, which gave no window to train on (``keys_without_window``: up
    to 5 of them, ``keys_without_window_count``)."""
    counts: dict[str, int] = {}
    for r in records:
        counts[r.key] = counts.get(r.key, 0) + 1
    keys = sorted(counts)
    out: dict[str, Any] = {"keys": keys[:MAX_CARD_KEYS], "key_count": len(keys)}
    short = [k for k in keys if window is not None and counts[k] < window]
    if short:
        out.update(keys_without_window=short[:5], keys_without_window_count=len(short))
    return out

_FAMILIES = {"dense": "dense autoencoder", "lstm": "LSTM autoencoder",
             "conv1d": "Conv1D autoencoder", "events": "event autoencoder",
             "hybrid": "hybrid (autoencoder + NPLM)"}


def _size(path: Path) -> str:
    total = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    return f"{total / 1e6:.1f} MB" if total >= 1e6 else f"{total / 1e3:.0f} KB"


def summary_lines(report: Any, data: Path) -> list[str]:
    """Four lines: what was trained on what, the threshold, where it went, what to run next;
    before them, what the time policy flagged in the data, if anything.

    ``report`` is an :class:`offline_training.train_options.TrainReport`.
    """
    card, result = report.card, report.result
    training = card.training
    keys = int(training.get("key_count") or len(training.get("keys") or [])) or 1
    fraction = training.get("train_fraction")
    part = f" (first {fraction:.0%} of each key)" if fraction else ""
    losses = [h["val_loss"] for h in result.history if h.get("val_loss") is not None]
    best = f"; best validation loss {min(losses):.4g}" if losses else ""
    th = card.thresholds
    scale = ("z-score of the detection score against each key's own history"
             if th.method == "sigma" else f"{th.method} {th.value_param:g} of training scores")
    files = ", ".join(sorted(p.name for p in report.path.iterdir() if p.is_file()))
    entry = report.path.parent
    imputed = int(training.get("imputed") or 0)
    filled = (f" ({imputed:,} missing value{'' if imputed == 1 else 's'} filled in)"
              if imputed else "")
    impute = " --missing impute" if imputed else ""
    timing = [report.time_line] if getattr(report, "time_line", "") else []
    short = int(training.get("keys_without_window_count") or 0)
    named = list(training.get("keys_without_window") or [])
    unused = (f"; {short:,} of them had fewer records than the window and no window to train "
              f"on: {', '.join(printable(str(k)) for k in named)}"
              f"{', ...' if short > len(named) else ''}") if short else ""
    return [*timing,
        f"trained {card.name} v{card.version}: {_FAMILIES.get(card.family, card.family)}, "
        f"window {card.window}, on {int(training.get('rows') or 0):,} records{filled} of {keys:,} "
        f"key(s){part} in {report.seconds:.1f} s ({len(result.history)} epochs on "
        f"{result.device}{best}){unused}",
        f"threshold: {th.default:.4g} ({scale}); {len(th.per_key)} per-key threshold(s)",
        *([report.per_key_line] if getattr(report, "per_key_line", "") else []),
        *([report.plots_line] if getattr(report, "plots_line", "") else []),
        f"saved: {report.path} ({_size(report.path)}: {files})",
        # quoted for the shell: the line is there to be copied
        f"next: stream-detector score --model {shlex.quote(str(entry))} --data "
        f"{shlex.quote(str(data))}{impute} --out scores.csv",
    ]


def summary(report: TrainReport) -> dict[str, Any]:
    """A JSON-ready summary for the CLI: where the model went, its name, version, family and
    window, epochs, device, seconds (wall clock), default threshold, per-key threshold
    count and plot paths."""
    card = report.card
    return {"path": str(report.path), "name": card.name, "version": card.version,
            "family": card.family, "window": card.window, "epochs": len(report.result.history),
            "device": report.result.device, "seconds": round(report.seconds, 2),
            "threshold": card.thresholds.default, "per_key": len(card.thresholds.per_key),
            "plots": [str(p) for p in report.plots]}


def dumps(report: TrainReport) -> str:
    """:func:`summary` as indented JSON text (what ``stream-detector train --json`` prints)."""
    return json.dumps(summary(report), indent=2)
