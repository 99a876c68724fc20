"""Start-up patches of Faust are pinned to the upstream code they were reviewed against.

Each patch module (:mod:`.faust_patch`, :mod:`.faust_raw_decode`) keeps a mapping from the
dotted name of every upstream function it relies on to the sha256 of that function's source
as reviewed. :func:`matches` compares the installed library with it, and :func:`changed`
names what differs, with one log line, so a patch refuses to install over code it was not
written for (and the patch module's unit test fails on an upgrade).

>>> matches({"f": "def f(): pass"}, {"f": sha256_of("def f(): pass")})
{'f': True}
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping

__all__ = ["changed", "matches", "sha256_of"]


def sha256_of(source: str) -> str:
    """The hex sha256 of a function's source text (UTF-8)."""
    return hashlib.sha256(source.encode()).hexdigest()


def matches(sources: Mapping[str, str], pinned: Mapping[str, str]) -> dict[str, bool]:
    """For each name in ``sources`` (dotted name -> current source), whether its sha256 is the
    one ``pinned`` holds. Raises ``KeyError`` for a name ``pinned`` lacks."""
    return {name: sha256_of(src) == pinned[name] for name, src in sources.items()}


def changed(found: Mapping[str, bool], names: Iterable[str], *, patch: str, module: str,
            consequence: str = "", logger: logging.Logger, level: int = logging.WARNING,
            ) -> list[str]:
    """The names among ``names`` whose source differs from the pinned one (``found`` from
    :func:`matches`); when any does, one log line says which, that ``patch`` is not
    installed, ``consequence`` (if given) and which module to review against them."""
    names = [name for name in names if not found[name]]
    if names:
        logger.log(level, "%s not installed: %s changed upstream; %sreview %s against it",
                   patch, ", ".join(names), f"{consequence}; " if consequence else "", module)
    return names
