"""Markdown for a pull-request comment: the verdict first, the detail folded away."""

from __future__ import annotations

from aigate.assessment import Assessment
from aigate.gates.reliability import load_text
from aigate.report.text import GATE_TITLES, decision_text, standards_by_code, summary_lines

_ICON = {"PASS": "✅", "FAIL": "❌", "ACCEPTED": "⚠️", "ERROR": "⛔"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(a: Assessment) -> str:
    out = [f"## AI Production Readiness: {_ICON[a.decision]} {a.decision}", ""]
    out += [f"- {_cell(line)}" for line in summary_lines(a)]
    out += ["", f"**Decision:** {_cell(decision_text(a))}", "", "| Gate | Result | Reason |", "|---|---|---|"]
    for g in a.gates:
        out.append(f"| {GATE_TITLES[g.gate]} | {_ICON[g.status]} {g.status} | {_cell(g.reason)} |")
    failing = [c for c in a.cases if c.passed < c.runs]
    if failing:
        out += ["", f"<details><summary>{len(failing)} case(s) failing on some model</summary>", ""]
        out += ["| Model | Case | Passed | First failure |", "|---|---|---|---|"]
        for c in failing:
            first = c.failures[0] if c.failures else ""
            out.append(f"| {c.model} | {_cell(c.case)} | {c.passed}/{c.runs} | {_cell(first)} |")
        out += ["", "</details>"]
    by_code = standards_by_code(a)
    if by_code:
        out += ["", "<details><summary>Standards evidenced by the findings</summary>", ""]
        out += ["| Finding | Count | Standards |", "|---|---|---|"]
        out += [f"| `{code}` | {n} | {_cell(', '.join(ids) or 'none')} |" for code, n, ids in by_code]
        out += ["", "</details>"]
    out += ["", f"Load: {_cell(load_text(a.measurements))}."]
    out += ["", f"<sub>spec digest `{a.spec_digest}` · aigate {a.runner_version}</sub>", ""]
    return "\n".join(out)
