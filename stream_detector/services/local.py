"""Local Kafka broker and redis-server on demand, for people (CLI), tests and the demo.

Kafka 3.9.1 runs from Maven Central jars (``deploy/kafka/pom.xml``) as a single KRaft node on
loopback; Redis is Debian's ``redis-server``. Both listen on 127.0.0.1 only. A service is
*ready* when it answers a real request (a Kafka metadata request, a Redis PING), not when its
port opens.

Two lifetimes:

* attached (test fixtures): the child dies with the Python process that started it
  (``PR_SET_PDEATHSIG``), so a crashed test run leaves no orphan JVM;
* detached (``stream-detector services start``): the children outlive the command; their pids
  and URLs live in a state file so ``status`` and ``stop`` can find them.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import string
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stream_detector.exceptions import MissingToolError, ServiceError, ServiceStartError

__all__ = [
    "KAFKA_VERSION",
    "die_with_parent",
    "BrokerSecurity",
    "RedisSecurity",
    "ServiceHandle",
    "KafkaBroker",
    "RedisServer",
    "free_port",
    "kafka_recipe_dir",
    "local_services",
    "stop_handle",
    "is_alive",
    "handle_ready",
    "load_state",
    "save_state",
    "clear_state",
]

KAFKA_VERSION = "3.9.1"
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ServiceHandle:
    """A running local service: enough to reach it and to stop it."""

    name: str
    url: str
    pid: int
    port: int
    data_dir: str
    log_path: str
    started: int | None = None  # the process's start time (clock ticks after boot)


@dataclass(frozen=True)
class BrokerSecurity:
    """How a local broker secures its client listener (tests build SASL_SSL ones with it).

    ``properties`` override lines of ``server.properties`` (values may use ``${broker_port}``
    and ``${controller_port}``); ``format_args`` go to ``StorageTool format`` (e.g.
    ``--add-scram``); ``client_config`` is what a confluent-kafka client needs on top of
    ``bootstrap.servers`` to pass the readiness probe.
    """

    properties: Mapping[str, str]
    format_args: Sequence[str] = ()
    client_config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RedisSecurity:
    """How a local redis-server secures itself: TLS on its port (the plain port off) and
    ``config`` lines (``tls-cert-file ...``, ``user NAME on >PASSWORD ...``) written to a
    0600 file, so no password shows in a process list; ``client_kwargs`` (credentials,
    ``ssl_ca_certs``) let the readiness probe in."""

    config: Sequence[str]
    client_kwargs: Mapping[str, Any] = field(default_factory=dict)
    tls: bool = True


def free_port(preferred: int | None = None) -> int:
    """A free TCP port on 127.0.0.1 (``preferred`` when it is free)."""
    candidates = [preferred, 0] if preferred else [0]
    for candidate in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # servers bind with SO_REUSEADDR: a port in TIME_WAIT is free for them too
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", candidate or 0))
            except OSError:
                continue
            port: int = sock.getsockname()[1]
            return port
    raise ServiceError("no free TCP port on 127.0.0.1")  # pragma: no cover


def kafka_recipe_dir() -> Path:
    """``deploy/kafka`` of the source tree (pom, server.properties template, log4j config)."""
    recipe = Path(__file__).resolve().parents[2] / "deploy" / "kafka"
    if not (recipe / "pom.xml").is_file():
        raise ServiceError(
            f"Kafka recipe not found at {recipe}; run from a checkout of stream-detector "
            "(deploy/kafka/pom.xml) or use your own broker with --kafka URL"
        )
    return recipe


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask the kernel to SIGTERM this process when its parent dies (Linux ``prctl``); for
    ``preexec_fn`` of a child that must not outlive the command that started it."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn(
    args: list[str], log_path: Path, attached: bool, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    log = log_path.open("ab")
    try:
        return subprocess.Popen(  # noqa: S603 - argv built here from resolved executables
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent if attached else None,  # noqa: PLW1509
            env=env,
        )
    finally:
        log.close()


def is_alive(pid: int) -> bool:
    """Whether ``pid`` runs (zombies count as dead)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks after boot, /proc/PID/stat field 22), or None.

    With the pid it identifies one process: a pid reused after a reboot or a crash starts
    at another time.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def owns(handle: ServiceHandle) -> bool:
    """Whether ``handle.pid`` is still the process that was started for it: same start
    time, and its command line names the service's data folder or port."""
    try:
        cmdline = Path(f"/proc/{handle.pid}/cmdline").read_bytes()
    except OSError:
        return False
    if handle.started is not None and start_ticks(handle.pid) != handle.started:
        return False
    marks = [m.encode() for m in (handle.data_dir, f":{handle.port}") if m and m != ":0"]
    return any(m in cmdline for m in marks) or (not marks and handle.started is not None)


def stop_handle(handle: ServiceHandle, timeout: float = 20.0) -> None:
    """SIGTERM the service's process group, then SIGKILL what is left after ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(handle.pid, sig)
        deadline = time.monotonic() + (timeout if sig == signal.SIGTERM else 5.0)
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(handle.pid, os.WNOHANG)
            if not is_alive(handle.pid):
                return
            time.sleep(0.1)


def _wait_ready(
    name: str,
    proc: subprocess.Popen[bytes],
    probe: Callable[[], bool],
    log_path: Path,
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise ServiceStartError(f"{name} exited with code {proc.returncode}; log tail:\n{tail}")
        with contextlib.suppress(Exception):
            if probe():
                return
        time.sleep(0.2)
    proc.terminate()
    raise ServiceStartError(f"{name} not ready after {timeout:.0f}s; see {log_path}")


class KafkaBroker:
    """Apache Kafka from Maven Central jars, one KRaft node on loopback."""

    def __init__(
        self, cache_dir: Path, recipe_dir: Path | None = None,
        security: BrokerSecurity | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.recipe_dir = recipe_dir or kafka_recipe_dir()
        self.security = security
        self.libs_dir = self.cache_dir / "kafka" / KAFKA_VERSION / "libs"

    def ensure_jars(self) -> Path:
        """Fetch the broker's jars once (about 50 MB) into the cache; later calls reuse them."""
        if (self.libs_dir / ".complete").is_file():
            return self.libs_dir
        mvn = shutil.which("mvn")
        if mvn is None:
            raise MissingToolError(
                "Maven (mvn) is needed once to fetch the Kafka jars from Maven Central; "
                "install it (Debian/Ubuntu: apt-get install maven) or pass --kafka URL"
            )
        self.libs_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="libs-", dir=self.libs_dir.parent))
        cmd = [mvn, "-q", "-B", "-f", str(self.recipe_dir / "pom.xml"),
               f"-DoutputDirectory={tmp}", "dependency:copy-dependencies"]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0 or not any(tmp.glob("kafka_2.13-*.jar")):
            shutil.rmtree(tmp, ignore_errors=True)
            output = (done.stdout + done.stderr)[-3000:]
            raise ServiceError(f"fetching Kafka jars with Maven failed:\n{output}")
        (tmp / ".complete").write_text(KAFKA_VERSION)
        shutil.rmtree(self.libs_dir, ignore_errors=True)
        tmp.rename(self.libs_dir)
        return self.libs_dir

    @staticmethod
    def _java() -> str:
        java = shutil.which("java")
        if java is None:
            raise MissingToolError(
                "Java 17 or newer is needed to run the local Kafka broker; install it "
                "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless) or pass --kafka URL"
            )
        return java

    def _render_config(self, data_dir: Path, port: int, controller_port: int) -> Path:
        template = string.Template((self.recipe_dir / "server.properties.template").read_text())
        ports = {"broker_port": port, "controller_port": controller_port}
        text = template.substitute(ports, log_dir=data_dir / "data")
        overrides = dict(self.security.properties) if self.security else {}
        lines = []
        for line in text.splitlines():  # an overridden key keeps its place in the file
            key = line.split("=", 1)[0].strip()
            lines.append(f"{key}={overrides.pop(key)}" if key in overrides else line)
        lines += [f"{k}={v}" for k, v in overrides.items()]
        config = data_dir / "server.properties"
        config.write_text(string.Template("\n".join(lines) + "\n").substitute(ports))
        return config

    def _format(self, java: str, classpath: str, config: Path) -> None:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        # "=" form: a base64 id may start with "-", which argparse would take for an option
        fmt = [java, "-cp", classpath, "kafka.tools.StorageTool", "format",
               f"--cluster-id={cluster_id}", "-c", str(config), "--ignore-formatted",
               *(self.security.format_args if self.security else ())]
        done = subprocess.run(fmt, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise ServiceStartError(f"formatting KRaft storage failed:\n{done.stderr[-2000:]}")

    def start(
        self,
        data_dir: Path | None = None,
        port: int | None = None,
        attached: bool = True,
        timeout: float = 120.0,
    ) -> ServiceHandle:
        """Format storage (first time only) and start the broker; return once it is ready."""
        java = self._java()
        libs = self.ensure_jars()
        data_dir = Path(data_dir or tempfile.mkdtemp(prefix="sd-kafka-"))
        (data_dir / "logs").mkdir(parents=True, exist_ok=True)
        port = free_port(port)
        controller_port = free_port(port + 1)  # stable across restarts of one data dir
        config = self._render_config(data_dir, port, controller_port)
        classpath = f"{libs}/*"
        log_path = data_dir / "logs" / "console.log"
        if not (data_dir / "data" / "meta.properties").is_file():  # first start: format
            self._format(java, classpath, config)
        log4j = self.recipe_dir / "log4j.properties"
        args = [java, "-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
                f"-Dkafka.logs.dir={data_dir / 'logs'}", f"-Dlog4j.configuration=file:{log4j}",
                "-cp", classpath, "kafka.Kafka", str(config)]
        proc = _spawn(args, log_path, attached)
        url = f"kafka://127.0.0.1:{port}"
        client = self.security.client_config if self.security else {}
        _wait_ready("Kafka", proc, lambda: _kafka_ready(f"127.0.0.1:{port}", client), log_path,
                    timeout)
        return ServiceHandle("kafka", url, proc.pid, port, str(data_dir), str(log_path),
                             start_ticks(proc.pid))


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


_QUIET = logging.getLogger("stream_detector.services.probe")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def _kafka_ready(bootstrap: str, client: Mapping[str, Any] | None = None) -> bool:
    """A metadata request answered with a broker list; an open port alone is not enough."""
    host, _, port = bootstrap.rpartition(":")
    if not _port_open(host, int(port)):
        return False  # avoid librdkafka's connection-refused log spam while the JVM boots
    from confluent_kafka.admin import AdminClient

    conf: dict[str, Any] = {
        **(client or {}), "bootstrap.servers": bootstrap, "socket.timeout.ms": 2000,
        "logger": _QUIET,
    }
    admin = AdminClient(conf)
    metadata = admin.list_topics(timeout=2.0)
    return bool(metadata.brokers)


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
        proc = _spawn(args, log_path, attached)
        url = f"{scheme}://127.0.0.1:{port}/0"
        kwargs = dict(sec.client_kwargs) if sec else {}
        _wait_ready("redis-server", proc, lambda: _redis_ready(url, kwargs), log_path, timeout)
        return ServiceHandle("redis", url, proc.pid, port, str(data_dir), str(log_path),
                             start_ticks(proc.pid))


def _redis_ready(url: str, kwargs: Mapping[str, Any] | None = None) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=1.0, **(kwargs or {}))
    try:
        return bool(client.ping())
    finally:
        client.close()


# --- detached services for people: a state file remembers what runs ----------------------


def _state_path(cache_dir: Path) -> Path:
    return Path(cache_dir) / "services" / "state.json"


def load_state(cache_dir: Path) -> dict[str, ServiceHandle]:
    """Services recorded by ``services start`` (alive or not)."""
    path = _state_path(cache_dir)
    if not path.is_file():
        return {}
    raw: dict[str, Any] = json.loads(path.read_text())
    return {name: ServiceHandle(**entry) for name, entry in raw.items()}


def save_state(cache_dir: Path, handles: dict[str, ServiceHandle]) -> None:
    path = _state_path(cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({k: asdict(v) for k, v in handles.items()}, indent=2))


def clear_state(cache_dir: Path) -> None:
    _state_path(cache_dir).unlink(missing_ok=True)


def handle_ready(handle: ServiceHandle) -> bool:
    """Whether a recorded service is alive and answers a real request."""
    if not is_alive(handle.pid):
        return False
    try:
        if handle.name == "kafka":
            return _kafka_ready(handle.url.split("://", 1)[1])
        return _redis_ready(handle.url)
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return False


@contextlib.contextmanager
def local_services(cache_dir: Path) -> Iterator[tuple[ServiceHandle, ServiceHandle]]:
    """Kafka and Redis for the duration of a ``with`` block (tests, benchmarks, the demo)."""
    redis_handle = RedisServer(persistent=False).start()
    try:
        kafka_handle = KafkaBroker(cache_dir).start()
        try:
            yield kafka_handle, redis_handle
        finally:
            stop_handle(kafka_handle)
            shutil.rmtree(kafka_handle.data_dir, ignore_errors=True)
    finally:
        stop_handle(redis_handle)
        shutil.rmtree(redis_handle.data_dir, ignore_errors=True)
