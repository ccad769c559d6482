"""The readiness report a person reads: the shape of DESIGN.md, with the measured figures."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from aigate.assessment import Assessment
from aigate.gates.reliability import load_text
from aigate.gates.result import FindingCode, GateResult
from aigate.times import rfc3339

GATE_TITLES = {
    "cost": "Cost",
    "reliability": "Reliability",
    "fallback": "Fallback",
    "toolControl": "Tool control",
    "providerDependency": "Provider dependency",
    "evidence": "Evidence",
}

RELIABILITY_TOPICS: tuple[tuple[FindingCode, str], ...] = (
    ("reliability.p95Latency", "latency"),
    ("reliability.ttftP95", "time to first token"),
    ("reliability.itlP95", "inter-token latency"),
    ("reliability.errorRate", "error rate"),
    ("reliability.passRate", "answer quality"),
    ("reliability.timeoutUndefined", "timeout behavior"),
)
"""What the decision asks to remediate, per failing reliability finding."""


def _fails(g: GateResult, *codes: FindingCode) -> list[str]:
    """The messages of the gate's failing findings (those with one of `codes`, when given)."""
    return [f.message for f in g.findings if f.severity == "fail" and (not codes or f.code in codes)]


def _has(g: GateResult, code: FindingCode) -> bool:
    return any(f.code == code for f in g.findings if f.severity == "fail")


def skipped_lines(a: Assessment) -> list[str]:
    """The imported promptfoo assertions not judged (unsupported: skip): never silent, each one named."""
    seen: dict[str, None] = {}
    for c in a.cases:
        for s in c.skipped:
            seen.setdefault(f"{c.case}: {s}", None)
    if not seen:
        return []
    names = list(seen)
    more = f" and {len(names) - 20} more" if len(names) > 20 else ""
    return [
        f"Not judged (promptfoo import, unsupported: skip): {len(names)} assertion(s): {'; '.join(names[:20])}{more}"
    ]


def summary_lines(a: Assessment) -> list[str]:
    """The headline lines, in the order a reviewer asks: what runs, what it costs, how fast, what it may do."""
    primary = next(p for p in a.paths if p.role == "primary")
    measured = a.measurements.models.get(primary.name)
    api = ", Responses API" if measured is not None and measured.api == "responses" else ""
    lines = [f"Workload: {a.name}", f"Primary model: {primary.model} ({primary.provider}{api})"]
    fb = a.gate("fallback")
    cost, rel, tool = a.gate("cost"), a.gate("reliability"), a.gate("toolControl")
    dep, ev = a.gate("providerDependency"), a.gate("evidence")

    fb_lines = _fails(fb, "fallback.notValidated")
    if fb.status == "ERROR":
        fb_lines = [f"Fallback: not assessed ({fb.reason})"]
    elif not fb_lines:
        fb_lines = [fb.reason.split(";")[0] if fb.status != "FAIL" else fb.reason]
    lines += fb_lines
    lines += [f.message for f in fb.findings if f.severity == "fail" and f.code != "fallback.notValidated"]

    if cost.status == "ERROR":
        lines.append(f"Projected monthly cost: not assessed ({cost.reason})")
    else:
        lines += _fails(cost) or [cost.reason]
    if rel.status == "ERROR" and rel.error_reason != "InsufficientSamples":
        lines.append(f"p95 latency: not assessed ({rel.reason})")
    else:
        p95 = rel.metrics.get("p95LatencyMs")
        target = rel.metrics.get("p95LatencyTargetMs")
        undecided = [f.message for f in rel.findings if f.code == "reliability.insufficientSamples"]
        if undecided:
            lines += undecided
        elif not _has(rel, "reliability.p95Latency") and p95 is not None:
            samples, (lo, hi) = rel.metrics.get("p95LatencyMsSamples"), rel.metrics.get("p95LatencyMsInterval", [0, 0])
            within = f"p95 latency: {p95:,.0f} ms, within threshold {target:,.0f} ms"
            lines.append(within + (f" ({samples} samples, 95% bounds [{lo:,.0f} ms, {hi:,.0f} ms])" if hi else ""))
        lines += [f.message for f in rel.findings if f.severity == "fail" and f.code != "reliability.timeoutUndefined"]
        lines += throughput_lines(rel)
    writes = [t for t in tool.metrics.get("tools", []) if t.get("access") in ("write", "destructive")]
    if writes:
        lines.append("Tool access: " + ", ".join(f"{t['name']} ({t['access']})" for t in writes))
    lines += _fails(tool)
    lines.append(dep.reason)
    lines += _fails(rel, "reliability.timeoutUndefined")
    lines += skipped_lines(a)
    lines.append(ev.reason)
    for g in a.gates:
        if g.status == "ACCEPTED" and g.acceptance:
            acc = g.acceptance
            lines.append(
                f"Risk accepted: {g.gate} by {acc.get('acceptedBy') or 'unknown'} until {acc.get('expires')}"
                f" ({acc.get('reason')})"
            )
        lines += [f.message for f in g.findings if f.code in ("acceptance.expired", "acceptance.otherSpec")]
    return lines


def throughput_lines(rel: GateResult) -> list[str]:
    """Streaming latency, goodput and tokens/s, as measured (judged lines are the findings')."""
    m = rel.metrics
    out = []
    if "p95TtftMs" in m:
        itl = (
            f", inter-token latency p50 {m['p50ItlMs']:,.0f} ms / p95 {m['p95ItlMs']:,.0f} ms"
            if "p95ItlMs" in m
            else ""
        )
        out.append(f"Streaming: time to first token p50 {m['p50TtftMs']:,.0f} ms / p95 {m['p95TtftMs']:,.0f} ms{itl}")
    if "goodput" in m:
        tps = f"; {m['tokensPerSecondP50']:,.0f} output tokens/s per request (p50)" if "tokensPerSecondP50" in m else ""
        out.append(f"Goodput: {m['goodput']:.0%} of requests met every latency SLO{tps}")
    return out


def remediation_topics(a: Assessment) -> list[str]:
    topics: list[str] = []
    for g in a.gates:
        if g.status != "FAIL":
            continue
        if g.gate == "reliability":
            topics += [t for code, t in RELIABILITY_TOPICS if _has(g, code)]
        else:
            topics.append(
                {"toolControl": "tool-control", "providerDependency": "provider dependency"}.get(g.gate, g.gate)
            )
    # timeout behaviour reads best last among the measured topics, as in the design's example
    if "timeout behavior" in topics:
        topics.remove("timeout behavior")
        topics.insert(len([t for t in topics if t != "evidence"]), "timeout behavior")
    return topics


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def decision_text(a: Assessment) -> str:
    errors = [g for g in a.gates if g.status == "ERROR"]
    if errors:
        names = _join([GATE_TITLES[g.gate].lower() for g in errors])
        return f"Not assessed: {names} could not be judged ({errors[0].reason}). Fix the run and re-test."
    if a.decision == "PASS":
        text = "Ready for production."
        if a.evidence is not None:
            text += f" Evidence expires {a.evidence.expires_at.date().isoformat()}; re-gate before then."
        accepted = [g.gate for g in a.gates if g.status == "ACCEPTED"]
        if accepted:
            text += f" Accepted risks: {_join(accepted)}."
        return text
    return f"Do not release to production until {_join(remediation_topics(a))} are remediated and re-tested."


def standards_by_code(a: Assessment) -> list[tuple[str, int, list[str]]]:
    """(finding code, how many findings carry it, the standard IDs it evidences), in the order first found."""
    seen: dict[str, tuple[int, list[str]]] = {}
    for g in a.gates:
        for f in g.findings:
            key = f.code or "(no code)"
            n, ids = seen.get(key, (0, f.standards))
            seen[key] = (n + 1, ids)
    return [(code, n, ids) for code, (n, ids) in seen.items()]


def render_text(a: Assessment) -> str:
    out = [f"AI Production Readiness: {a.decision}", ""]
    out += summary_lines(a)
    out += ["", "Decision:"]
    out += textwrap.wrap(decision_text(a), width=72, break_on_hyphens=False)
    out += ["", "Gates:"]
    for g in a.gates:
        out.append(f"  {GATE_TITLES[g.gate]:<20} {g.status:<8} {g.reason}")
    by_code = standards_by_code(a)
    if by_code:
        out += ["", "Standards evidenced by the findings:"]
        out += [f"  {code} ({n}): {', '.join(ids) or 'none'}" for code, n, ids in by_code]
    m = a.measurements
    out += [
        "",
        f"Measured: {sum(len(x.runs) for x in m.models.values())} requests on {len(m.models)} model(s) "
        f"({load_text(m)}), {sum(len(f.outcomes) for f in m.faults)} under "
        f"{len(m.faults)} fault modes; gate run spent ${m.spent_usd:.4f}",
        f"Spec digest: {a.spec_digest}",
    ]
    if a.evidence is not None and a.evidence.path:
        out.append(f"Evidence: {a.evidence.path} (expires {rfc3339(a.evidence.expires_at)})")
    return "\n".join(out) + "\n"
