"""promptfoo's CSV test files as promptfoo reads them (0.123.1's testCaseFromCsvRow and assertionFromString): each
row a test, its plain columns vars, `__expected...` columns assertions written as text (`contains: x`,
`not-icontains-any: a, b`, `latency(500)`, anything else an `equals`), `__description`, `__metric` (set on each of the
row's assertions), `__threshold`, and `__config:__expectedN:threshold`. Pure: text in, test mappings out; ValueError
names the row and column that cannot be read.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from aigate.api.pftypes import comma_separated

# promptfoo's BaseAssertionTypesSchema (0.123.1): a prefix `type:` names a type only when it is one of these
BASE_TYPES = [
    "agent-rubric",
    "answer-relevance",
    "bleu",
    "classifier",
    "contains",
    "contains-all",
    "contains-any",
    "contains-html",
    "contains-json",
    "contains-sql",
    "contains-xml",
    "context-faithfulness",
    "context-recall",
    "context-relevance",
    "conversation-relevance",
    "cost",
    "equals",
    "factuality",
    "finish-reason",
    "g-eval",
    "gleu",
    "guardrails",
    "icontains",
    "icontains-all",
    "icontains-any",
    "is-html",
    "is-json",
    "is-refusal",
    "is-sql",
    "is-valid-function-call",
    "is-valid-openai-function-call",
    "is-valid-openai-tools-call",
    "is-xml",
    "javascript",
    "latency",
    "levenshtein",
    "llm-rubric",
    "pi",
    "meteor",
    "model-graded-closedqa",
    "model-graded-factuality",
    "moderation",
    "perplexity",
    "perplexity-score",
    "python",
    "regex",
    "rouge-n",
    "ruby",
    "similar",
    "similar:cosine",
    "similar:dot",
    "similar:euclidean",
    "starts-with",
    "tool-call-f1",
    "skill-used",
    "trajectory:goal-success",
    "trajectory:tool-args-match",
    "trajectory:step-count",
    "trajectory:tool-sequence",
    "trajectory:tool-used",
    "trace-error-spans",
    "trace-span-count",
    "trace-span-duration",
    "search-rubric",
    "webhook",
    "word-count",
]
_ASSERTION = re.compile(
    r"^(not-)?(" + "|".join(re.escape(t) for t in BASE_TYPES) + r")(?:\((\d+(?:\.\d+)?)\))?(?::([\s\S]*))?\Z"
)
_LIST_TYPES = ("contains-all", "contains-any", "icontains-all", "icontains-any")
_THRESHOLD_TYPES = [
    "answer-relevance",
    "classifier",
    "context-faithfulness",
    "context-recall",
    "context-relevance",
    "cost",
    "latency",
    "levenshtein",
    "perplexity-score",
    "perplexity",
    "rouge-n",
    "similar",
    "starts-with",
]
_JS_FILE = re.compile(r"\.(?:c|m)?[jt]s$")
_NUMBER = re.compile(r"^\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*$")


def _finite(text: str) -> float | None:
    """parseFiniteNumber: a complete numeric literal, else unset."""
    return float(text) if _NUMBER.match(text) else None


def assertion_from_string(expected: str) -> dict[str, Any]:
    """One `__expected` cell (already trimmed) as the assertion promptfoo makes of it."""
    for prefix in ("javascript:", "fn:", "eval:"):
        if expected.startswith(prefix):
            return {"type": "javascript", "value": expected[len(prefix) :].strip()}
    if expected.startswith("file://") and _JS_FILE.search(expected[7:]):
        return {"type": "javascript", "value": expected.strip()}
    if expected.startswith(("grade:", "llm-rubric:")):
        return {"type": "llm-rubric", "value": expected[6 if expected.startswith("grade:") else 11 :]}
    if expected.startswith("python:") or (
        expected.startswith("file://") and (expected.endswith(".py") or ".py:" in expected)
    ):
        return {"type": "python", "value": expected[7:].strip()}
    m = _ASSERTION.match(expected)
    if m is None:
        return {"type": "equals", "value": expected}
    negated, base, threshold_text, value = m.groups()
    kind = f"not-{base}" if negated else base
    out: dict[str, Any] = {"type": kind}
    if base in _LIST_TYPES:
        if value:
            out["value"] = comma_separated(value)
    elif base in ("contains-json", "is-json"):
        if value is not None:
            out["value"] = value
    else:
        if value is not None:
            out["value"] = value.strip()
        threshold = float(threshold_text) if threshold_text else None
        if base in _THRESHOLD_TYPES:
            out["threshold"] = threshold if threshold is not None else (0.8 if base == "similar" else 0.75)
    return out


def tests_from_csv(text: str, name: str) -> list[dict[str, Any]]:
    """The tests of a CSV file (header row first), described `Row #N` when they say nothing else."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    try:
        rows = list(reader)
    except csv.Error as e:
        raise ValueError(f"{name}: not CSV: {e}") from None
    if not rows:
        return []
    header = [h.strip() for h in rows[0]]
    tests = []
    for n, row in enumerate(rows[1:], start=1):
        if len(row) != len(header):
            raise ValueError(f"{name} row {n}: {len(row)} fields where the header has {len(header)}")
        tests.append(_test_from_row(dict(zip(header, row, strict=True)), f"{name} row {n}", n))
    return tests


def _test_from_row(row: dict[str, str], where: str, n: int) -> dict[str, Any]:
    variables: dict[str, str] = {}
    asserts: list[dict[str, Any]] = []
    configs: dict[int, float] = {}
    test: dict[str, Any] = {}
    metric: str | None = None
    for key, value in row.items():
        if key.startswith("__expected"):
            if value.strip():
                asserts.append(assertion_from_string(value.strip()))
        elif key == "__description":
            if value:
                test["description"] = value
        elif key == "__metric":
            metric = value
        elif key == "__threshold":
            threshold = _finite(value)
            if threshold is not None:
                test["threshold"] = threshold
        elif key in ("__prefix", "__suffix", "__providerOutput"):
            if value:
                raise ValueError(f"{where}: column {key} is not supported by aigate")
        elif key.startswith("__config:"):
            m = re.fullmatch(r"__config:__expected(\d*):threshold", key)
            if m is None or m.group(1) == "0":
                raise ValueError(f"{where}: column {key}: only __config:__expected[N]:threshold is read")
            number = _finite(value)
            if number is None:
                raise ValueError(f"{where}: column {key}: {value!r} is not a number")
            configs[int(m.group(1) or 1) - 1] = number
        elif key.startswith("__metadata"):
            continue
        else:
            variables[key] = value
    for i, a in enumerate(asserts):
        if metric is not None:
            a["metric"] = metric
        if i in configs:
            a["threshold"] = configs[i]
    test.setdefault("description", f"Row #{n}")
    return {**test, "vars": variables, "assert": asserts}
