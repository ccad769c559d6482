"""helm and the chart, for tests/test_chart*.py and tests/cluster/test_chart*.py: where the pinned helm is, and
`helm template` of charts/aigate.

helm and promtool are built from source by `bash hack/build-helm.sh` and `bash hack/build-promtool.sh` (pinned
there). Without them the tests that need them skip, except in CI (CI=true or AIGATE_REQUIRE_CLUSTER=1), where a
missing tool is a failure.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "aigate"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
BUILD_SCRIPT = ROOT / "hack" / "build-helm.sh"
NS = "aigate-system"

Obj = dict[str, Any]


def pinned_version(script: Path = BUILD_SCRIPT, variable: str = "HELM_VERSION") -> str:
    m = re.search(rf'^{variable}="\$\{{{variable}:-(v[0-9.]+)\}}"', script.read_text(), re.M)
    assert m, f"no {variable} pin in {script}"
    return m.group(1)


def tool_path(name: str, script: Path, variable: str) -> Path:
    """Where hack/build-<name>.sh leaves the pinned tool (or $AIGATE_<NAME>)."""
    if os.environ.get(f"AIGATE_{name.upper()}"):
        return Path(os.environ[f"AIGATE_{name.upper()}"])
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower(), "unknown")
    cache = Path(os.environ.get("AIGATE_CACHE_DIR") or Path.home() / ".cache" / "aigate")
    version = pinned_version(script, variable)
    return cache / "bin" / f"{name}-{version}-{platform.system().lower()}-{arch}" / name


def find_tool(name: str, script: Path, variable: str) -> Path:
    """The pinned tool, or a skip (a failure in CI) saying how to build it."""
    path = tool_path(name, script, variable)
    if os.access(path, os.X_OK):
        return path
    why = f"{name} not found at {path} (build it: bash hack/{script.name}, or set AIGATE_{name.upper()})"
    if os.environ.get("AIGATE_REQUIRE_CLUSTER") == "1" or os.environ.get("CI") == "true":
        pytest.fail(f"{why}; CI must build it")
    pytest.skip(why)


def find_helm() -> Path:
    return find_tool("helm", BUILD_SCRIPT, "HELM_VERSION")


def find_promtool() -> Path:
    return find_tool("promtool", ROOT / "hack" / "build-promtool.sh", "PROMETHEUS_VERSION")


def run_helm(
    helm: Path, *args: str, kubeconfig: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """helm with no user configuration or repositories of the machine's (a test sees only the chart)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELM_") and k != "KUBECONFIG"}
    env.update({"HELM_CACHE_HOME": "/nonexistent-helm-cache", "HELM_CONFIG_HOME": "/nonexistent-helm-config"})
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=timeout, env=env)


def template_text(helm: Path, *values: Path, sets: tuple[str, ...] = (), namespace: str = NS) -> str:
    args = ["template", "aigate", str(CHART), "--namespace", namespace]
    for v in values:
        args += ["--values", str(v)]
    for s in sets:
        args += ["--set", s]
    r = run_helm(helm, *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def render(helm: Path, *values: Path, sets: tuple[str, ...] = (), namespace: str = NS) -> list[Obj]:
    return [d for d in yaml.safe_load_all(template_text(helm, *values, sets=sets, namespace=namespace)) if d]
