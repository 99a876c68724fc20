"""The docstring examples of the data modules run as tests (pytest runs only tests/)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["durations", "load_checks", "load_csv", "load_json", "metrics", "models", "nab",
           "scaling", "synthetic_events", "synthetic_heldout", "synthetic_metrics",
           "synthetic_series", "windows"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name: str) -> None:
    module = importlib.import_module(f"offline_training.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
