"""The Kubernetes manifests: well-formed, consistent with each other, with the image and with
the worker's interface (settings, probes, port), and free of secrets.

The core checks need only PyYAML. ``kubectl kustomize`` renders the base, the GPU overlay and
both components when kubectl is installed; ``kubernetes-validate`` checks the rendered objects
against the API schemas when that is installed.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from tool_paths import find_tool

from stream_detector.settings import Settings

REPO = Path(__file__).resolve().parents[3]
K8S = REPO / "deploy" / "k8s"
BASE = K8S / "base"
WEB_PORT = Settings.model_fields["web_port"].default
# Settings the worker interface promises but stream_detector/settings.py does not define yet.
PENDING_SETTINGS = {"STREAM_DETECTOR_WEB_HOST"}
SETTING_NAMES = {f"STREAM_DETECTOR_{n.upper()}" for n in Settings.model_fields} | PENDING_SETTINGS
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL", re.I)
KUSTOMIZE_KINDS = {"Kustomization", "Component"}


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def manifests(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> object for every non-kustomize YAML document directly in ``folder``."""
    out = {}
    for path in sorted(folder.glob("*.yaml")):
        for doc in load_docs(path):
            if doc.get("kind") not in KUSTOMIZE_KINDS:
                out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


BASE_OBJECTS = manifests(BASE)
DEPLOYMENT = BASE_OBJECTS[("Deployment", "stream-detector-worker")]
POD = DEPLOYMENT["spec"]["template"]["spec"]
(CONTAINER,) = POD["containers"]
CONFIG = BASE_OBJECTS[("ConfigMap", "stream-detector-config")]["data"]
HPA = manifests(K8S / "components" / "hpa")[("HorizontalPodAutoscaler", "stream-detector-worker")]


def selector_matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def port_number(port: int | str) -> int:
    """A probe or Service port (number or container port name) as a number."""
    if isinstance(port, int):
        return port
    (match,) = [p["containerPort"] for p in CONTAINER["ports"] if p["name"] == port]
    return int(match)


def test_every_document_is_a_named_kubernetes_object() -> None:
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in load_docs(path):
            assert {"apiVersion", "kind"} <= doc.keys(), path
            if doc["kind"] in KUSTOMIZE_KINDS:
                continue
            assert doc.get("metadata", {}).get("name"), f"{path}: {doc['kind']} without a name"
            is_patch = "overlays" in path.parts  # patches name their target, nothing more
            if doc["kind"] != "Namespace" and not is_patch:
                labels = doc["metadata"].get("labels", {})
                assert labels.get("app.kubernetes.io/name") == "stream-detector", path


def _references(kustomization: dict[str, Any]) -> list[str]:
    refs = list(kustomization.get("resources", [])) + list(kustomization.get("components", []))
    refs += [p["path"] for p in kustomization.get("patches", []) if "path" in p]
    return refs


def test_kustomizations_reference_existing_files_and_leave_none_out() -> None:
    referenced: set[Path] = set()
    for kfile in sorted(K8S.rglob("kustomization.yaml")):
        (doc,) = load_docs(kfile)
        assert doc["kind"] in KUSTOMIZE_KINDS
        for ref in _references(doc):
            target = (kfile.parent / ref).resolve()
            assert target.exists(), f"{kfile.relative_to(REPO)} lists missing {ref}"
            if target.is_dir():
                assert (target / "kustomization.yaml").exists(), f"{ref} is no kustomization"
                assert K8S.resolve() in target.parents or target == K8S.resolve()
                # kustomize refuses an overlay whose base directory contains it
                assert target not in kfile.parent.resolve().parents, f"{ref} contains {kfile}"
            referenced.add(target)
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        if path.name == "secret.example.yaml":
            assert path.resolve() not in referenced, "the example Secret must never be applied"
            continue
        assert path.resolve() in referenced, f"{path.relative_to(REPO)} is in no kustomization"


def test_selectors_match_the_pod_labels() -> None:
    pod_labels = DEPLOYMENT["spec"]["template"]["metadata"]["labels"]
    assert selector_matches(DEPLOYMENT["spec"]["selector"]["matchLabels"], pod_labels)
    service = BASE_OBJECTS[("Service", "stream-detector-metrics")]
    assert selector_matches(service["spec"]["selector"], pod_labels)
    pdb = BASE_OBJECTS[("PodDisruptionBudget", "stream-detector-worker")]
    assert selector_matches(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    monitor = manifests(K8S / "components" / "podmonitor")[("PodMonitor", "stream-detector-worker")]
    assert selector_matches(monitor["spec"]["selector"]["matchLabels"], pod_labels)
    for endpoint in monitor["spec"]["podMetricsEndpoints"]:
        assert port_number(endpoint["port"]) == WEB_PORT and endpoint["path"] == "/metrics"
    target = HPA["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", DEPLOYMENT["metadata"]["name"])


def test_probes_and_metrics_use_the_web_port() -> None:
    (declared,) = CONTAINER["ports"]
    assert declared["containerPort"] == WEB_PORT == int(CONFIG["STREAM_DETECTOR_WEB_PORT"])
    assert CONFIG["STREAM_DETECTOR_WEB_HOST"] == "0.0.0.0"  # noqa: S104 (inside the pod)
    expected = {"startupProbe": "/health", "livenessProbe": "/health", "readinessProbe": "/ready"}
    for probe, path in expected.items():
        get = CONTAINER[probe]["httpGet"]
        assert get["path"] == path and port_number(get["port"]) == WEB_PORT, probe
    annotations = DEPLOYMENT["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(WEB_PORT)
    assert annotations["prometheus.io/path"] == "/metrics"
    (service_port,) = BASE_OBJECTS[("Service", "stream-detector-metrics")]["spec"]["ports"]
    assert service_port["port"] == port_number(service_port["targetPort"]) == WEB_PORT


def test_environment_names_real_settings() -> None:
    assert set(CONFIG) <= SETTING_NAMES, sorted(set(CONFIG) - SETTING_NAMES)
    env_names = {e["name"] for e in CONTAINER["env"]}
    assert env_names <= SETTING_NAMES, sorted(env_names - SETTING_NAMES)
    assert CONTAINER["envFrom"] == [{"configMapRef": {"name": "stream-detector-config"}}]
    # Service links would inject <SERVICE>_PORT=tcp://... variables; a Service whose name
    # starts with stream-detector-web would then override STREAM_DETECTOR_WEB_PORT.
    assert POD["enableServiceLinks"] is False


def test_secrets_only_by_reference_and_the_example_matches() -> None:
    assert not [k for k in CONFIG if SECRETISH.search(k)], "a secret in the ConfigMap"
    assert not [key for key in BASE_OBJECTS if key[0] == "Secret"], "base must not ship a Secret"
    refs: dict[str, set[str]] = {}
    for entry in CONTAINER["env"]:
        if SECRETISH.search(entry["name"]):
            assert "value" not in entry, f"{entry['name']} written in plain text"
            ref = entry["valueFrom"]["secretKeyRef"]
            refs.setdefault(ref["name"], set()).add(ref["key"])
    assert {"STREAM_DETECTOR_KAFKA_SASL_PASSWORD", "STREAM_DETECTOR_REDIS_PASSWORD"} <= {
        e["name"] for e in CONTAINER["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    (example,) = load_docs(K8S / "secret.example.yaml")
    assert example["kind"] == "Secret"
    assert refs == {example["metadata"]["name"]: set(example["stringData"])}
    assert all(value == "" for value in example["stringData"].values()), "example holds a value"
    assert "data" not in example  # base64 is no protection; the example carries no values


def _dockerfile_uid() -> int:
    text = (REPO / "deploy" / "docker" / "Dockerfile").read_text()
    return int(re.findall(r"^USER (\d+)", text, flags=re.M)[-1])


def test_pod_runs_non_root_read_only_with_writable_emptydirs() -> None:
    pod_security, security = POD["securityContext"], CONTAINER["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["runAsUser"] == _dockerfile_uid() != 0
    assert pod_security["seccompProfile"]["type"] == "RuntimeDefault"
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert POD["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in POD["volumes"]}
    mounts = {m["mountPath"]: m for m in CONTAINER["volumeMounts"]}
    for writable in (CONFIG["STREAM_DETECTOR_STATE_DIR"], CONFIG["STREAM_DETECTOR_CACHE_DIR"],
                     "/tmp"):  # noqa: S108
        covering = [p for p in mounts if writable == p or writable.startswith(p + "/")]
        assert covering, f"{writable} is on the read-only root filesystem"
        assert "emptyDir" in volumes[mounts[covering[0]]["name"]], writable
    models = mounts["/models"]
    assert models["readOnly"] is True
    claim = volumes[models["name"]]["persistentVolumeClaim"]
    assert claim["readOnly"] is True
    assert ("PersistentVolumeClaim", claim["claimName"]) in BASE_OBJECTS


def test_container_runs_the_worker_command_with_resources() -> None:
    args = CONTAINER["args"]
    assert args[0] == "worker" and "command" not in CONTAINER  # keep the image's ENTRYPOINT
    assert args[args.index("--model") + 1].startswith("/models/")
    assert {"--input", "--output"} <= set(args)
    resources = CONTAINER["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert "memory" in resources["limits"]
    assert re.fullmatch(r"stream-detector:[\w.-]+", CONTAINER["image"])


def test_replica_counts_stay_within_the_partitions() -> None:
    partitions = int(CONFIG["STREAM_DETECTOR_TOPIC_PARTITIONS"])
    assert DEPLOYMENT["spec"]["replicas"] <= partitions
    assert 1 <= HPA["spec"]["minReplicas"] <= HPA["spec"]["maxReplicas"] <= partitions
    gpu = load_docs(K8S / "overlays" / "gpu" / "deployment-gpu.yaml")[0]
    assert gpu["spec"]["replicas"] <= partitions
    # Surge pods at replicas = partitions get no partition and would never become ready.
    assert DEPLOYMENT["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0


def test_gpu_overlay_patches_the_base_worker() -> None:
    folder = K8S / "overlays" / "gpu"
    (kustomization,) = load_docs(folder / "kustomization.yaml")
    (image,) = kustomization["images"]
    assert image["name"] == CONTAINER["image"].split(":")[0] and "cuda" in image["newTag"]
    patch = load_docs(folder / "deployment-gpu.yaml")[0]
    assert patch["metadata"]["name"] == DEPLOYMENT["metadata"]["name"]
    (container,) = patch["spec"]["template"]["spec"]["containers"]
    assert container["name"] == CONTAINER["name"]
    assert int(container["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    config = load_docs(folder / "configmap-gpu.yaml")[0]
    assert config["metadata"]["name"] == "stream-detector-config"
    assert config["data"] == {"STREAM_DETECTOR_PROVIDER": "cuda"}


# --- rendered with kustomize, when kubectl is there ----------------------------------------


def _kustomize(folder: Path) -> list[dict[str, Any]]:
    kubectl = find_tool("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    done = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def _by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in docs}


def _with_components(tmp_path: Path) -> Path:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    rel = Path(os.path.relpath(K8S, overlay))
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [str(rel / "base")],
        "components": [str(rel / "components" / "hpa"), str(rel / "components" / "podmonitor")],
    }))
    return overlay


def test_kustomize_renders_base_overlay_and_components(tmp_path: Path) -> None:
    top = _kustomize(K8S)
    assert top == _kustomize(BASE)
    for doc in top:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "stream-detector", doc["kind"]
    gpu = _by_kind(_kustomize(K8S / "overlays" / "gpu"))
    (container,) = gpu["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["image"].endswith("-cuda")
    assert int(container["resources"]["limits"]["nvidia.com/gpu"]) == 1
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"  # base survives the patch
    assert gpu["ConfigMap"]["data"] == {**CONFIG, "STREAM_DETECTOR_PROVIDER": "cuda"}
    extra = _by_kind(_kustomize(_with_components(tmp_path)))
    assert {"HorizontalPodAutoscaler", "PodMonitor"} <= extra.keys()
    assert "replicas" not in extra["Deployment"]["spec"], "the HPA owns the replica count"


def test_rendered_objects_pass_the_api_schemas(tmp_path: Path) -> None:
    validator = find_tool("kubernetes-validate")
    if validator is None:
        pytest.skip("kubernetes-validate is not installed")
    rendered = tmp_path / "rendered.yaml"
    docs = _kustomize(K8S / "overlays" / "gpu") + [
        d for d in _kustomize(_with_components(tmp_path)) if d["kind"] == "HorizontalPodAutoscaler"
    ]
    rendered.write_text(yaml.safe_dump_all(docs))
    for path in (rendered, K8S / "secret.example.yaml"):
        done = subprocess.run([validator, "--strict", "--quiet", str(path)], capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def test_grace_period_outlasts_the_workers_shutdown_bound() -> None:
    """The worker exits by STREAM_DETECTOR_SHUTDOWN_TIMEOUT even with Kafka gone; the pod's
    grace must leave margin after it (and stay within Kubernetes' default 30 s)."""
    bound = float(CONFIG.get("STREAM_DETECTOR_SHUTDOWN_TIMEOUT",
                             Settings.model_fields["shutdown_timeout"].default))
    grace = POD["terminationGracePeriodSeconds"]
    assert bound + 5 <= grace <= 30, (bound, grace)
