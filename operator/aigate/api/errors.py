"""Turning pydantic's validation errors into one line per problem, named by the field's path in the YAML."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails


class WorkloadError(Exception):
    """Invalid input: the CLI prints the message and exits 2; the operator writes it to status."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.message = message
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class UsageError(Exception):
    """A bad command line, or a file aigate cannot read or write: exit 2 with one line."""


def field_path(loc: Sequence[int | str], prefix: str = "") -> str:
    """('spec', 'models', 1, 'pricing') -> 'spec.models[1].pricing'."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("function-after[") or part in ("str", "int", "float", "bool", "dict"):
            # pydantic names union members and validator wrappers in loc; a user never wrote those
            continue
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def _describe(err: ErrorDetails) -> str:
    kind = err["type"]
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    given = err.get("input")
    shown = repr(given) if isinstance(given, str | int | float | bool) and len(repr(given)) < 60 else None
    got = f" (got {shown})" if shown else ""
    simple = {
        "missing": "required",
        "extra_forbidden": "unknown field",
        "string_type": "must be a string",
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
        "dict_type": "must be a mapping",
        "model_type": "must be a mapping",
        "model_attributes_type": "must be a mapping",
        "list_type": "must be a list",
        "int_type": "must be an integer",
        "int_parsing": "must be an integer",
        "int_from_float": "must be a whole number",
        "float_type": "must be a number",
        "float_parsing": "must be a number",
        "datetime_parsing": "must be an RFC 3339 timestamp such as 2027-03-01T00:00:00Z",
        "datetime_type": "must be an RFC 3339 timestamp such as 2027-03-01T00:00:00Z",
        "datetime_from_date_parsing": "must be an RFC 3339 timestamp such as 2027-03-01T00:00:00Z",
        "url_parsing": "must be an http(s) URL",
        "url_scheme": "must be an http(s) URL",
        "url_type": "must be an http(s) URL",
    }
    if kind in simple:
        return simple[kind] + ("" if kind in ("missing", "extra_forbidden") else got)
    bounds = {
        "greater_than_equal": ("must be >= {}", "ge"),
        "greater_than": ("must be > {}", "gt"),
        "less_than_equal": ("must be <= {}", "le"),
        "less_than": ("must be < {}", "lt"),
    }
    if kind in bounds:
        text, key = bounds[kind]
        bound = ctx.get(key)
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return text.format(bound) + got
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}{got}"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} item(s)"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_pattern_mismatch":
        return f"does not match the pattern {ctx.get('pattern')}{got}"
    if kind == "value_error":
        msg = str(ctx.get("error") or err["msg"])
        return msg.removeprefix("Value error, ")
    return err["msg"][0].lower() + err["msg"][1:] + got


def format_validation_error(exc: ValidationError, prefix: str = "") -> list[str]:
    """One 'path: what is wrong' line per error, in document order."""
    lines = []
    for err in exc.errors(include_url=False):
        path, what = field_path(err["loc"], prefix), _describe(err)
        if what.startswith("@"):
            # a model-level check that knows which field it means: '@models: ...'
            rel, _, what = what[1:].partition(": ")
            path = f"{path}.{rel}" if path != "(top level)" else rel
        lines.append(f"{path}: {what}")
    return lines
