"""An imported promptfoo test as promptfoo keeps it: each assertion with its type, value, threshold, weight and
metric, judged later with promptfoo's meaning (aigate.probes.promptfoo_judge), never compiled into `expect`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import yaml


@dataclass(frozen=True)
class PfAssertion:
    """One assertion (or an `assert-set` of them), its value rendered with the test's vars; `where` names it in
    the config (tests[3].assert[1]) for every message about it."""

    type: str
    where: str
    value: Any = None
    threshold: float | None = None
    weight: float = 1.0
    metric: str | None = None
    transform: str | None = None
    children: tuple[PfAssertion, ...] = ()


@dataclass(frozen=True)
class PfTest:
    """A test's assertions (defaultTest's first), its threshold and its output transform, plus what a transform's
    `context` holds."""

    asserts: tuple[PfAssertion, ...]
    threshold: float | None = None
    transform: str | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    prompt_label: str = ""
    skipped: tuple[str, ...] = ()


def schema_of(value: Any) -> dict[str, Any] | None:
    """An is-json value as promptfoo reads it: an object, or YAML/JSON text of one; None for no schema."""
    if value is None or value == "":
        return None
    schema = yaml.safe_load(value) if isinstance(value, str) else value
    if not isinstance(schema, dict):
        raise ValueError("the value is not a JSON schema (an object)")
    return schema


def js_string(value: Any) -> str:
    """JavaScript's String(value) for plain data."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, list):
        return ",".join("" if v is None else js_string(v) for v in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)
