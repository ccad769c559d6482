"""The registry of gated kinds (operator/aigate/policy/kinds.py) matches each project's own CRD at the pinned
release (hack/build-upstream-crds.sh): its group, kind, plural and scope; the version the webhook rule names is
served; every path the registry reads (pod specs, the MCP server's image and port) is in that version's schema, a
pod spec with `containers`; the MCP server's default port is the schema's. An upstream release that moves a field
fails here, not silently in a cluster."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from aigate.policy.kinds import GatedKind
from gatedexamples import gated_object
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


def schema_problems(schema: dict[str, Any], value: Any, where: str) -> list[str]:
    """What the API server's structural checks would refuse in `value`: an unknown field (kubectl validates
    strictly), a missing required one, a wrong scalar type or a value outside an enum."""
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool}
    expected = schema.get("type")
    if expected == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{where}: not an integer"]
    elif expected in kinds and not isinstance(value, kinds[expected]):
        return [f"{where}: not {expected}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} not in {schema['enum']}"]
    problems: list[str] = []
    more = schema.get("additionalProperties")
    if isinstance(value, dict) and isinstance(more, dict):
        problems += [p for k, v in value.items() for p in schema_problems(more, v, f"{where}.{k}")]
    elif isinstance(value, dict) and not schema.get("x-kubernetes-preserve-unknown-fields") and more is None:
        props = schema.get("properties") or {}
        problems += [f"{where}.{k}: unknown field" for k in value if k not in props and k not in ("apiVersion", "kind")]
        problems += [f"{where}.{k}: required" for k in schema.get("required") or [] if k not in value]
        problems += [p for k, v in value.items() if k in props for p in schema_problems(props[k], v, f"{where}.{k}")]
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        problems += [p for i, v in enumerate(value) for p in schema_problems(schema["items"], v, f"{where}[{i}]")]
    return problems


@pytest.mark.parametrize("kind", CUSTOM, ids=lambda k: k.kind)
def test_the_examples_the_tests_and_docs_use_fit_the_upstream_schema(crds: Path, kind: GatedKind) -> None:
    """tests/gatedexamples.py's objects: what the cluster tests send through the API server. The metadata is the
    API server's (the schema does not describe it)."""
    schema = version_schema(load_crd(crds, kind), kind)
    obj = gated_object(kind, "team", "casetools", "fraud-review")
    assert schema_problems(schema["properties"]["spec"], obj["spec"], "spec") == []
    broken = {**obj["spec"], "podTemplate": {}}
    assert schema_problems(schema["properties"]["spec"], broken, "spec") == ["spec.podTemplate: unknown field"]


def documented_examples() -> list[dict[str, Any]]:
    """The objects in docs/gated-kinds.md's YAML blocks that have a kind."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "gated-kinds.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    return [d for b in blocks for d in yaml.safe_load_all(b) if isinstance(d, dict) and "kind" in d]


def test_the_docs_show_one_labelled_example_of_each_custom_kind_that_fits_its_crd(crds: Path) -> None:
    found = {(d["apiVersion"], d["kind"]): d for d in documented_examples()}
    assert sorted(found) == sorted((f"{k.group}/{k.version}", k.kind) for k in CUSTOM)
    for kind in CUSTOM:
        doc = found[(f"{kind.group}/{kind.version}", kind.kind)]
        assert doc["metadata"]["labels"] == {"aigate.dev/workload": "fraud-review"}
        schema = version_schema(load_crd(crds, kind), kind)
        assert schema_problems(schema["properties"]["spec"], doc["spec"], "spec") == [], kind.kind
