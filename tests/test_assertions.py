"""Assertions over model answers: each expectation, its edge cases, and the detail the report shows."""

from __future__ import annotations

import pytest

from aigate.api.models import Expect, ToolCallExpect
from aigate.measurements import ToolCall
from aigate.probes.assertions import (
    check_contains,
    check_json_schema,
    check_max_latency,
    check_not_contains,
    check_regex,
    check_tool_calls,
    evaluate,
    extract_json,
)

SCHEMA = {
    "type": "object",
    "required": ["risk", "summary"],
    "properties": {"risk": {"enum": ["low", "medium", "high"]}, "summary": {"type": "string"}},
}


def test_extract_json_plain_and_whitespace() -> None:
    assert extract_json('  {"a": 1}\n') == {"a": 1}
    assert extract_json("[1, 2]") == [1, 2]


def test_extract_json_from_fenced_block_with_prose() -> None:
    text = 'Here is the result:\n```json\n{"risk": "low", "summary": "ok"}\n```\nAnything else?'
    assert extract_json(text) == {"risk": "low", "summary": "ok"}


def test_extract_json_from_bare_fence_and_second_block() -> None:
    assert extract_json('```\n{"a": 2}\n```') == {"a": 2}
    text = '```python\nprint(1)\n```\n```json\n{"b": 3}\n```'
    assert extract_json(text) == {"b": 3}


def test_extract_json_refuses_non_json() -> None:
    with pytest.raises(ValueError):
        extract_json("I cannot help with that.")
    with pytest.raises(ValueError):
        extract_json('```json\n{"a": \n```')


def test_json_schema_passes() -> None:
    r = check_json_schema('{"risk": "high", "summary": "card testing"}', SCHEMA)
    assert r.passed and r.name == "jsonSchema" and r.detail == ""


def test_json_schema_fenced_passes() -> None:
    assert check_json_schema('```json\n{"risk": "low", "summary": "x"}\n```', SCHEMA).passed


def test_json_schema_not_json_detail() -> None:
    r = check_json_schema("The risk is high.", SCHEMA)
    assert not r.passed
    assert r.detail.startswith("not JSON: 'The risk is high.'")


def test_json_schema_missing_property_detail() -> None:
    r = check_json_schema('{"risk": "low"}', SCHEMA)
    assert not r.passed
    assert r.detail == "at (root): 'summary' is a required property"


def test_json_schema_wrong_value_names_the_path() -> None:
    r = check_json_schema('{"risk": "extreme", "summary": "x"}', SCHEMA)
    assert not r.passed
    assert r.detail.startswith("at risk: 'extreme' is not one of")


def test_json_schema_invalid_schema_is_a_failure_not_a_crash() -> None:
    r = check_json_schema("{}", {"type": "no-such-type"})
    assert not r.passed and r.detail.startswith("invalid schema")


def test_contains_lists_every_missing_needle() -> None:
    assert check_contains("alpha beta", ["alpha", "beta"]).passed
    r = check_contains("alpha", ["alpha", "beta", "gamma"])
    assert not r.passed and r.detail == "missing 'beta', 'gamma'"


def test_contains_is_case_sensitive() -> None:
    assert not check_contains("Alpha", ["alpha"]).passed


def test_not_contains() -> None:
    assert check_not_contains("safe answer", ["password"]).passed
    r = check_not_contains("the password is hunter2", ["password", "hunter2", "ssn"])
    assert not r.passed and r.detail == "contains 'password', 'hunter2'"


def test_long_needle_is_shortened_in_detail() -> None:
    needle = "x" * 200
    r = check_contains("", [needle])
    assert len(r.detail) < 80 and r.detail.endswith("…'")


def test_regex_search_semantics() -> None:
    assert check_regex("case CASE-1234 opened", r"CASE-\d{4}").passed
    r = check_regex("no case id", r"^CASE-\d+$")
    assert not r.passed and r.detail == r"no match for /^CASE-\d+$/"


def test_tool_calls_forbidden() -> None:
    calls = [ToolCall(name="lookup_policy"), ToolCall(name="create_case_note", arguments={"text": "x"})]
    r = check_tool_calls(calls, ToolCallExpect(forbidden=["create_case_note"]))
    assert not r.passed and r.detail == "called forbidden create_case_note"


def test_tool_calls_allowed_list() -> None:
    calls = [ToolCall(name="lookup_policy"), ToolCall(name="send_email")]
    r = check_tool_calls(calls, ToolCallExpect(allowed=["lookup_policy"]))
    assert not r.passed and r.detail == "called send_email (not allowed)"
    assert check_tool_calls([ToolCall(name="lookup_policy")], ToolCallExpect(allowed=["lookup_policy"])).passed


def test_tool_calls_empty_allowed_means_no_tools() -> None:
    assert check_tool_calls([], ToolCallExpect(allowed=[])).passed
    assert not check_tool_calls([ToolCall(name="a")], ToolCallExpect(allowed=[])).passed


def test_tool_calls_both_problems_reported_once_each() -> None:
    calls = [ToolCall(name="bad"), ToolCall(name="bad"), ToolCall(name="other")]
    r = check_tool_calls(calls, ToolCallExpect(allowed=["ok"], forbidden=["bad"]))
    assert r.detail == "called forbidden bad; called other (not allowed)"


def test_max_latency_boundary() -> None:
    assert check_max_latency(1000.0, 1000.0).passed
    r = check_max_latency(1500.4, 1000)
    assert not r.passed and r.detail == "1,500 ms > 1,000 ms"


def test_evaluate_empty_expect() -> None:
    assert evaluate(Expect(), "anything", [], 10.0) == []


def test_evaluate_order_and_all_kinds() -> None:
    expect = Expect.model_validate(
        {
            "jsonSchema": SCHEMA,
            "contains": ["low"],
            "notContains": ["password"],
            "regex": "summary",
            "toolCalls": {"forbidden": ["create_case_note"]},
            "maxLatencyMs": 50,
        }
    )
    text = '{"risk": "low", "summary": "fine"}'
    results = evaluate(expect, text, [ToolCall(name="create_case_note")], 80.0)
    assert [r.name for r in results] == ["jsonSchema", "contains", "notContains", "regex", "toolCalls", "maxLatencyMs"]
    assert [r.passed for r in results] == [True, True, True, True, False, False]
