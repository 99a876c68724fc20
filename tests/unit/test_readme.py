"""The README stays true: its configuration table and its commands match the code."""

from __future__ import annotations

import re
from pathlib import Path

from stream_detector.settings import markdown_table

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_configuration_table_is_the_generated_one() -> None:
    assert markdown_table() in README, "regenerate it: python -m stream_detector.settings"


def test_readme_make_targets_exist() -> None:
    targets = set(re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), flags=re.M))
    for target in re.findall(r"^make ([a-z-]+)", README, flags=re.M):
        assert target in targets, f"README mentions `make {target}`; the Makefile lacks it"
