"""The local Redis: Debian's ``redis-server`` on a loopback port.

It binds 127.0.0.1 only (protected mode on) and is *ready* when it answers PING, not when
its port opens.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stream_detector.exceptions import MissingToolError
from stream_detector.services.process import (
    ServiceHandle,
    free_port,
    spawn,
    start_ticks,
    wait_ready,
)

__all__ = ["RedisSecurity", "RedisServer", "redis_ready"]


@dataclass(frozen=True)
class RedisSecurity:
    """How a local redis-server secures itself: TLS on its port (the plain port off) and
    ``config`` lines (``tls-cert-file ...``, ``user NAME on >PASSWORD ...``) written to a
    0600 file, so no password shows in a process list; ``client_kwargs`` (credentials,
    ``ssl_ca_certs``) let the readiness probe in."""

    config: Sequence[str]
    client_kwargs: Mapping[str, Any] = field(default_factory=dict)
    tls: bool = True


class RedisServer:
    """Debian's ``redis-server`` on a loopback port.

    Parameters
    ----------
    security
        ACL user, password and TLS for the server (None: plain loopback, no AUTH).
    persistent
        Keep data across restarts in an append-only file (``appendonly.aof`` under the data
        dir, fsynced every second): thresholds published to it survive a restart. Test
        fixtures pass False for speed.
    """

    def __init__(self, security: RedisSecurity | None = None, persistent: bool = True) -> None:
        self.security = security
        self.persistent = persistent

    @staticmethod
    def _binary() -> str:
        exe = shutil.which("redis-server") or (
            "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
        )
        if exe is None:
            raise MissingToolError(
                "redis-server is needed for the local Redis; install it "
                "(Debian/Ubuntu: apt-get install redis-server) or pass --redis URL"
            )
        return exe

    def start(
        self,
        data_dir: Path | None = None,
        port: int | None = None,
        attached: bool = True,
        timeout: float = 30.0,
    ) -> ServiceHandle:
        """Start redis-server and return once it answers PING."""
        exe = self._binary()
        data_dir = Path(data_dir or tempfile.mkdtemp(prefix="sd-redis-"))
        data_dir.mkdir(parents=True, exist_ok=True)
        port = free_port(port)
        log_path = data_dir / "redis.log"
        aof = ["yes", "--appendfsync", "everysec"] if self.persistent else ["no"]
        args = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                *aof, "--dir", str(data_dir), "--daemonize", "no", "--protected-mode", "yes"]
        sec, scheme = self.security, "redis"
        if sec is not None:
            conf = data_dir / "secure.conf"
            conf.touch(mode=0o600)
            conf.write_text("\n".join(sec.config) + "\n")
            args.insert(1, str(conf))  # the file first: the options after it win
            if sec.tls:
                args += ["--port", "0", "--tls-port", str(port)]
                scheme = "rediss"
        proc = spawn(args, log_path, attached)
        url = f"{scheme}://127.0.0.1:{port}/0"
        kwargs = dict(sec.client_kwargs) if sec else {}
        wait_ready("redis-server", proc, lambda: redis_ready(url, kwargs), log_path, timeout)
        return ServiceHandle("redis", url, proc.pid, port, str(data_dir), str(log_path),
                             start_ticks(proc.pid))


def redis_ready(url: str, kwargs: Mapping[str, Any] | None = None) -> bool:
    """Whether the Redis at ``url`` answers PING (``kwargs``: credentials, TLS CA); a
    connection error propagates."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=1.0, **(kwargs or {}))
    try:
        return bool(client.ping())
    finally:
        client.close()
