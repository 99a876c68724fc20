"""Pins of the upstream code that Faust start-up patches rely on."""

from __future__ import annotations

import doctest
import logging

import pytest

from stream_detector.worker import upstream_pins
from stream_detector.worker.upstream_pins import changed, matches, sha256_of


def test_a_changed_source_is_named_once_with_its_patch_and_module(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pinned = {"a.f": sha256_of("def f(): pass"), "a.g": sha256_of("def g(): pass")}
    found = matches({"a.f": "def f(): pass", "a.g": "def g(): return 1"}, pinned)
    assert found == {"a.f": True, "a.g": False}
    log = logging.getLogger("pins-test")
    with caplog.at_level(logging.WARNING, logger="pins-test"):
        assert changed(found, found, patch="p", module="m.py", logger=log) == ["a.g"]
        assert changed(found, ["a.f"], patch="p", module="m.py", logger=log) == []
    assert [r.getMessage() for r in caplog.records] == [
        "p not installed: a.g changed upstream; review m.py against it"]


def test_the_consequence_and_level_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("pins-test")
    with caplog.at_level(logging.ERROR, logger="pins-test"):
        changed({"x": False}, ["x"], patch="fix", module="m.py", logger=log,
                consequence="records may be skipped", level=logging.ERROR)
    assert caplog.records[0].levelno == logging.ERROR
    assert "records may be skipped; review m.py" in caplog.records[0].getMessage()


def test_a_name_without_a_pin_is_an_error() -> None:
    with pytest.raises(KeyError):
        matches({"new.f": "def f(): pass"}, {})


def test_doctests() -> None:
    assert doctest.testmod(upstream_pins).failed == 0
