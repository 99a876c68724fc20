"""The environment of the secure-transport tests: the README's example, run as written.

The README's configuration section holds a SASL_SSL + Redis TLS example (a bash block of
``export`` lines). :func:`readme_environment` takes that block verbatim, replaces only the
example hosts, ports and file paths with the test services' and files, runs it in bash and
returns the ``STREAM_DETECTOR_*`` variables it exported, so a broken example breaks the tests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from secure_services import REDIS_PASSWORD, SCRAM_PASSWORD, Pki

from stream_detector.services.process import ServiceHandle

ROOT = Path(__file__).resolve().parents[2]
_BLOCK = re.compile(r"<!-- secure-example:[^>]*-->\s*```bash\n(.*?)```", re.S)
# what the example names, and what stands in for it here (hosts, ports and paths only)
EXAMPLE_KAFKA = "kafka-1.example.com:9093,kafka-2.example.com:9093"
EXAMPLE_REDIS = "redis.example.com:6380"
EXAMPLE_SECRETS = "/run/secrets/"
EXAMPLE_CA = "/etc/stream-detector/tls/ca.pem"


def readme_block() -> str:
    """The README's secure configuration example, exactly as written there."""
    match = _BLOCK.search((ROOT / "README.md").read_text())
    assert match, "README.md lost its <!-- secure-example --> bash block"
    return match[1]


def readme_environment(
    kafka: ServiceHandle, redis: ServiceHandle, pki: Pki, folder: Path
) -> dict[str, str]:
    """Run the README block against the test services; return what it exported."""
    secrets = folder / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    (secrets / "kafka-password").write_text(SCRAM_PASSWORD + "\n")
    (secrets / "redis-password").write_text(REDIS_PASSWORD + "\n")
    block = readme_block()
    for example, here in ((EXAMPLE_KAFKA, f"127.0.0.1:{kafka.port}"),
                          (EXAMPLE_REDIS, f"127.0.0.1:{redis.port}"),
                          (EXAMPLE_SECRETS, f"{secrets}/"), (EXAMPLE_CA, str(pki.ca))):
        assert example in block, f"the README example no longer mentions {example}"
        block = block.replace(example, here)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block + "\nenv -0"],  # noqa: S603,S607
                          env={"PATH": os.environ["PATH"]}, capture_output=True, check=True)
    exported = dict(item.split("=", 1) for item in done.stdout.decode().split("\0")
                    if item.startswith("STREAM_DETECTOR_"))
    assert set(exported) == set(re.findall(r"^export (STREAM_DETECTOR_\w+)=", block, re.M))
    return exported


def clean_environ() -> dict[str, str]:
    """This process's environment without any STREAM_DETECTOR_* setting, plus the checkout
    on PYTHONPATH (child processes import this tree)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_DETECTOR_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def cli(env: dict[str, str], *args: str, timeout: float = 120.0
        ) -> subprocess.CompletedProcess[str]:
    """``python -m stream_detector ARGS`` with exactly ``env``; returns the finished process."""
    return subprocess.run([sys.executable, "-m", "stream_detector", *args], env=env,  # noqa: S603
                          capture_output=True, text=True, timeout=timeout, check=False)


def timed_cli(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    done = cli(env, *args)
    return done, time.monotonic() - start


def event_lines(text: str) -> list[dict[str, object]]:
    """JSON objects printed one a line (``alerts --dry-run`` payloads)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]
