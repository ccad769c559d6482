"""An imported promptfoo test judged on one answer as promptfoo judges it (its src/assertions/ and
AssertionsResult, 0.123.1): each assertion's pass and score, weights, `weight: 0` as a metric that cannot fail,
the test's (or an assert-set's) threshold over the weighted score, and the test's `options.transform` before all.

JavaScript's meaning stays JavaScript's: `regex` and `transform` run in the sandboxed V8 of aigate.probes.jsengine.
The result is one AssertionResult named `promptfoo`, whose detail names the first failed assertion and why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from aigate import jsengine
from aigate.api.pftypes import PfAssertion, PfTest, comma_separated, js_string, schema_of
from aigate.measurements import AssertionResult

_DETAIL_MAX = 200


@dataclass(frozen=True)
class Graded:
    passed: bool
    score: float
    reason: str


def coerce_string(output: Any) -> str:
    """promptfoo's coerceString: a string as is, anything else as JSON.stringify gives it."""
    if isinstance(output, str):
        return output
    return json.dumps(output, separators=(",", ":"), ensure_ascii=False)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_parse(text: str) -> Any:
    """JSON.parse: the whole text (JSON whitespace around it allowed); no NaN/Infinity, unlike Python's json."""
    return json.loads(text, parse_constant=_reject_constant)


def _strict_equal(a: Any, b: Any) -> bool:
    """util.isDeepStrictEqual for JSON data: 1 and true differ, 1 and 1.0 do not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_strict_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    import jsonschema

    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    cls.check_schema(schema)
    return cls(schema)


def _list_value(value: Any) -> list[Any]:
    if isinstance(value, str):
        return comma_separated(value)
    return list(value) if isinstance(value, list) else [value]


def grade(a: PfAssertion, output: str, latency_ms: float) -> Graded:
    """One assertion's pass and score on the answer (after any transform)."""
    inverse = a.type.startswith("not-")
    base = a.type.removeprefix("not-")
    v = a.value

    def result(holds: bool, what: str) -> Graded:
        passed = holds != inverse
        return Graded(passed, 1.0 if passed else 0.0, "" if passed else f"expected output to {'not ' * inverse}{what}")

    if base == "equals":
        if isinstance(v, dict | list):
            try:
                same = _strict_equal(v, json_parse(output))
            except ValueError:  # promptfoo: an answer that is not JSON passes not-equals, fails equals
                return result(False, f"be JSON equal to {coerce_string(v)[:60]!r}")
            return result(same, f"equal {coerce_string(v)[:60]!r}")
        return result(js_string(v) == output, f"equal {js_string(v)[:60]!r}")
    if base == "contains":
        return result(js_string(v) in output, f"contain {js_string(v)[:60]!r}")
    if base == "icontains":
        return result(js_string(v).lower() in output.lower(), f"contain {js_string(v)[:60]!r} (any case)")
    if base in ("contains-any", "icontains-any"):
        vals = [js_string(x) for x in _list_value(v)]
        fold = base.startswith("i")
        hay = output.lower() if fold else output
        return result(any((x.lower() if fold else x) in hay for x in vals), f"contain one of {vals}"[:100])
    if base in ("contains-all", "icontains-all"):
        vals = [js_string(x) for x in _list_value(v)]
        fold = base.startswith("i")
        hay = output.lower() if fold else output
        missing = [x for x in vals if (x.lower() if fold else x) not in hay]
        return result(not missing, f"contain all of {vals} (missing {missing})"[:100])
    if base == "starts-with":
        return result(output.startswith(js_string(v)), f"start with {js_string(v)[:60]!r}")
    if base == "regex":
        try:
            return result(jsengine.regex_test(js_string(v), output), f"match /{js_string(v)[:60]}/")
        except jsengine.JsError as e:  # promptfoo: an invalid pattern fails, negated or not
            return Graded(False, 0.0, f"invalid regex: {e}")
    if base == "is-json":
        try:
            doc = json_parse(output)
        except ValueError:
            return result(False, "be valid JSON")
        schema = schema_of(v)
        if schema is None:
            return result(True, "be valid JSON")
        import jsonschema.exceptions

        error = jsonschema.exceptions.best_match(_validator(json.dumps(schema, sort_keys=True)).iter_errors(doc))
        if error is None:
            return result(True, "be JSON that conforms to the schema")
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return result(False, f"be JSON that conforms to the schema (at {where}: {error.message})")
    if base == "latency":
        limit = a.threshold if a.threshold is not None else float("nan")
        return result(latency_ms <= limit, f"take at most {limit:g} ms (took {latency_ms:,.0f} ms)")
    raise ValueError(f"{a.where}: assertion type {a.type!r} has no judge")  # the importer refuses these first


def _transformed(code: str, output: Any, test: PfTest) -> Any:
    return jsengine.transform(code, output, {"vars": test.vars, "prompt": {"label": test.prompt_label}})


class _TestError(Exception):
    """An assertion that could not be evaluated (its transform threw): promptfoo reports the test as an error."""


class _Scores:
    """promptfoo's AssertionsResult: weighted score, first failure, threshold over the score when set."""

    def __init__(self, threshold: float | None) -> None:
        self.threshold = threshold
        self.total = 0.0
        self.weight = 0.0
        self.failed: str | None = None

    def add(self, g: Graded, weight: float) -> None:
        self.total += g.score * weight
        self.weight += weight
        if not g.passed:
            self.failed = g.reason

    def result(self) -> Graded:
        score = self.total / self.weight if self.weight > 0 else 0.0
        if self.threshold is not None:  # any number, 0 too, replaces the assertions' own verdicts
            ok = score >= self.threshold
            return Graded(ok, score, "" if ok else f"score {score:.2f} < threshold {self.threshold:g}")
        return Graded(self.failed is None, score, self.failed or "")


def _run(a: PfAssertion, output: Any, test: PfTest, latency_ms: float) -> Graded:
    if a.type == "assert-set":
        sub = _Scores(a.threshold)
        for child in a.children:
            sub.add(_run(child, output, test, latency_ms), child.weight)
        g = sub.result()
        return Graded(g.passed, g.score, f"{a.where}: {g.reason}" if not g.passed else "")
    try:
        out = _transformed(a.transform, output, test) if a.transform else output
        g = grade(a, coerce_string(out), latency_ms)
    except (jsengine.JsError, ValueError) as e:  # promptfoo: the test errors, whatever the threshold or weight
        raise _TestError(f"{a.where} {a.type}: {e}") from None
    if a.weight == 0:  # promptfoo: a metric-only assertion cannot fail
        return Graded(True, g.score, "")
    return Graded(g.passed, g.score, f"{a.where} {a.type}: {g.reason}" if not g.passed else "")


def judge(test: PfTest, text: str, latency_ms: float) -> AssertionResult:
    """The test's verdict on one answer, as promptfoo gives it."""
    output: Any = text
    if test.transform:
        try:
            output = _transformed(test.transform, text, test)
        except jsengine.JsError as e:
            return AssertionResult(name="promptfoo", passed=False, detail=f"options.transform: {e}"[:_DETAIL_MAX])
    if not test.asserts:
        return AssertionResult(name="promptfoo", passed=True)
    scores = _Scores(test.threshold)
    try:
        for a in test.asserts:
            scores.add(_run(a, output, test, latency_ms), a.weight)
    except _TestError as e:
        return AssertionResult(name="promptfoo", passed=False, detail=f"error: {e}"[:_DETAIL_MAX])
    g = scores.result()
    if g.passed:
        return AssertionResult(name="promptfoo", passed=True)
    return AssertionResult(name="promptfoo", passed=False, detail=g.reason[:_DETAIL_MAX])
