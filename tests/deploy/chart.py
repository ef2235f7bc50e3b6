"""Renders helm/oz-bridge with the real Helm binary, for the chart tests."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.tools import ROOT, tool

CHART = ROOT / "helm" / "oz-bridge"
HA_VALUES = CHART / "ci" / "ha-values.yaml"
RELEASE = "oz-bridge"
NAMESPACE = "oz"


@dataclass
class Rendered:
    documents: list[dict[str, Any]]

    def kinds(self) -> list[str]:
        return sorted(doc["kind"] for doc in self.documents)

    def one(self, kind: str) -> dict[str, Any]:
        found = [doc for doc in self.documents if doc["kind"] == kind]
        assert len(found) == 1, f"expected one {kind}, rendered {self.kinds()}"
        return found[0]

    def has(self, kind: str) -> bool:
        return any(doc["kind"] == kind for doc in self.documents)

    @property
    def pod(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.one("Deployment")["spec"]["template"]["spec"]
        return spec

    @property
    def container(self) -> dict[str, Any]:
        containers: list[dict[str, Any]] = self.pod["containers"]
        assert len(containers) == 1
        return containers[0]

    def env(self) -> dict[str, Any]:
        return {item["name"]: item.get("value", item.get("valueFrom")) for item in self.container["env"]}

    def mounts(self) -> dict[str, str]:
        return {mount["mountPath"]: mount["name"] for mount in self.container["volumeMounts"]}

    def volume(self, name: str) -> dict[str, Any]:
        (volume,) = [v for v in self.pod["volumes"] if v["name"] == name]
        return volume


def helm(*args: str, values: dict[str, Any] | None = None, chart: Path = CHART) -> subprocess.CompletedProcess[str]:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as extra:
        command = [tool("helm"), "template", RELEASE, str(chart), "--namespace", NAMESPACE, *args]
        if values is not None:
            yaml.safe_dump(values, extra)
            extra.flush()
            command += ["--values", extra.name]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def render(*args: str, values: dict[str, Any] | None = None) -> Rendered:
    done = helm(*args, values=values)
    assert done.returncode == 0, done.stderr
    return Rendered([doc for doc in yaml.safe_load_all(done.stdout) if doc])


def refusal(*args: str, values: dict[str, Any] | None = None) -> str:
    """Helm's error when it refuses these values (the test fails if Helm renders them)."""
    done = helm(*args, values=values)
    assert done.returncode != 0, f"helm rendered values it should refuse: {args} {values}"
    return done.stderr


def notes(*args: str, values: dict[str, Any] | None = None, workdir: Path) -> str:
    """NOTES.txt as `helm install` would print it (rendered through tpl in a copy of the chart)."""
    copy = workdir / "chart"
    shutil.copytree(CHART, copy)
    (copy / "templates" / "NOTES.txt").rename(copy / "notes.txt")
    (copy / "templates" / "notes.yaml").write_text('notes: {{ tpl (.Files.Get "notes.txt") . | quote }}\n')
    done = helm("--show-only", "templates/notes.yaml", *args, values=values, chart=copy)
    assert done.returncode == 0, done.stderr
    text: str = yaml.safe_load(done.stdout)["notes"]
    return text
