"""JUnit XML, the format every CI system shows: one testcase per gate and per suite case on each model."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from aigate.assessment import Assessment
from aigate.gates.result import Finding

FIGURES = ("goodput", "tokensPerSecondP50", "p95LatencyMs", "p95TtftMs", "p95ItlMs", "p95LatencyMsSamples", "load")
"""Gate metrics a CI view shows as testcase properties."""


def _line(f: Finding) -> str:
    return f"{f.message} [{f.code}: {', '.join(f.standards)}]" if f.code else f.message


def render_junit(a: Assessment) -> str:
    root = ET.Element("testsuites", name=f"aigate {a.namespace}/{a.name}")
    gates = ET.SubElement(root, "testsuite", name="aigate.gates")
    g_fail = g_err = 0
    for g in a.gates:
        tc = ET.SubElement(gates, "testcase", classname="aigate.gates", name=g.gate)
        standards = sorted({i for f in g.findings for i in f.standards})
        figures = {k: g.metrics[k] for k in FIGURES if k in g.metrics}
        if standards or figures:
            props = ET.SubElement(tc, "properties")
            if standards:
                ET.SubElement(props, "property", name="standards", value=" ".join(standards))
            for k, v in figures.items():
                ET.SubElement(props, "property", name=k, value=str(v))
        if g.status == "FAIL":
            g_fail += 1
            el = ET.SubElement(tc, "failure", message=g.reason, type="GateFailed")
            el.text = "\n".join(_line(f) for f in g.findings if f.severity == "fail")
        elif g.status == "ERROR":
            g_err += 1
            el = ET.SubElement(tc, "error", message=g.reason, type="GateError")
            el.text = "\n".join(_line(f) for f in g.findings if f.severity != "info") or None
        else:
            out = ET.SubElement(tc, "system-out")
            out.text = f"{g.status}: {g.reason}"
    gates.set("tests", str(len(a.gates)))
    gates.set("failures", str(g_fail))
    gates.set("errors", str(g_err))

    cases = ET.SubElement(root, "testsuite", name="aigate.cases")
    c_fail = 0
    for c in a.cases:
        tc = ET.SubElement(cases, "testcase", classname=f"aigate.cases.{c.model}", name=c.case)
        if c.p95_latency_ms is not None:
            tc.set("time", f"{c.p95_latency_ms / 1000:.3f}")
        if c.passed < c.runs or c.runs == 0:
            c_fail += 1
            el = ET.SubElement(tc, "failure", message=f"{c.passed}/{c.runs} runs passed", type="CaseFailed")
            el.text = "\n".join(c.failures)
    cases.set("tests", str(len(a.cases)))
    cases.set("failures", str(c_fail))
    cases.set("errors", "0")
    root.set("tests", str(len(a.gates) + len(a.cases)))
    root.set("failures", str(g_fail + c_fail))
    root.set("errors", str(g_err))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
