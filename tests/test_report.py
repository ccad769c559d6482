"""The four renderings of an assessment, checked on their content and their format."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import jsonschema
import pytest

from aigate.report import render
from aigate.report.jsondoc import REPORT_SCHEMA_VERSION, report_json_schema
from report_support import failing_assessment


def test_text_report_has_the_design_shape_with_measured_figures() -> None:
    text = render(failing_assessment(), "text")
    head = text.split("\n\nGates:")[0]
    assert head == (
        "AI Production Readiness: FAIL\n"
        "\n"
        "Workload: fraud-review-assistant\n"
        "Primary model: claude-sonnet-4-5 (anthropic)\n"
        "Fallback: not validated (gpt-4.1-mini: 61% of cases pass, JSON schema broken in 9/23)\n"
        "Projected monthly cost: $36,120 = 2.4x target $15,000\n"
        "p95 cost per request: $0.0602, above limit $0.0500 (24 samples, 95% bounds [$0.0602, unbounded])\n"
        "p95 latency: 6,480 ms, above threshold 4,000 ms (24 samples, 95% bounds [4,500 ms, unbounded])\n"
        "Goodput: 0% of requests met every latency SLO; 111 output tokens/s per request (p50)\n"
        "Tool access: create_case_note (write)\n"
        "Human approval: missing for write action create_case_note\n"
        "Provider dependency: single provider: anthropic; single cloud: aws\n"
        "Provider timeout behavior: undefined\n"
        "Evidence package: incomplete (unsigned)\n"
        "\n"
        "Decision:\n"
        "Do not release to production until cost, latency, fallback,\n"
        "tool-control, provider dependency, timeout behavior and evidence are\n"
        "remediated and re-tested."
    )
    assert "  Cost                 FAIL     Projected monthly cost" in text
    assert "Spec digest: sha256:abab" in text


def test_json_report_matches_its_schema() -> None:
    doc = json.loads(render(failing_assessment(), "json"))
    jsonschema.validate(doc, report_json_schema())
    assert doc["schemaVersion"] == REPORT_SCHEMA_VERSION
    assert doc["decision"] == "FAIL"
    gates = {g["gate"]: g for g in doc["gates"]}
    assert list(gates) == ["cost", "reliability", "fallback", "toolControl", "providerDependency", "evidence"]
    assert gates["cost"]["metrics"]["projectedMonthlyUSD"] == pytest.approx(36120.0)
    assert gates["reliability"]["metrics"]["p95LatencyMs"] == pytest.approx(6480.0)
    assert {f["mode"] for f in doc["faultModes"]} == {
        "timeout",
        "http_5xx",
        "http_429",
        "connection_reset",
        "malformed_body",
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**doc, "decision": "MAYBE"}, report_json_schema())


def test_junit_one_testcase_per_gate_and_per_case() -> None:
    root = ET.fromstring(render(failing_assessment(), "junit"))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    gates = suites["aigate.gates"].findall("testcase")
    assert [t.get("name") for t in gates] == [
        "cost",
        "reliability",
        "fallback",
        "toolControl",
        "providerDependency",
        "evidence",
    ]
    assert suites["aigate.gates"].get("failures") == "6"
    cases = suites["aigate.cases"].findall("testcase")
    assert len(cases) == 16  # 8 cases x 2 models
    failed = [t for t in cases if t.find("failure") is not None]
    assert {t.get("classname") for t in failed} == {"aigate.cases.fallback"}
    assert root.get("tests") == "22"
    cost = gates[0].find("failure")
    assert cost is not None and cost.get("message", "").startswith("Projected monthly cost: $36,120")


def test_markdown_for_pull_request() -> None:
    md = render(failing_assessment(), "markdown")
    assert md.startswith("## AI Production Readiness: ❌ FAIL\n")
    assert "| Cost | ❌ FAIL | Projected monthly cost: $36,120 = 2.4x target $15,000 |" in md
    assert "<details><summary>8 case(s) failing on some model</summary>" in md
