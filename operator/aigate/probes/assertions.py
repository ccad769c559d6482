"""A case's expectations checked against one answer: pure functions, one `AssertionResult` each.

The detail says in a few words what failed, since it ends up in the report next to the case name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from aigate.api.models import Expect, ToolCallExpect
from aigate.measurements import AssertionResult, ToolCall

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[ \t]*\r?\n(.*?)\r?\n?[ \t]*```", re.DOTALL)
_DETAIL_MAX = 160


def _short(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def extract_json(text: str) -> Any:
    """The JSON document in a model's answer: the whole text, else the first ```json fenced block.

    Raises ValueError when there is none.
    """
    stripped = text.strip()
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    for m in _FENCE.finditer(text):
        if m.group(1).lower() not in ("", "json", "jsonc"):
            continue
        try:
            return json.loads(m.group(2))
        except ValueError:
            continue
    raise ValueError("the answer is not JSON")


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    import jsonschema  # ~50 ms of imports, paid only by a run with a jsonSchema assertion

    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def check_json_schema(text: str, schema: dict[str, Any]) -> AssertionResult:
    import jsonschema.exceptions

    try:
        doc = extract_json(text)
    except ValueError:
        return AssertionResult(name="jsonSchema", passed=False, detail=f"not JSON: {_short(text)}")
    try:
        validator = _validator(json.dumps(schema, sort_keys=True))
    except jsonschema.exceptions.SchemaError as e:
        return AssertionResult(name="jsonSchema", passed=False, detail=f"invalid schema: {e.message}"[:_DETAIL_MAX])
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is None:
        return AssertionResult(name="jsonSchema", passed=True)
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return AssertionResult(name="jsonSchema", passed=False, detail=f"at {where}: {error.message}"[:_DETAIL_MAX])


def check_contains(text: str, needles: Sequence[str]) -> AssertionResult:
    missing = [n for n in needles if n not in text]
    if not missing:
        return AssertionResult(name="contains", passed=True)
    return AssertionResult(
        name="contains", passed=False, detail=("missing " + ", ".join(_short(n) for n in missing))[:_DETAIL_MAX]
    )


def check_not_contains(text: str, needles: Sequence[str]) -> AssertionResult:
    present = [n for n in needles if n in text]
    if not present:
        return AssertionResult(name="notContains", passed=True)
    return AssertionResult(
        name="notContains", passed=False, detail=("contains " + ", ".join(_short(n) for n in present))[:_DETAIL_MAX]
    )


def check_regex(text: str, pattern: str) -> AssertionResult:
    """re.search semantics: the pattern must match somewhere in the answer."""
    if re.search(pattern, text):
        return AssertionResult(name="regex", passed=True)
    return AssertionResult(name="regex", passed=False, detail=f"no match for /{pattern}/"[:_DETAIL_MAX])


def check_tool_calls(calls: Sequence[ToolCall], expect: ToolCallExpect) -> AssertionResult:
    names = [c.name for c in calls]
    forbidden = sorted({n for n in names if n in expect.forbidden})
    problems = []
    if forbidden:
        problems.append("called forbidden " + ", ".join(forbidden))
    if expect.allowed is not None:
        allowed = set(expect.allowed)
        extra = sorted({n for n in names if n not in allowed and n not in forbidden})
        if extra:
            problems.append("called " + ", ".join(extra) + " (not allowed)")
    if problems:
        return AssertionResult(name="toolCalls", passed=False, detail="; ".join(problems)[:_DETAIL_MAX])
    return AssertionResult(name="toolCalls", passed=True)


def check_max_latency(latency_ms: float, limit_ms: float) -> AssertionResult:
    if latency_ms <= limit_ms:
        return AssertionResult(name="maxLatencyMs", passed=True)
    return AssertionResult(name="maxLatencyMs", passed=False, detail=f"{latency_ms:,.0f} ms > {limit_ms:,.0f} ms")


def evaluate(expect: Expect, text: str, tool_calls: Sequence[ToolCall], latency_ms: float) -> list[AssertionResult]:
    """Every declared expectation, in a fixed order; an empty `expect` gives an empty list."""
    out: list[AssertionResult] = []
    if expect.json_schema is not None:
        out.append(check_json_schema(text, expect.json_schema))
    if expect.contains:
        out.append(check_contains(text, expect.contains))
    if expect.not_contains:
        out.append(check_not_contains(text, expect.not_contains))
    if expect.regex is not None:
        out.append(check_regex(text, expect.regex))
    if expect.tool_calls is not None:
        out.append(check_tool_calls(tool_calls, expect.tool_calls))
    if expect.max_latency_ms is not None:
        out.append(check_max_latency(latency_ms, expect.max_latency_ms))
    if expect.promptfoo is not None:
        from aigate.probes.promptfoo_judge import judge

        out.append(judge(expect.promptfoo, text, latency_ms))
    return out
