"""The thresholds the explorer shows and, with writes enabled, sets: through
:class:`stream_detector.core.thresholds.ThresholdStore`, the same code as ``stream-detector
thresholds``, so a change is announced to workers in the same transaction and they apply
it within a second without a restart.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from schemas.card import ModelCard
from stream_detector.core.thresholds import DEFAULT_KEY, ThresholdStore
from stream_detector.exceptions import ConfigurationError

__all__ = ["KeyThreshold", "thresholds_for", "set_threshold", "SETTER"]

SETTER = "stream-detector ui"


@dataclass(frozen=True)
class KeyThreshold:
    """The threshold that applies to one key for one model version, and where it is set."""

    model: str
    version: str
    value: float | None
    scope: str  # key | default | card_key | card_default | none
    set_by: str = ""
    set_at: str = ""

    def as_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _from_card(card: ModelCard | None, key: str) -> tuple[float | None, str]:
    if card is None:
        return None, "none"
    if key in card.thresholds.per_key:
        return card.thresholds.per_key[key], "card_key"
    return card.thresholds.default, "card_default"


def thresholds_for(
    store: ThresholdStore, key: str, models: Iterable[tuple[str, str]],
    cards: dict[tuple[str, str], ModelCard],
) -> list[KeyThreshold]:
    """The key's threshold per model version: its own Redis entry, else the model's Redis
    default (``*``), else the card's (as a worker falls back), else none known."""
    out = []
    for name, version in sorted(set(models) | set(cards)):
        entries = store.list(name, version)
        for field, scope in ((key, "key"), (DEFAULT_KEY, "default")):
            entry = entries.get(field)
            if entry is not None:
                out.append(KeyThreshold(name, version, entry.value, scope, entry.set_by,
                                        entry.set_at))
                break
        else:
            value, scope = _from_card(cards.get((name, version)), key)
            out.append(KeyThreshold(name, version, value, scope))
    return out


def set_threshold(store: ThresholdStore, body: Any,
                  known: set[tuple[str, str]] | None = None) -> KeyThreshold:
    """Set one key's threshold from a request body ``{"model", "version", "key", "value"}``
    (model, version and key JSON strings, value a finite number).

    ``known``: the (model, version) pairs the explorer shows (cards and events); another
    pair is refused, as ``thresholds set`` refuses a key nobody knows: a typo was written
    to Redis where no worker reads it.

    Raises :class:`~stream_detector.exceptions.ConfigurationError` with what to send when
    the body is not that, names the model default (``*``: set it with ``thresholds set``),
    or an unknown model version.
    """
    if not isinstance(body, dict):
        raise ConfigurationError(_SHAPE)
    name, version, key = (_text(body, f) for f in ("model", "version", "key"))
    raw = body.get("value")
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ConfigurationError(f"{_SHAPE}: value a number")
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{_SHAPE}: value a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigurationError(f"{_SHAPE}: model, version and key non-empty, value finite")
    if key == DEFAULT_KEY:
        raise ConfigurationError(
            "the explorer sets keys' own thresholds; set the model default with "
            f"`stream-detector thresholds set {name} '*' VALUE --version {version}`")
    if known is not None and (name, version) not in known:
        shown = ", ".join(f"{n} v{v}" for n, v in sorted(known)[:5]) or "none yet"
        raise ConfigurationError(f"the explorer knows no model {name} version {version} "
                                 f"(it shows {shown})")
    entry = store.set(name, version, key, value, set_by=SETTER)
    return KeyThreshold(name, version, entry.value, "key", entry.set_by, entry.set_at)


_SHAPE = 'send JSON {"model": NAME, "version": VERSION, "key": KEY, "value": NUMBER}'


def _text(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{_SHAPE}: model, version and key non-empty strings, "
                                 f"{field} was {value!r}")
    return value
