"""The local redis-server without starting it (started for real by the test fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream_detector.exceptions import MissingToolError
from stream_detector.services.redis import RedisServer


def test_missing_redis_server_names_the_package_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(Path, "exists", lambda self: False)
    with pytest.raises(MissingToolError, match="apt-get install redis-server"):
        RedisServer().start()
