"""The hybrid model every test here shares (built once per module: about a second)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hybrid_fixtures import build_hybrid_model


@pytest.fixture(scope="module")
def hybrid_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_hybrid_model(tmp_path_factory.mktemp("hybrid") / "hyb" / "1")
