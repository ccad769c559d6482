"""An imported promptfoo test as promptfoo keeps it: each assertion with its type, value, threshold, weight and
metric, judged later with promptfoo's meaning (aigate.probes.promptfoo_judge), never compiled into `expect`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import yaml

# JavaScript's \s and String.prototype.trim: its whitespace and line terminators, the BOM among them
JS_SPACE = (
    " \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)


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


def js_trim(text: str) -> str:
    """JavaScript's String.prototype.trim."""
    return text.strip(JS_SPACE)


def _is_space(ch: str) -> bool:
    return ch in JS_SPACE


def comma_separated(value: str) -> list[str]:
    """promptfoo's parseCommaSeparatedValues: fields split at commas, trimmed, empty ones dropped; a field in
    double quotes keeps its commas (\\" and "" escape a quote); a malformed quoted field is a ValueError."""
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and (_is_space(value[i]) or value[i] == ","):
            i += 1
        if i >= n:
            break
        if value[i] == '"':
            i += 1
            field, closed = "", False
            while i < n:
                if value[i] == "\\" and i + 1 < n and value[i + 1] in '"\\':
                    field, i = field + value[i + 1], i + 2
                elif value[i] == '"' and i + 1 < n and value[i + 1] == '"':
                    field, i = field + '"', i + 2
                elif value[i] == '"':
                    i, closed = i + 1, True
                    break
                else:
                    field, i = field + value[i], i + 1
            if not closed:
                raise ValueError("unterminated quoted field in the value")
            while i < n and _is_space(value[i]):
                i += 1
            if i < n and value[i] != ",":
                raise ValueError("expected a comma after a quoted field in the value")
            out.append(field)
        else:
            start = i
            while i < n and value[i] != ",":
                i += 1
            out.append(value[start:i].strip(JS_SPACE))
    return out
