"""Routing: every record to exactly one model, or to none (then it is counted and dead-lettered).

Each model's card says which keys of its record kind it serves (``serves``: a list of
keys, a pattern, or every key). For a record of kind ``k`` and key ``x``, the first rule
that matches decides:

1. the model of kind ``k`` that lists ``x`` in ``serves.keys``;
2. the first model of kind ``k`` (in the order the worker was given them) whose
   ``serves.pattern`` matches ``x`` in full;
3. the model of kind ``k`` that serves every key;
4. none: the record is *unrouted*.

Two models listing the same key, or two serving every key of one kind, are refused when the
router is built (:class:`~stream_detector.exceptions.ConfigurationError`): the old behaviour,
scoring such records with both and emitting every anomaly twice, is never right.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final, Generic, Protocol, TypeVar

from schemas.card import ModelCard
from stream_detector.exceptions import ConfigurationError

__all__ = ["Router", "check_routes"]

_CACHE_LIMIT: Final = 200_000  # remembered (kind, key) decisions; cleared when full


class _HasCard(Protocol):
    @property
    def card(self) -> ModelCard: ...


M = TypeVar("M", bound=_HasCard)


class Router(Generic[M]):
    """Decides which model scores a record of a given kind and key.

    Parameters
    ----------
    models
        Served models (anything with a ``card``), in priority order for patterns.

    Raises
    ------
    ConfigurationError
        Two models claim the same key, or both serve every key of one kind.
    """

    def __init__(self, models: Sequence[M]) -> None:
        self._exact: dict[tuple[str, str], M] = {}
        self._patterns: list[tuple[str, re.Pattern[str], M]] = []
        self._catch_all: dict[str, M] = {}
        self._cache: dict[tuple[str, str], M | None] = {}
        for model in models:
            self._add(model)

    def _add(self, model: M) -> None:
        card = model.card
        kind, serves = card.record_kind, card.serves
        if serves.all_keys:
            other = self._catch_all.get(kind)
            if other is not None:
                raise ConfigurationError(
                    f"models {other.card.name} and {card.name} both serve every {kind} key; "
                    "give each the keys it serves (train --serves trained, or a pattern with "
                    "--serves 'pattern:REGEX') or run them in separate workers"
                )
            self._catch_all[kind] = model
        for key in serves.keys:
            other = self._exact.get((kind, key))
            if other is not None:
                raise ConfigurationError(
                    f"models {other.card.name} and {card.name} both list {kind} key {key!r}; "
                    "a key must be served by one model"
                )
            self._exact[(kind, key)] = model
        if serves.pattern is not None:
            self._patterns.append((kind, re.compile(serves.pattern), model))

    def route(self, kind: str, key: str) -> M | None:
        """The model that serves ``key`` of ``kind``, or None when no model does."""
        try:
            return self._cache[(kind, key)]
        except KeyError:
            pass
        found = self._exact.get((kind, key))
        if found is None:
            found = next((m for k, rx, m in self._patterns
                          if k == kind and rx.fullmatch(key) is not None), None)
        if found is None:
            found = self._catch_all.get(kind)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[(kind, key)] = found
        return found

    def describe(self, kind: str) -> str:
        """What the models of ``kind`` serve, for an unrouted record's dead-letter detail."""
        parts = [f"{m.card.name}: {m.card.serves.describe()}"
                 for m in self._models_of(kind)]
        return "; ".join(parts) if parts else f"no {kind} model is loaded"

    def _models_of(self, kind: str) -> list[M]:
        seen: dict[int, M] = {}
        for (k, _), m in self._exact.items():
            if k == kind:
                seen.setdefault(id(m), m)
        for k, _, m in self._patterns:
            if k == kind:
                seen.setdefault(id(m), m)
        if kind in self._catch_all:
            seen.setdefault(id(self._catch_all[kind]), self._catch_all[kind])
        return list(seen.values())


class _CardOnly:
    def __init__(self, card: ModelCard) -> None:
        self.card = card


def check_routes(cards: Sequence[ModelCard]) -> None:
    """Raise :class:`ConfigurationError` if these cards cannot be served together."""
    Router([_CardOnly(c) for c in cards])
