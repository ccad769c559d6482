"""helm and the chart, for tests/test_chart*.py and tests/cluster/test_chart*.py: where the pinned helm is, and
`helm template` of charts/aigate.

helm is built from source by `bash hack/build-helm.sh` (pinned there). Without it the tests that need it skip,
except in CI (CI=true or AIGATE_REQUIRE_CLUSTER=1), where a missing helm is a failure.
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


def pinned_version() -> str:
    m = re.search(r'^HELM_VERSION="\$\{HELM_VERSION:-(v[0-9.]+)\}"', BUILD_SCRIPT.read_text(), re.M)
    assert m, f"no HELM_VERSION pin in {BUILD_SCRIPT}"
    return m.group(1)


def helm_path() -> Path:
    if os.environ.get("AIGATE_HELM"):
        return Path(os.environ["AIGATE_HELM"])
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower(), "unknown")
    cache = Path(os.environ.get("AIGATE_CACHE_DIR") or Path.home() / ".cache" / "aigate")
    return cache / "bin" / f"helm-{pinned_version()}-{platform.system().lower()}-{arch}" / "helm"


def find_helm() -> Path:
    """The pinned helm, or a skip (a failure in CI) saying how to build it."""
    path = helm_path()
    if os.access(path, os.X_OK):
        return path
    why = f"helm not found at {path} (build it: bash hack/build-helm.sh, or set AIGATE_HELM)"
    if os.environ.get("AIGATE_REQUIRE_CLUSTER") == "1" or os.environ.get("CI") == "true":
        pytest.fail(f"{why}; CI must build it")
    pytest.skip(why)


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
