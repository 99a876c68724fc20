"""The Grafana dashboard and the Prometheus alerting rules over the worker's metrics.

Every metric a panel, an annotation or a rule names must be one the worker's registry
exports (a renamed metric would otherwise leave an empty panel or an alert that never
fires); promtool (Debian's ``prometheus`` package, installed by deploy/system-deps.sh)
checks the rules, the config and every dashboard query, and runs the rules' unit tests;
the compose file must provision exactly these files.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stream_detector.worker.metrics import WorkerMetrics

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "stream-detector.json"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = DEPLOY / "grafana" / "provisioning" / "dashboards" / "stream-detector.yml"
RULES = DEPLOY / "prometheus" / "worker-alerts.yml"
COMPOSE = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())["services"]
BUILT_IN = {"up"}  # series Prometheus itself writes per scrape target
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


def exported() -> set[str]:
    """Every series name the worker's registry exposes, labelled children or not."""
    names = set()
    for family in WorkerMetrics().registry.collect():
        names |= {family.name + s for s in SUFFIXES.get(family.type, ("",))}
    return names


def dashboard_queries() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    return exprs + [a["expr"] for a in dash["annotations"]["list"] if "expr" in a]


def rule_queries() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [r["expr"] for g in groups for r in g["rules"]]


def metric_names(expr: str) -> set[str]:
    """Series names in a PromQL expression: identifiers followed by a selector or range,
    or standing alone, minus functions, keywords and label names."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    without_labels = re.sub(r"\{[^}]*\}", "{}", without_strings)
    without_by = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "",
                        without_labels)
    names = set(re.findall(r"\b([a-z_:][a-z0-9_:]*)\b(?!\s*\()", without_by))
    keywords = {"and", "or", "unless", "offset", "bool", "le", "vector"}
    return {n for n in names if n not in keywords and not re.fullmatch(r"\d+[smhdwy]", n)}


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: run `bash deploy/system-deps.sh` (Debian: prometheus)"
    return found


def test_the_dashboard_is_well_formed_and_uses_the_provisioned_datasource() -> None:
    dash = json.loads(DASHBOARD.read_text())
    uid = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]["uid"]
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 36
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) and len(ids) >= 10
    for panel in dash["panels"]:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
    titles = " ".join(p["title"].lower() for p in dash["panels"])
    for needed in ("records/s", "windows", "anomalies/s", "consumer lag", "scoring latency",
                   "batch size", "degraded", "threshold cache age", "dead letters"):
        assert needed in titles, needed


def test_every_metric_the_dashboard_and_the_rules_name_is_exported_by_the_worker() -> None:
    queries = dashboard_queries() + rule_queries()
    named = set().union(*(metric_names(q) for q in queries))
    assert named - BUILT_IN, "no metric found: the query parser is broken"
    assert named <= exported() | BUILT_IN, sorted(named - exported() - BUILT_IN)
    assert metric_names('sum by (kind) (rate(a_total{job="x"}[5m])) > 10 * b offset 1h') == {
        "a_total", "b"}


def test_promtool_checks_the_rules_the_config_and_the_dashboard_queries(tmp_path: Path) -> None:
    tool = promtool()
    for args in (["check", "rules", str(RULES)],
                 ["check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")],
                 ["test", "rules", str(DEPLOY / "prometheus" / "worker-alerts.test.yml")]):
        done = subprocess.run([tool, *args], capture_output=True, text=True, timeout=60,
                              check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    # every dashboard query as a recording rule: promtool parses the PromQL
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{i}", "expr": q} for i, q in enumerate(dashboard_queries())]}]}
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run([tool, "check", "rules", str(path)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> repository path of a service's read-only bind mounts."""
    out = {}
    for volume in service["volumes"]:
        if isinstance(volume, str) and volume.startswith("../"):
            source, target, mode = volume.split(":")
            assert mode == "ro", volume
            out[target] = (DEPLOY / "compose" / source).resolve()
    return out


def test_compose_provisions_the_dashboard_the_datasource_and_the_rules() -> None:
    grafana = _mounts(COMPOSE["grafana"])
    provisioning = grafana["/etc/grafana/provisioning"]
    assert (provisioning / "datasources" / DATASOURCES.name).resolve() == DATASOURCES.resolve()
    assert (provisioning / "dashboards" / PROVIDERS.name).resolve() == PROVIDERS.resolve()
    provider = yaml.safe_load(PROVIDERS.read_text())["providers"][0]
    dashboards = grafana[provider["options"]["path"]]
    assert (dashboards / DASHBOARD.name).resolve() == DASHBOARD.resolve()
    source = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]
    assert source["url"] == "http://prometheus:9090" and "prometheus" in COMPOSE
    assert "prometheus" in COMPOSE["grafana"]["depends_on"]
    prometheus = _mounts(COMPOSE["prometheus"])
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    for rule_file in config["rule_files"]:  # relative to the config file, in both places
        assert prometheus[f"/etc/prometheus/{rule_file}"] == RULES.resolve()


@pytest.mark.parametrize("name", ["StreamDetectorConsumerLagGrowing", "StreamDetectorDegraded",
                                  "StreamDetectorDeadLettersSpiking"])
def test_the_health_alerts_the_issue_asks_for_exist_with_a_runbook_line(name: str) -> None:
    rules = {r["alert"]: r for g in yaml.safe_load(RULES.read_text())["groups"]
             for r in g["rules"]}
    rule = rules[name]
    assert rule["labels"]["severity"] in {"page", "ticket"}
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]
