"""The registry of gated kinds (operator/aigate/policy/kinds.py) matches each project's own CRD at the pinned
release (hack/build-upstream-crds.sh): its group, kind, plural and scope; the version the webhook rule names is
served; every path the registry reads (pod specs, the MCP server's image and port) is in that version's schema, a
pod spec with `containers`; the MCP server's default port is the schema's. An upstream release that moves a field
fails here, not silently in a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aigate.policy.kinds import GatedKind
from upstreamcrds import CUSTOM, crd_dir, crd_file, load_crd


@pytest.fixture(scope="module")
def crds() -> Path:
    return crd_dir()


def schema_at(root: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The schema node at a dotted path; None where a step is not declared. A node that keeps unknown fields
    (x-kubernetes-preserve-unknown-fields, no properties) is returned as it is: what lies below is not described."""
    node = root
    for step in path.split("."):
        if node.get("x-kubernetes-preserve-unknown-fields") and not node.get("properties"):
            return node
        found = (node.get("properties") or {}).get(step)
        if not isinstance(found, dict):
            return None
        node = found
    return node


def version_schema(crd: dict[str, Any], kind: GatedKind) -> dict[str, Any]:
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == kind.version]
    assert version["served"] is True, f"{kind.kind} {kind.version} is not served"
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def test_every_custom_kind_has_its_crd_and_nothing_else_is_there(crds: Path) -> None:
    assert sorted(p.name for p in crds.glob("*.yaml")) == sorted(crd_file(crds, k).name for k in CUSTOM)
    assert len(CUSTOM) == 6


@pytest.mark.parametrize("kind", CUSTOM, ids=lambda k: k.kind)
def test_the_registry_entry_is_the_upstream_crd(crds: Path, kind: GatedKind) -> None:
    crd = load_crd(crds, kind)
    spec = crd["spec"]
    assert (spec["group"], spec["names"]["kind"], spec["names"]["plural"]) == (kind.group, kind.kind, kind.resource)
    assert spec["scope"] == "Namespaced"
    assert crd["metadata"]["name"] == f"{kind.resource}.{kind.group}"
    schema = version_schema(crd, kind)
    assert kind.pod_specs, f"{kind.kind} declares no pod spec"
    for path in kind.pod_specs:
        node = schema_at(schema, path)
        assert node is not None, f"{kind.kind} {kind.version} has no {path}"
        opaque = node.get("x-kubernetes-preserve-unknown-fields") and not node.get("properties")
        assert opaque or "containers" in node["properties"], f"{kind.kind} {path} is not a pod spec"


def test_the_mcp_server_kind_reads_the_image_and_port_upstream_declares(crds: Path) -> None:
    [kind] = [k for k in CUSTOM if k.mcp is not None]
    assert kind.mcp is not None
    schema = version_schema(load_crd(crds, kind), kind)
    image, port = schema_at(schema, kind.mcp.image), schema_at(schema, kind.mcp.port)
    assert image is not None and image["type"] == "string"
    assert port is not None and port["type"] == "integer" and port["default"] == kind.mcp.default_port
    # the pod template is kept as written (unknown fields preserved): the registry's path below it is not described
    template = schema_at(schema, "spec.podTemplateSpec")
    assert template is not None and template.get("x-kubernetes-preserve-unknown-fields") is True
