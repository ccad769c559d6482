"""Standards on every finding: one mapping file keyed by finding code, carried into every report format, the
evidence, and SARIF 2.1.0 that validates against the OASIS schema."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import get_args

from aigate.assessment import build_predicate
from aigate.gates.result import Finding, FindingCode
from aigate.report import render
from aigate.report.sarif import sarif_doc
from aigate.standards import mapping, spec_path, standard_ids
from factories import ROOT, T0, example_doc, resolved_from, sarif_schema_errors
from report_support import failing_assessment

ID_SHAPES = {
    "OWASP-LLM": r"^OWASP-LLM(0[1-9]|10):2025$",
    "OWASP-ASI": r"^OWASP-ASI(0[1-9]|10):2026$",
    "NIST-AI-600-1": r"^NIST-AI-600-1:2\.([1-9]|1[0-2])$",
    "EU-AI-Act": r"^EU-AI-Act:Art\.\d+$",
}


def test_every_finding_code_has_ids_from_the_catalogue_with_a_source() -> None:
    std = mapping()
    codes = set(get_args(FindingCode))
    assert codes == set(std.findings), "mapping.yaml and FindingCode disagree"
    assert set(std.sources) == set(ID_SHAPES)
    for standard_id in std.catalogue:
        assert re.match(ID_SHAPES[std.framework(standard_id)], standard_id), standard_id
    used = {i for entry in std.findings.values() for i in entry.ids}
    assert used <= set(std.catalogue), used - set(std.catalogue)
    # all four standards are evidenced by some finding
    assert {std.framework(i) for i in used} == set(ID_SHAPES)
    assert len([i for i in std.catalogue if i.startswith("OWASP-LLM")]) == 10
    assert len([i for i in std.catalogue if i.startswith("OWASP-ASI")]) == 10


def test_a_finding_carries_its_ids_from_its_code() -> None:
    f = Finding(severity="fail", code="toolControl.approvalMissing", subject="create_case_note", message="m")
    assert f.standards == standard_ids("toolControl.approvalMissing")
    assert "EU-AI-Act:Art.14" in f.standards and "OWASP-LLM06:2025" in f.standards
    assert "OWASP-LLM10:2025" in standard_ids("cost.overBudget")
    assert "EU-AI-Act:Art.12" in standard_ids("evidence.incomplete")
    assert spec_path("toolControl.approvalMissing", "create_case_note") == "spec.tools[create_case_note].approval"
    assert spec_path("reliability.caseFailed", None) == "spec.suite.cases"


def test_every_finding_in_every_format_and_the_evidence_carries_its_standards() -> None:
    a = failing_assessment()
    findings = [f for g in a.gates for f in g.findings]
    assert len(findings) > 10 and all(f.standards for f in findings)
    codes = {f.code for f in findings}
    doc = json.loads(render(a, "json"))
    for g in doc["gates"]:
        for f in g["findings"]:
            assert f["standards"] == standard_ids(f["code"]), f
    text, md = render(a, "text"), render(a, "markdown")
    for code in codes:
        assert code is not None
        ids = ", ".join(standard_ids(code))
        assert f"{code} (" in text and ids in text, code
        assert f"`{code}`" in md and ids in md, code
    root = ET.fromstring(render(a, "junit"))
    tool = root.find(".//testcase[@name='toolControl']")
    assert tool is not None
    prop = tool.find("properties/property[@name='standards']")
    assert prop is not None and "OWASP-LLM06:2025" in (prop.get("value") or "")
    failure = tool.find("failure")
    assert failure is not None and "[toolControl.approvalMissing: OWASP-LLM06:2025" in (failure.text or "")
    resolved = resolved_from(example_doc("fraud-review-assistant.yaml"))
    predicate = build_predicate(resolved, a.spec_digest, a.gates, a.decision, a.measurements, T0, T0)
    signed = predicate.to_json()
    assert all(f["standards"] for g in signed["gates"] for f in g["findings"])


def test_sarif_validates_has_one_rule_per_check_and_locates_results_in_the_file() -> None:
    a = failing_assessment()
    source = ROOT / "examples" / "fraud-review-assistant.yaml"
    doc = sarif_doc(a, str(source))
    assert sarif_schema_errors(doc) == []
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(get_args(FindingCode))
    results = run["results"]
    assert len(results) == sum(len(g.findings) for g in a.gates)
    lines = source.read_text().splitlines()
    by_rule = {r["ruleId"]: r for r in results}
    approval = by_rule["toolControl.approvalMissing"]
    assert approval["level"] == "error" and "EU-AI-Act:Art.14" in approval["properties"]["standards"]
    loc = approval["locations"][0]
    assert loc["logicalLocations"][0]["fullyQualifiedName"] == "spec.tools[create_case_note].approval"
    # the tool declares no approval: the result points at the tool's entry in the file
    assert "create_case_note" in lines[loc["physicalLocation"]["region"]["startLine"] - 1]
    budget = by_rule["cost.overBudget"]["locations"][0]["physicalLocation"]
    assert "monthlyUSD" in lines[budget["region"]["startLine"] - 1]
    assert rules[approval["ruleIndex"]]["id"] == "toolControl.approvalMissing"
    assert "OWASP-ASI02:2026" in rules[approval["ruleIndex"]]["properties"]["tags"]
    taxa = {t["id"] for tax in run["taxonomies"] for t in tax["taxa"]}
    assert {i for r in results for i in r["properties"]["standards"]} <= taxa
