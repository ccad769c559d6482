"""kind-config.yaml: the quick start for people with Docker. kind cannot run here (no Docker engine), so the
test holds the file to kind's v1alpha4 schema as far as it uses it, and to staying minimal."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
KIND_FIELDS = {"kind", "apiVersion", "name", "nodes", "networking", "featureGates", "runtimeConfig"}
NODE_FIELDS = {"role", "image", "labels", "extraMounts", "extraPortMappings", "kubeadmConfigPatches"}


def test_kind_config_is_a_minimal_v1alpha4_cluster() -> None:
    docs = [d for d in yaml.safe_load_all((ROOT / "kind-config.yaml").read_text()) if d is not None]
    assert len(docs) == 1
    cfg = docs[0]
    assert (cfg["kind"], cfg["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    assert set(cfg) <= KIND_FIELDS, f"fields kind's v1alpha4 Cluster does not have: {set(cfg) - KIND_FIELDS}"
    assert cfg["name"] == "aigate"
    roles = [n["role"] for n in cfg["nodes"]]
    assert roles.count("control-plane") == 1 and set(roles) <= {"control-plane", "worker"}
    for node in cfg["nodes"]:
        assert set(node) <= NODE_FIELDS
        # webhooks are reached through an in-cluster Service: nothing needs to be published on the host
        assert "extraPortMappings" not in node
