"""Hypothesis strategies read off a JSON schema (no tests here): the AIWorkload CRD's structural schema, which
`aigate crd` derives from the pydantic models, and the official SDKs' pydantic response models. Whatever the schema
says (types, enums, patterns, bounds, required fields, list-map keys, and the "exactly one of" / "one of" CEL rules
the CRD carries) the strategy keeps, so a model change reaches the property tests without a copy to update here.

`overrides` maps a schema path (`spec.models[].endpoint`) to a strategy of the test's own, for values the schema
cannot say enough about (a file name that must exist, a ConfigMap the test writes)."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

Schema = Mapping[str, Any]

MAX_ITEMS = 3
"""Lists are short: what a property checks does not grow with a list's length, and shrinking stays quick."""

MAX_REF_DEPTH = 4
"""$refs inlined this deep (a response's output item's content part's annotation); deeper ones are any object:
the SDKs' schemas are recursive, and inlining them whole grows without end."""

_HAS = re.compile(r"has\(self\.([A-Za-z_]+)\)")

JSON_LEAVES = st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.floats(allow_nan=False) | st.text()
JSON = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
"""Any JSON document (for fields the schema leaves open: tool parameters, JSON schemas)."""

URLS = st.builds(
    "{}://{}{}".format,
    st.sampled_from(["http", "https"]),
    st.sampled_from(["127.0.0.1:8788", "api.example.com", "llm.internal:443", "[::1]:9000"]),
    st.sampled_from(["", "/", "/v1", "/openai/v1/"]),
)
TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)).map(
    lambda t: t.isoformat()
)


def _bounds(node: Schema, integer: bool) -> tuple[Any, Any, bool, bool]:
    """min, max and whether each is exclusive, in OpenAPI 3.0 (boolean exclusive*) or JSON schema 2020 spelling."""
    lo, hi = node.get("minimum"), node.get("maximum")
    ex_lo, ex_hi = node.get("exclusiveMinimum", False), node.get("exclusiveMaximum", False)
    if not isinstance(ex_lo, bool):
        lo, ex_lo = ex_lo, True
    if not isinstance(ex_hi, bool):
        hi, ex_hi = ex_hi, True
    return lo, hi, bool(ex_lo), bool(ex_hi)


def _number(node: Schema) -> st.SearchStrategy[Any]:
    lo, hi, ex_lo, ex_hi = _bounds(node, node.get("type") == "integer")
    if node.get("type") == "integer":
        lo = None if lo is None else int(lo) + (1 if ex_lo else 0)
        hi = None if hi is None else int(hi) - (1 if ex_hi else 0)
        return st.integers(min_value=lo if lo is not None else -(2**40), max_value=hi if hi is not None else 2**40)
    return st.floats(
        min_value=lo,
        max_value=hi,
        exclude_min=ex_lo and lo is not None,
        exclude_max=ex_hi and hi is not None,
        allow_nan=False,
        allow_infinity=False,
    )


def _string(node: Schema) -> st.SearchStrategy[str]:
    if node.get("format") == "uri":
        return URLS
    if node.get("format") == "date-time":
        return TIMES
    lo, hi = int(node.get("minLength", 0)), node.get("maxLength")
    if "pattern" in node:
        pattern = st.from_regex(node["pattern"], fullmatch=True)
        return pattern.filter(lambda s: lo <= len(s) <= (hi if hi is not None else len(s)))
    return st.text(min_size=lo, max_size=hi if hi is not None else max(lo, 24))


def _one_of_rule(node: Schema) -> tuple[list[str], bool] | None:
    """The fields a CEL rule of the node names with has(): (names, exactly one) or (names, at least one)."""
    for rule in node.get("x-kubernetes-validations", []):
        text = rule.get("rule", "")
        found = [n.removeprefix("__").removesuffix("__") for n in _HAS.findall(text)]
        if not found or "self.models" in text or "self.provider" in text:
            continue
        if text.rstrip().endswith("== 1"):
            return found, True
        if "||" in text and "?" not in text:
            return found, False
    return None


@st.composite
def _object(draw: st.DrawFn, node: Schema, path: str, overrides: Mapping[str, st.SearchStrategy[Any]]) -> Any:
    props: Mapping[str, Schema] = node.get("properties") or {}
    if not props:
        if node.get("x-kubernetes-preserve-unknown-fields") or node.get("additionalProperties") not in (None, False):
            return draw(st.dictionaries(st.text(max_size=8), JSON, max_size=3))
        return {}
    required = set(node.get("required") or [])
    choice = _one_of_rule(node)
    present = {k for k in props if k in required or draw(st.booleans())}
    if choice is not None:
        names, exactly = choice
        names = [n for n in names if n in props]
        if exactly:
            keep = draw(st.sampled_from(names))
            present = (present - set(names)) | {keep}
        elif not present & set(names):
            present.add(draw(st.sampled_from(names)))
    out: dict[str, Any] = {}
    for key in props:
        if key in present:
            out[key] = draw(strategy(props[key], f"{path}.{key}" if path else key, overrides))
    return out


def strategy(
    node: Schema, path: str = "", overrides: Mapping[str, st.SearchStrategy[Any]] | None = None
) -> st.SearchStrategy[Any]:
    """Values valid against `node` (a structural schema: every node typed, no $ref)."""
    overrides = overrides or {}
    if path in overrides:
        return overrides[path]
    if "enum" in node:
        return st.sampled_from(list(node["enum"]))
    kind = node.get("type")
    if kind == "object":
        return _object(node, path, overrides)
    if kind == "array":
        items = strategy(node.get("items") or {}, f"{path}[]", overrides)
        lo = int(node.get("minItems", 0))
        hi = min(int(node.get("maxItems", MAX_ITEMS)), max(lo, MAX_ITEMS))
        keys = node.get("x-kubernetes-list-map-keys")
        unique = (lambda item: tuple(item.get(k) for k in keys)) if keys else None
        return st.lists(items, min_size=lo, max_size=hi, unique_by=unique)
    if kind in ("integer", "number"):
        return _number(node)
    if kind == "string":
        return _string(node)
    if kind == "boolean":
        return st.booleans()
    return JSON


def resolved(schema: Schema) -> Schema:
    """A pydantic JSON schema with its $refs inlined, anyOf of a type and null reduced to the type (the SDKs'
    Optional fields), so that `strategy` reads it as it reads the CRD's."""
    defs: Mapping[str, Schema] = schema.get("$defs") or {}

    def walk(node: Any, depth: int) -> Any:
        if not isinstance(node, Mapping):
            return node
        if "$ref" in node:
            target = defs[node["$ref"].rsplit("/", 1)[-1]]
            return walk(target, depth + 1) if depth < MAX_REF_DEPTH else {"type": "object"}
        if "const" in node:
            return {"enum": [node["const"]]}
        for union in ("anyOf", "oneOf"):
            if union in node:
                options = [walk(o, depth) for o in node[union] if o.get("type") != "null"]
                return {"x-one-of": options} if len(options) > 1 else (options[0] if options else {"type": "null"})
        if "allOf" in node and len(node["allOf"]) == 1:
            return walk(node["allOf"][0], depth)
        out = {k: v for k, v in node.items() if k not in ("properties", "items", "additionalProperties", "$defs")}
        if "properties" in node:
            out["properties"] = {k: walk(v, depth) for k, v in node["properties"].items()}
            out.setdefault("type", "object")
        if isinstance(node.get("items"), Mapping):
            out["items"] = walk(node["items"], depth)
        if node.get("additionalProperties") not in (None, False):
            out["additionalProperties"] = True
        return out

    return walk({k: v for k, v in schema.items() if k != "$defs"}, 0)


def sdk_strategy(schema: Schema, path: str = "") -> st.SearchStrategy[Any]:
    """`strategy` for a `resolved` SDK schema: unions become a choice of their members."""
    node = schema
    if "x-one-of" in node:
        return st.one_of([sdk_strategy(o, path) for o in node["x-one-of"]])
    if node.get("type") == "object" and node.get("properties"):
        props = node["properties"]
        required = set(node.get("required") or [])
        return st.fixed_dictionaries(
            {k: sdk_strategy(v, f"{path}.{k}") for k, v in props.items() if k in required},
            optional={k: sdk_strategy(v, f"{path}.{k}") for k, v in props.items() if k not in required},
        )
    if node.get("type") == "array":
        return st.lists(sdk_strategy(node.get("items") or {}, f"{path}[]"), max_size=MAX_ITEMS)
    if node.get("type") == "null":
        return st.none()
    return strategy(node, path)


def identifiers(min_size: int = 1, max_size: int = 12) -> st.SearchStrategy[str]:
    """Lowercase DNS-1123-ish names, for names the test must also write elsewhere (files, ConfigMaps)."""
    return st.text(string.ascii_lowercase + string.digits, min_size=min_size, max_size=max_size).map(
        lambda s: "x" + s[: max_size - 1]
    )


def future(now: datetime) -> st.SearchStrategy[datetime]:
    return st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=3650)).map(lambda d: now + d)
