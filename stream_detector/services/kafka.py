"""The local Kafka broker: Apache Kafka from Maven Central jars, one KRaft node on loopback.

Kafka 3.9.1 runs from the jars that ``deploy/kafka/pom.xml`` names (fetched once with Maven
into the cache), configured from ``deploy/kafka/server.properties.template``. It listens on
127.0.0.1 only and is *ready* when it answers a metadata request, not when its port opens.
"""

from __future__ import annotations

import base64
import logging
import re
import shutil
import string
import subprocess
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stream_detector.exceptions import MissingToolError, ServiceError, ServiceStartError
from stream_detector.services.process import (
    ServiceHandle,
    free_port,
    port_open,
    spawn,
    start_ticks,
    wait_ready,
)

__all__ = ["KAFKA_VERSION", "BrokerSecurity", "KafkaBroker", "kafka_ready", "kafka_recipe_dir"]

KAFKA_VERSION = "3.9.1"


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


def kafka_recipe_dir() -> Path:
    """``deploy/kafka`` of the source tree (pom, server.properties template, log4j config)."""
    recipe = Path(__file__).resolve().parents[2] / "deploy" / "kafka"
    if not (recipe / "pom.xml").is_file():
        raise ServiceError(
            f"Kafka recipe not found at {recipe}; run from a checkout of stream-detector "
            "(deploy/kafka/pom.xml) or use your own broker with --kafka URL"
        )
    return recipe


class KafkaBroker:
    """Apache Kafka from Maven Central jars, one KRaft node on loopback."""

    def __init__(
        self, cache_dir: Path, recipe_dir: Path | None = None,
        security: BrokerSecurity | None = None,
    ) -> None:
        # absolute: Maven resolves a relative -DoutputDirectory against the pom's folder
        self.cache_dir = Path(cache_dir).expanduser().absolute()
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
        cmd = [mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(self.recipe_dir / "pom.xml"),
               f"-DoutputDirectory={tmp}", "dependency:copy-dependencies"]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0 or not any(tmp.glob("kafka_2.13-*.jar")):
            shutil.rmtree(tmp, ignore_errors=True)
            output = _ANSI.sub("", done.stdout + done.stderr).strip()[-3000:]
            said = output or f"exit code {done.returncode}, and no Kafka jar arrived"
            raise ServiceError(f"fetching Kafka jars with Maven failed:\n{said}")
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
        proc = spawn(args, log_path, attached)
        url = f"kafka://127.0.0.1:{port}"
        client = self.security.client_config if self.security else {}
        wait_ready("Kafka", proc, lambda: kafka_ready(f"127.0.0.1:{port}", client), log_path,
                    timeout)
        return ServiceHandle("kafka", url, proc.pid, port, str(data_dir), str(log_path),
                             start_ticks(proc.pid))


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # colour codes Maven prints even with -B
_QUIET = logging.getLogger("stream_detector.services.probe")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def kafka_ready(bootstrap: str, client: Mapping[str, Any] | None = None) -> bool:
    """Whether the broker at ``bootstrap`` (``host:port``) answers a metadata request with a
    broker list (an open port alone is not enough); ``client`` adds confluent-kafka settings
    (TLS, SASL)."""
    host, _, port = bootstrap.rpartition(":")
    if not port_open(host, int(port)):
        return False  # avoid librdkafka's connection-refused log spam while the JVM boots
    from confluent_kafka.admin import AdminClient

    conf: dict[str, Any] = {
        **(client or {}), "bootstrap.servers": bootstrap, "socket.timeout.ms": 2000,
        "logger": _QUIET,
    }
    admin = AdminClient(conf)
    metadata = admin.list_topics(timeout=2.0)
    return bool(metadata.brokers)
