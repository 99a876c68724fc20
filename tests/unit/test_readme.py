"""The README stays true: its configuration table and its commands match the code."""

from __future__ import annotations

import re
from pathlib import Path

from stream_detector.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_documented_with_its_description() -> None:
    for name, field in Settings.model_fields.items():
        row = next((line for line in README.splitlines()
                    if line.startswith(f"| `STREAM_DETECTOR_{name.upper()}` |")), None)
        assert row is not None, f"README lacks STREAM_DETECTOR_{name.upper()}"
        assert field.description and field.description in row


def test_readme_make_targets_exist() -> None:
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z-]+):", makefile, flags=re.M))
    for target in re.findall(r"^make ([a-z-]+)", README, flags=re.M):
        assert target in targets, f"README mentions `make {target}`; the Makefile lacks it"
