"""The generated CRD: current on disk, structural, and accepting every workload the CLI accepts."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel, Field

from aigate.api import crd
from aigate.api.errors import WorkloadError
from aigate.api.load import parse_workload
from aigate.api.models import API_GROUP, API_VERSION, KIND, PLURAL, AIWorkloadStatus

ROOT = Path(__file__).resolve().parent.parent
CRD_FILE = ROOT / "crds" / f"{PLURAL}.{API_GROUP}.yaml"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))

Schema = dict[str, Any]

_TYPES = {"object", "array", "string", "integer", "number", "boolean"}
_ALLOWED = {
    "type",
    "format",
    "description",
    "default",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "nullable",
    "required",
    "properties",
    "items",
    "additionalProperties",
    "example",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
}


def check_structural(schema: Schema, path: str = "") -> list[str]:
    """Every violation of the Kubernetes structural-schema rules (plus our stricter "every node typed")."""
    errors: list[str] = []
    where = path or "<root>"
    unknown = sorted(set(schema) - _ALLOWED)
    if unknown:
        errors.append(f"{where}: keywords not allowed in a structural schema: {unknown}")
    kind = schema.get("type")
    if kind not in _TYPES:
        errors.append(f"{where}: no type (got {kind!r})")
    for key in ("exclusiveMinimum", "exclusiveMaximum"):
        if key in schema:
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            if not isinstance(schema[key], bool) or bound not in schema:
                errors.append(f"{where}: {key} must be a boolean next to {bound} (OpenAPI v3.0)")
    if "nullable" in schema and not isinstance(schema["nullable"], bool):
        errors.append(f"{where}: nullable must be a boolean")
    if "default" in schema and not errors:  # only a well-formed node can judge its default
        try:
            jsonschema.Draft4Validator(to_jsonschema(schema)).validate(schema["default"])
        except jsonschema.ValidationError as e:
            errors.append(f"{where}: default {schema['default']!r} is invalid: {e.message}")
        except Exception as e:  # a non-structural sub-schema; reported where the walk reaches it
            errors.append(f"{where}: default cannot be checked: {type(e).__name__}")
    for pattern in [schema["pattern"]] if "pattern" in schema else []:
        # The API server compiles patterns with Go's RE2: no lookaround, no backreferences.
        if re.search(r"\(\?[=!<]|\\[1-9]", pattern):
            errors.append(f"{where}: pattern {pattern!r} is not RE2")
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    if "properties" in schema and "additionalProperties" in schema:
        errors.append(f"{where}: properties and additionalProperties together")
    if extra is not None and not isinstance(extra, dict):
        errors.append(f"{where}: additionalProperties must be a schema, not {extra!r}")
    if (properties or extra is not None) and kind != "object":
        errors.append(f"{where}: properties on a non-object")
    for name in schema.get("required", []):
        if name not in properties:
            errors.append(f"{where}: required {name!r} is not a property")
    for name, sub in properties.items():
        errors += check_structural(sub, f"{path}.{name}")
    if isinstance(extra, dict):
        errors += check_structural(extra, f"{path}.*")
    if kind == "array":
        items = schema.get("items")
        if not isinstance(items, dict):
            errors.append(f"{where}: array without an items schema")
        else:
            errors += check_structural(items, f"{path}[]")
            if schema.get("x-kubernetes-list-type") == "map":
                for key in schema.get("x-kubernetes-list-map-keys", []):
                    key_schema = items.get("properties", {}).get(key)
                    if key_schema is None or (key not in items.get("required", []) and "default" not in key_schema):
                        errors.append(f"{where}: list-map key {key!r} must be a required or defaulted property")
    elif "items" in schema:
        errors.append(f"{where}: items on a non-array")
    return errors


def to_jsonschema(schema: Schema) -> Schema:
    """OpenAPI v3.0 (Kubernetes dialect) to JSON Schema draft 4, which shares its exclusiveMinimum flag.

    Unknown fields are refused (as `kubectl apply`'s strict field validation does) instead of pruned, so
    a field the CRD would silently drop fails the test.
    """
    out: Schema = {k: v for k, v in schema.items() if not k.startswith("x-kubernetes-") and k != "nullable"}
    if schema.get("nullable"):
        out["type"] = [schema["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if "properties" in schema:
        out["properties"] = {k: to_jsonschema(v) for k, v in schema["properties"].items()}
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = to_jsonschema(schema["additionalProperties"])
    if isinstance(schema.get("items"), dict):
        out["items"] = to_jsonschema(schema["items"])
    return out


def _root_schema() -> Schema:
    schema: Schema = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _validate(doc: Any, schema: Schema | None = None) -> list[str]:
    validator = jsonschema.Draft4Validator(to_jsonschema(schema or _root_schema()))
    return sorted(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc))


def _example_workloads() -> list[Any]:
    docs = []
    for path in EXAMPLES:
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if isinstance(doc, dict) and doc.get("kind") == KIND:
                docs.append(pytest.param(doc, id=f"{path.name}#{i}"))
    return docs


# -- the committed file -------------------------------------------------------------------------------


def test_committed_crd_is_current() -> None:
    assert CRD_FILE.exists(), f"{CRD_FILE.relative_to(ROOT)} is missing: run `make crd`"
    assert CRD_FILE.read_text() == crd.render_crd(), (
        f"{CRD_FILE.relative_to(ROOT)} is out of date with the models: run `make crd` and commit it"
    )


def test_render_is_yaml_of_build_with_header() -> None:
    text = crd.render_crd()
    assert text.startswith("# generated by `aigate crd`; do not edit\n")
    assert yaml.safe_load(text) == crd.build_crd()
    assert crd.render_crd() == text


# -- the resource definition --------------------------------------------------------------------------


def test_crd_identity() -> None:
    doc = crd.build_crd()
    assert doc["apiVersion"] == "apiextensions.k8s.io/v1"
    assert doc["kind"] == "CustomResourceDefinition"
    assert doc["metadata"]["name"] == "aiworkloads.aigate.dev"
    spec = doc["spec"]
    assert spec["group"] == API_GROUP
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "plural": "aiworkloads",
        "singular": "aiworkload",
        "kind": "AIWorkload",
        "listKind": "AIWorkloadList",
        "shortNames": ["aiw"],
        "categories": ["aigate"],
    }
    [version] = spec["versions"]
    assert version["name"] == API_VERSION
    assert version["served"] is True and version["storage"] is True
    assert version["subresources"] == {"status": {}}


def test_root_schema_shape() -> None:
    root = _root_schema()
    assert root["required"] == ["spec"]
    props = root["properties"]
    for name in ("apiVersion", "kind"):
        assert props[name]["type"] == "string"
        assert set(props[name]) == {"type", "description"}
    assert props["metadata"] == {"type": "object"}
    conditions = props["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert {"type", "status"} <= set(conditions["items"]["required"])


@pytest.mark.parametrize("column", crd.PRINTER_COLUMNS, ids=lambda c: str(c["name"]))
def test_printer_columns_point_at_fields_of_their_type(column: dict[str, Any]) -> None:
    path = column["jsonPath"].lstrip(".").split(".")
    if path[0] == "metadata":
        return  # owned by the API server, not in our schema
    node = _root_schema()
    for name in path:
        node = node["properties"][name]
    expected = {"date": {("string", "date-time")}, "number": {("number", None)}, "string": {("string", None)}}
    # an integer column over a number: the API server shows the whole part (1633.6 ms as 1633)
    expected["integer"] = {("integer", None), ("number", None)}
    # a timestamp may be shown as text (a future date column would print as "<invalid>")
    expected["string"].add(("string", "date-time"))
    assert (node["type"], node.get("format")) in expected[column["type"]]


def test_printer_columns_read_well() -> None:
    """Units in the column or the cell, and the cost ratio in one format whatever its size (issue: 2.4 vs 0.126)."""
    by_name = {c["name"]: c for c in crd.PRINTER_COLUMNS}
    assert by_name["P95-ms"]["type"] == "integer"
    assert by_name["Cost/Budget"] == {**by_name["Cost/Budget"], "type": "string"}
    assert by_name["Cost/Budget"]["jsonPath"] == ".status.summary.costRatioText"
    summaries = [AIWorkloadStatus.model_validate({"summary": {"costRatio": r}}).summary for r in (2.4, 0.126, 12.345)]
    assert [s.cost_ratio_text for s in summaries if s] == ["2.40x", "0.13x", "12.35x"]
    given = AIWorkloadStatus.model_validate({"summary": {"costRatio": 2.4, "costRatioText": "2.4x"}}).summary
    assert given is not None and given.cost_ratio_text == "2.4x"  # what the operator wrote stays
    dumped = AIWorkloadStatus.model_validate({"summary": {"costRatio": 0.126}}).model_dump(by_alias=True)
    assert dumped["summary"]["costRatioText"] == "0.13x"


def _undescribed(schema: Schema, path: str) -> list[str]:
    """Every property (at any depth, through lists and maps) that has no description."""
    missing = []
    for name, sub in schema.get("properties", {}).items():
        where = f"{path}.{name}" if path else name
        description = sub.get("description")
        if not isinstance(description, str) or not description.strip():
            missing.append(where)
        missing += _undescribed(sub, where)
    if isinstance(schema.get("items"), dict):
        missing += _undescribed(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        missing += _undescribed(schema["additionalProperties"], f"{path}.*")
    return missing


def test_every_field_is_described() -> None:
    """`kubectl explain aiworkload.<any field>` prints a description: the models document every field."""
    root = _root_schema()
    assert root["description"]
    # metadata is the API server's (it refuses a description there and prints ObjectMeta's own)
    assert _undescribed(root, "") == ["metadata"]
    assert _undescribed({"properties": {"x": {"type": "string"}}}, "") == ["x"]  # the walk finds a gap


def test_cel_rules_and_list_map_keys_come_from_the_models() -> None:
    """The rules sit beside the field they constrain in models.py; crd.py holds no side tables."""
    from aigate.api import models

    assert models.Credentials.model_json_schema()["x-kubernetes-validations"][0]["message"] == "set secretRef or env"
    models_field = models.AIWorkloadSpec.model_json_schema(by_alias=True)["properties"]["models"]
    assert models_field["x-kubernetes-list-map-keys"] == ["name"]


def test_a_list_map_key_must_be_required() -> None:
    class Item(BaseModel):
        name: str | None = None

    class Bad(BaseModel):
        items: list[Item] = Field(
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}
        )

    with pytest.raises(
        ValueError, match=r"Bad\.items: a list-map must be a list of objects whose keys \['name'\] are required"
    ):
        crd.schema_for(Bad)


# -- structural rules ---------------------------------------------------------------------------------


def test_schema_is_structural() -> None:
    assert check_structural(_root_schema()) == []


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "object", "properties": {"a": {}}}, ".a: no type"),
        ({"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}}, ".a: keywords not allowed"),
        (
            {"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}, {"type": "null"}]}}},
            ".a: keywords not allowed",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False},
            "properties and additionalProperties together",
        ),
        ({"type": "string", "title": "A"}, "keywords not allowed"),
        ({"type": "number", "exclusiveMinimum": 0}, "exclusiveMinimum must be a boolean"),
        ({"type": "array"}, "array without an items schema"),
        ({"type": "string", "enum": ["a"], "default": "b"}, "default 'b' is invalid"),
        ({"type": "string", "pattern": "^(?!x)"}, "is not RE2"),
        ({"type": "object", "required": ["a"]}, "required 'a' is not a property"),
    ],
)
def test_check_structural_finds_violations(schema: Schema, expected: str) -> None:
    errors = check_structural(schema)
    assert any(expected in e for e in errors), errors


# -- the converter on constructs the models may grow into ---------------------------------------------


class _Inner(BaseModel):
    x: int = Field(gt=0, le=10)


class _Sample(BaseModel):
    must_or_null: str | None
    maybe: _Inner | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    free: dict[str, Any] | None = None
    tags: set[str] = Field(default_factory=set)
    kind: str = Field(default="a", title="Kind")


def test_converter_rewrites_pydantic_constructs() -> None:
    schema = crd.schema_for(_Sample)
    assert check_structural(schema) == []
    props = schema["properties"]
    assert props["must_or_null"] == {"type": "string", "nullable": True}
    assert props["maybe"]["type"] == "object" and "nullable" not in props["maybe"]
    assert props["maybe"]["properties"]["x"] == {
        "type": "integer",
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 10,
    }
    assert props["labels"] == {"type": "object", "additionalProperties": {"type": "string"}}
    assert props["free"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    assert props["tags"] == {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}
    assert props["kind"] == {"type": "string", "default": "a"}


def test_converter_refuses_unions_of_types() -> None:
    class Bad(BaseModel):
        v: int | str

    with pytest.raises(ValueError, match=r"Bad\.v: anyOf of 2 non-null types"):
        crd.schema_for(Bad)


def test_converter_refuses_untyped_fields() -> None:
    class Bad(BaseModel):
        v: Any

    with pytest.raises(ValueError, match=r"Bad\.v: no single JSON type"):
        crd.schema_for(Bad)


# -- cross-field rules ---------------------------------------------------------------------------------


def test_cel_rules_follow_their_models() -> None:
    spec = _root_schema()["properties"]["spec"]
    model = spec["properties"]["models"]["items"]
    assert "has(self.endpoint)" in model["x-kubernetes-validations"][0]["rule"]
    assert "x-kubernetes-validations" in model["properties"]["credentials"]
    assert "x-kubernetes-validations" in spec["properties"]["prompts"]["items"]
    assert "x-kubernetes-validations" in spec["properties"]["suite"]
    # Counting primaries walks the list: only allowed by the API server's cost budget when it is bounded.
    bounded = "maxItems" in spec["properties"]["models"]
    rules = [v["rule"] for v in spec.get("x-kubernetes-validations", [])]
    assert any("role == 'primary'" in r for r in rules) == bounded


def test_unique_names_are_list_map_keys() -> None:
    spec = _root_schema()["properties"]["spec"]["properties"]
    for field in (spec["models"], spec["tools"], spec["mcpServers"], spec["suite"]["properties"]["cases"]):
        assert field["x-kubernetes-list-type"] == "map"
        assert field["x-kubernetes-list-map-keys"] == ["name"]


# -- the CRD accepts what the CLI accepts ---------------------------------------------------------------


def test_there_are_examples() -> None:
    assert _example_workloads(), "no AIWorkload documents under examples/"


@pytest.mark.parametrize("doc", _example_workloads())
def test_example_validates_against_crd(doc: Any) -> None:
    parse_workload(copy.deepcopy(doc))  # the CLI accepts it ...
    assert _validate(doc) == []  # ... and so does the CRD


@pytest.mark.parametrize("doc", _example_workloads())
def test_normalized_example_validates_against_crd(doc: Any) -> None:
    """What the operator writes back (the model dumped with its defaults) must be storable too."""
    workload = parse_workload(copy.deepcopy(doc))
    dumped = workload.model_dump(mode="json", by_alias=True, exclude_none=True)
    dumped["metadata"] = doc["metadata"]
    assert _validate(dumped) == []


def test_status_validates_against_crd() -> None:
    status = AIWorkloadStatus.model_validate(
        {
            "observedGeneration": 3,
            "specDigest": "sha256:" + "0" * 64,
            "phase": "Failed",
            "decision": "FAIL",
            "conditions": [
                {
                    "type": "CostGate",
                    "status": "False",
                    "reason": "OverBudget",
                    "message": "2.4x",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                    "observedGeneration": 3,
                }
            ],
            "evidence": {"configMap": "ev", "digest": "sha256:1", "expiresAt": "2026-02-01T00:00:00Z"},
            "lastRun": {"job": "j", "startedAt": "2026-01-01T00:00:00Z", "spentUSD": 0.12},
            "summary": {"costRatio": 2.4, "p95LatencyMs": 6480},
        }
    )
    dumped = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert _validate(dumped, _root_schema()["properties"]["status"]) == []


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d["spec"].update(ownr="typo"), "spec"),
        (lambda d: d["spec"]["models"][0].update(provider="bedrock"), "spec.models.0.provider"),
        (lambda d: d["spec"]["budget"].update(monthlyUSD=0), "spec.budget.monthlyUSD"),
        (lambda d: d["spec"]["slo"].update(minPassRate=1.5), "spec.slo.minPassRate"),
        (lambda d: d["spec"]["evidence"].update(validFor="a month"), "spec.evidence.validFor"),
        (lambda d: d["spec"]["models"][0].pop("model"), "spec.models.0"),
        (lambda d: d.pop("spec"), ""),
    ],
)
def test_crd_refuses_what_the_cli_refuses(mutate: Any, where: str) -> None:
    [param] = _example_workloads()[:1]
    doc = copy.deepcopy(param.values[0])
    doc["spec"].setdefault("evidence", {})
    mutate(doc)
    with pytest.raises(WorkloadError):
        parse_workload(copy.deepcopy(doc))
    errors = _validate(doc)
    assert any(e.split(":")[0] == where for e in errors), errors
