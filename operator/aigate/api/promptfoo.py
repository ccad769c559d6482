"""A promptfoo config's `tests` as aigate cases: suites teams already have, judged by aigate's gates.

Each test becomes one case: its `vars` substituted into the messages (`{{ name }}` placeholders), its assertions
(and `defaultTest`'s) mapped to aigate's `expect`. An assertion aigate cannot judge (`javascript`, `llm-rubric`,
...) is an input error naming it and where, never skipped: a suite that silently lost an assertion would pass what
it was written to catch.

Mapped: equals, contains, icontains, contains-any, contains-all, regex, is-json (with a schema as `value`),
latency (`threshold` ms), and the `not-` form of each but is-json and latency. Text assertions become
`contains`/`notContains` where they can and a regular expression otherwise (all of them must hold).
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from aigate.api.errors import WorkloadError, format_validation_error
from aigate.api.models import Case, Message, PromptfooImport

WHERE = "spec.suite.import.promptfoo"
FILE_URL = "file://"
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_TEMPLATE_SYNTAX = re.compile(r"\{\{|\{%")
TEXT_TYPES = ("equals", "contains", "icontains", "contains-any", "contains-all", "regex")
SUPPORTED = (*TEXT_TYPES, *(f"not-{t}" for t in TEXT_TYPES), "is-json", "latency")
_ASSERT_KEYS = {"type", "value", "threshold", "metric", "description"}


def _fail(message: str) -> WorkloadError:
    return WorkloadError(f"{WHERE}: {message}")


def substitute(text: str, variables: dict[str, Any], where: str) -> str:
    """`{{ name }}` -> the var's value; any other template syntax (filters, tags) is an error, not left as is."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in variables:
            raise _fail(f"{where}: uses {{{{{name}}}}} but the test has no var {name!r}")
        value = variables[name]
        return value if isinstance(value, str) else json.dumps(value)

    out = _PLACEHOLDER.sub(one, text)
    if _TEMPLATE_SYNTAX.search(out):
        raise _fail(f"{where}: template syntax other than {{{{var}}}} is not supported: {text[:80]!r}")
    return out


def _prompt_messages(config: dict[str, Any]) -> list[Message]:
    prompts = config.get("prompts")
    if isinstance(prompts, str):
        prompts = [prompts]
    if not isinstance(prompts, list) or len(prompts) != 1:
        found = "none" if not prompts else f"{len(prompts) if isinstance(prompts, list) else 'a non-list'}"
        raise _fail(f"the config has {found} prompts: declare the messages in {WHERE}.messages, or keep one prompt")
    prompt = prompts[0]
    if isinstance(prompt, dict):
        prompt = prompt.get("raw")
    if not isinstance(prompt, str) or prompt.startswith(FILE_URL):
        raise _fail(f"prompt {str(prompts[0])[:60]!r} is not inline text: declare the messages in {WHERE}.messages")
    try:
        chat = json.loads(prompt)
    except ValueError:
        return [Message(role="user", content=prompt)]
    if isinstance(chat, list):
        try:
            return [Message.model_validate(m) for m in chat]
        except ValidationError as e:
            raise _fail("the prompt's chat messages: " + "; ".join(format_validation_error(e))) from None
    return [Message(role="user", content=prompt)]


def _values(a: dict[str, Any], where: str) -> list[str]:
    v = a.get("value")
    if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
        return list(v)
    if isinstance(v, str) and v:
        return [x.strip() for x in v.split(",")] if a["type"].endswith(("-any", "-all")) else [v]
    raise _fail(f"{where}: {a['type']} needs a text value (or a list of them for -any/-all)")


def _text_pattern(kind: str, values: list[str]) -> tuple[str, bool]:
    """(a pattern that matches where the assertion holds, whether it is to be found anywhere (vs anchored))."""
    esc = [re.escape(v) for v in values]
    if kind == "equals":
        return rf"\A{esc[0]}\Z", False
    if kind == "regex":
        # a leading global flag, (?i), must become a scoped one to sit inside aigate's combined pattern
        flags = re.match(r"\(\?([imsx]+)\)", values[0])
        return (f"(?{flags.group(1)}:{values[0][flags.end() :]})" if flags else values[0]), True
    if kind == "icontains":
        return f"(?i:{esc[0]})", True
    if kind == "contains-any":
        return "(?:" + "|".join(esc) + ")", True
    if kind == "contains":
        return esc[0], True
    # contains-all
    return "".join(f"(?=[\\s\\S]*?{e})" for e in esc), False


def _expect(asserts: list[Any], variables: dict[str, Any], where: str) -> dict[str, Any]:
    contains: list[str] = []
    not_contains: list[str] = []
    patterns: list[str] = []
    expect: dict[str, Any] = {}
    for i, raw in enumerate(asserts):
        at = f"{where}.assert[{i}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            raise _fail(f"{at}: an assertion is a mapping with a type")
        kind = raw["type"]
        if kind not in SUPPORTED:
            raise _fail(
                f"{at}: assertion type {kind!r} cannot be judged by aigate (supported: {', '.join(SUPPORTED)}); "
                "remove it or express it as one of these"
            )
        extra = sorted(set(raw) - _ASSERT_KEYS)
        if extra:
            raise _fail(f"{at}: {kind} with {', '.join(extra)} is not supported")
        a = {k: substitute(v, variables, at) if isinstance(v, str) else v for k, v in raw.items()}
        if kind == "latency":
            threshold = a.get("threshold")
            if isinstance(threshold, bool) or not isinstance(threshold, int | float) or threshold <= 0:
                raise _fail(f"{at}: latency needs a threshold in milliseconds")
            expect["maxLatencyMs"] = min(float(threshold), expect.get("maxLatencyMs", float("inf")))
            continue
        if kind == "is-json":
            schema = a.get("value", {})
            if isinstance(schema, str):
                try:
                    schema = json.loads(schema)
                except ValueError:
                    raise _fail(f"{at}: is-json's value must be a JSON schema") from None
            if not isinstance(schema, dict) or "jsonSchema" in expect:
                raise _fail(f"{at}: is-json's value must be one JSON schema (one is-json per test)")
            expect["jsonSchema"] = schema
            continue
        negated = kind.startswith("not-")
        base = kind.removeprefix("not-")
        values = _values({**a, "type": base}, at)
        if base == "contains":
            (not_contains if negated else contains).append(values[0])
            continue
        if base == "contains-all" and not negated:
            contains.extend(values)
            continue
        if base == "contains-any" and negated:
            not_contains.extend(values)
            continue
        if base == "regex":
            try:
                re.compile(values[0])
            except re.error as e:
                raise _fail(f"{at}: not a valid regular expression: {e}") from None
        pattern, anywhere = _text_pattern(base, values)
        body = f"[\\s\\S]*?(?:{pattern})" if anywhere else f"(?:{pattern})"
        patterns.append(rf"\A(?!{body})" if negated else rf"\A(?={body})")
    if contains:
        expect["contains"] = contains
    if not_contains:
        expect["notContains"] = not_contains
    if patterns:
        expect["regex"] = "".join(patterns)
    return expect


def _case_name(test: dict[str, Any], i: int, seen: set[str]) -> str:
    desc = test.get("description")
    base = re.sub(r"[^a-z0-9]+", "-", desc.lower()).strip("-")[:60] if isinstance(desc, str) else ""
    name = base or f"test-{i + 1}"
    if name in seen:
        name = f"{name}-{i + 1}"
    seen.add(name)
    return name


def file_references(config: Any) -> list[tuple[str, str]]:
    """(field, path) of every `file://` string in a config, keys included, in document order: promptfoo would read
    each (a prompt, tests, a var's value), so the loader confines every one, whether aigate reads it or not."""
    found: list[tuple[str, str]] = []
    stack: list[tuple[str, Any]] = [("", config)]
    while stack:
        at, node = stack.pop()
        if isinstance(node, str) and node.startswith(FILE_URL):
            found.append((at or "(top level)", node.removeprefix(FILE_URL)))
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        below = []
        for key, child in children:
            field = f"{at}[{key}]" if isinstance(node, list) else f"{at}.{key}" if at else str(key)
            if isinstance(node, dict):
                below.append((f"a key of {at or 'the config'}", key))
            below.append((field, child))
        stack.extend(reversed(below))
    return found


def promptfoo_cases(config: Any, spec: PromptfooImport) -> list[Case]:
    """The cases a promptfoo config's tests make; WorkloadError naming the test and assertion aigate refuses."""
    if not isinstance(config, dict):
        raise _fail("a promptfoo config is a YAML mapping with tests")
    tests = config.get("tests")
    if isinstance(tests, str):
        raise _fail(f"tests from {tests!r}: only inline tests are read; put them in the config")
    if not isinstance(tests, list) or not tests:
        raise _fail("the config has no tests")
    templates = spec.messages or _prompt_messages(config)
    default = config.get("defaultTest") or {}
    if not isinstance(default, dict):
        raise _fail("defaultTest must be a mapping")
    default_vars = default.get("vars") or {}
    default_asserts = default.get("assert") or []
    cases: list[Case] = []
    seen: set[str] = set()
    for i, test in enumerate(tests):
        where = f"tests[{i}]"
        if not isinstance(test, dict):
            raise _fail(f"{where}: a test is a mapping (vars, assert)")
        variables = {**default_vars, **(test.get("vars") or {})}
        listed = sorted(k for k, v in variables.items() if isinstance(v, list))
        if listed:
            raise _fail(f"{where}: var {listed[0]} is a list (one test per value): write one test per value")
        messages = [
            Message(role=m.role, content=substitute(m.content, variables, f"{where} message {j}"))
            for j, m in enumerate(templates)
        ]
        expect = _expect([*default_asserts, *(test.get("assert") or [])], variables, where)
        try:
            cases.append(
                Case.model_validate(
                    {
                        "name": _case_name(test, i, seen),
                        "messages": [m.model_dump() for m in messages],
                        "expect": expect,
                    }
                )
            )
        except ValidationError as e:
            raise _fail(f"{where}: " + "; ".join(format_validation_error(e))) from None
    return cases
