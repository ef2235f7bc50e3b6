"""helm/oz-bridge rendered by the real Helm: what each mode deploys, and what the chart refuses."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.chart import CHART, HA_VALUES, Rendered, notes, refusal, render
from tests.deploy.tools import ROOT

CONTRACT_SECRETS = {
    "WARP_API_KEY",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "OZ_BRIDGE_DATABASE_URL",
}
PG_URL = "postgresql://oz:pw@db.example.internal/oz"


def ha() -> Rendered:
    return render("--values", str(HA_VALUES))


def test_values_have_the_contracts_keys() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["replicaCount"] == 1
    assert set(values["image"]) == {"repository", "tag", "pullPolicy"}
    assert isinstance(values["config"], dict) and isinstance(values["env"], dict)
    assert set(values["secrets"]) == CONTRACT_SECRETS
    assert values["existingSecret"] == ""
    assert {"enabled", "size", "storageClass"} <= set(values["persistence"])
    assert "enabled" in values["ingress"]
    assert values["serviceMonitor"]["enabled"] is False and values["prometheusRule"]["enabled"] is False
    for key in ("podDisruptionBudget", "resources", "podSecurityContext", "securityContext"):
        assert values[key], key


def test_default_is_one_sqlite_replica_on_a_kept_volume_replaced_by_recreate() -> None:
    chart = render()
    deployment = chart.one("Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    claim = chart.one("PersistentVolumeClaim")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert chart.volume("data")["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert not chart.has("PodDisruptionBudget") and not chart.has("Ingress")
    assert not chart.has("ServiceMonitor") and not chart.has("PrometheusRule")
    assert "OZ_BRIDGE_DATABASE_URL" not in chart.env()  # the image's default: SQLite on the volume


def test_ha_values_are_three_postgresql_replicas_rolling_behind_a_disruption_budget() -> None:
    chart = ha()
    deployment = chart.one("Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert chart.one("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert not chart.has("PersistentVolumeClaim")
    assert chart.volume("data") == {"name": "data", "emptyDir": {}}
    assert {"Ingress", "ServiceMonitor", "PrometheusRule"} <= set(chart.kinds())


def test_the_pod_is_locked_down() -> None:
    chart = render()
    pod, container = chart.pod, chart.container
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False
    # Writable places on a read-only root: the data volume and a small in-memory /tmp.
    assert chart.mounts() == {"/etc/oz-bridge": "config", "/var/lib/oz-bridge": "data", "/tmp": "tmp"}
    assert chart.volume("tmp")["emptyDir"]["medium"] == "Memory"


def test_the_pod_runs_as_the_images_user() -> None:
    (user,) = re.findall(r"^USER (\S+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    context = render().pod["securityContext"]
    assert user == f"{context['runAsUser']}:{context['runAsGroup']}"


def test_a_service_named_oz_bridge_cannot_set_the_bridges_port() -> None:
    # Service links would inject OZ_BRIDGE_PORT=tcp://10.…:8080, which the bridge reads as its port.
    chart = render()
    assert chart.one("Service")["metadata"]["name"] == "oz-bridge"
    assert chart.pod["enableServiceLinks"] is False
    assert chart.env()["OZ_BRIDGE_PORT"] == "8080"


def test_probes_watch_health_readiness_and_a_slow_first_start() -> None:
    container = render().container
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/healthz"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60  # migrations run at start
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]


def test_config_is_mounted_as_bridge_yaml_and_a_change_rolls_the_pods() -> None:
    config = {"poll": {"interval": 30}, "targets": {"out": {"type": "console"}}, "routes": []}
    chart = render(values={"config": config})
    assert yaml.safe_load(chart.one("ConfigMap")["data"]["bridge.yaml"]) == config
    assert chart.env()["OZ_BRIDGE_CONFIG"] == "/etc/oz-bridge/bridge.yaml"
    changed = render(values={"config": {**config, "poll": {"interval": 60}}})

    def checksum(rendered: Rendered) -> str:
        annotation: str = rendered.one("Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        return annotation

    assert checksum(changed) != checksum(chart)


def test_secrets_become_environment_and_empty_ones_are_left_out() -> None:
    chart = render(values={"secrets": {"WARP_API_KEY": "wk-1", "SLACK_BOT_TOKEN": ""}})
    secret = chart.one("Secret")
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {"WARP_API_KEY": "wk-1"}
    assert chart.container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]


def test_existing_secret_replaces_the_charts_secret() -> None:
    chart = render(values={"existingSecret": "mine"})
    assert not chart.has("Secret")
    assert chart.container["envFrom"] == [{"secretRef": {"name": "mine"}}]
    assert "checksum/secret" not in chart.one("Deployment")["spec"]["template"]["metadata"]["annotations"]


def test_a_name_that_config_uses_must_be_set() -> None:
    config = {"targets": {"audit": {"type": "webhook", "url": "https://h.example/x", "secret": "${AUDIT_SECRET}"}}}
    error = refusal(values={"config": config})
    assert "${AUDIT_SECRET}" in error and "secrets.AUDIT_SECRET" in error
    chart = render(values={"config": config, "secrets": {"AUDIT_SECRET": "whsec_abc"}})
    assert "AUDIT_SECRET" in chart.one("Secret")["data"]
    render(values={"config": {"targets": {"t": {"type": "webhook", "url": "https://h.example/$${LITERAL}"}}}})


def test_three_replicas_on_sqlite_are_refused() -> None:
    assert "OZ_BRIDGE_DATABASE_URL" in refusal("--set", "replicaCount=3")
    error = refusal(values={"replicaCount": 3, "secrets": {"OZ_BRIDGE_DATABASE_URL": "sqlite:////data/b.db"}})
    assert "OZ_BRIDGE_DATABASE_URL" in error
    assert "database.engine" in refusal(values={"replicaCount": 3, "existingSecret": "mine"})


def test_three_replicas_on_postgresql_are_accepted_from_secrets_or_an_existing_secret() -> None:
    assert render(values={"replicaCount": 3, "secrets": {"OZ_BRIDGE_DATABASE_URL": PG_URL}}).has("PodDisruptionBudget")
    chart = render(values={"replicaCount": 3, "existingSecret": "mine", "database": {"engine": "postgresql"}})
    assert chart.one("Deployment")["spec"]["strategy"]["type"] == "RollingUpdate"


@pytest.mark.parametrize(
    "values",
    [
        {"replicas": 2},
        {"image": {"repository": "x", "digest": "sha256:0"}},
        {"persistence": {"enabled": True, "sise": "1Gi"}},
        {"env": {"WARP_API_KEY": "belongs-in-secrets"}},
        {"secrets": {"not a name": "x"}},
    ],
)
def test_unknown_or_misplaced_keys_are_refused(values: dict[str, Any]) -> None:
    assert "schema" in refusal(values=values)


def test_only_slack_events_are_published() -> None:
    ingress = ha().one("Ingress")
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/slack/events", "Exact")
    assert path["backend"]["service"]["port"] == {"name": "http"}


def test_service_monitor_scrapes_metrics_on_the_http_port() -> None:
    chart = ha()
    (endpoint,) = chart.one("ServiceMonitor")["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    selector = chart.one("ServiceMonitor")["spec"]["selector"]["matchLabels"]
    assert selector.items() <= chart.one("Service")["metadata"]["labels"].items()


def test_notes_tell_how_to_reach_it_and_warn_about_sqlite(tmp_path: Path) -> None:
    default = notes(workdir=tmp_path / "default")
    assert "port-forward service/oz-bridge" in default
    assert "WARNING: the database is SQLite" in default and "Socket Mode" in default
    high = notes("--values", str(HA_VALUES), workdir=tmp_path / "ha")
    assert "https://oz-bridge.example.com/slack/events" in high
    assert "SQLite" not in high.split("Slack request URL")[1]
    lost = notes("--set", "persistence.enabled=false", workdir=tmp_path / "lost")
    assert "LOST" in lost


def test_the_bridge_accepts_the_ha_example_as_the_pod_would_see_it(tmp_path: Path) -> None:
    chart = ha()
    config = tmp_path / "bridge.yaml"
    config.write_text(chart.one("ConfigMap")["data"]["bridge.yaml"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OZ_", "SLACK_", "WARP_"))}
    env.update({k: v for k, v in chart.env().items() if isinstance(v, str)})
    env.update({k: base64.b64decode(v).decode() for k, v in chart.one("Secret")["data"].items()})
    env["OZ_BRIDGE_CONFIG"] = str(config)
    done = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "check-config"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "postgresql://" in done.stdout and "example-password" not in done.stdout
