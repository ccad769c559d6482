"""The readiness report as one self-contained HTML file: for the people who sign off a release rather than run it.

No script and nothing fetched (inline CSS and SVG, and a Content-Security-Policy that forbids both anyway), so it
opens from an email attachment or a CI artifact. Rendered from an `Assessment` (`aigate check --format html`: every
request's figures) or from signed evidence alone (`aigate report`: what the predicate holds, and no more). Charts
draw measured figures only; where a source lacks one the page says so instead of drawing it. Every string from a
spec, a provider or a model's answer goes through `_e`.
"""

from __future__ import annotations

import contextlib
import html
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from aigate.assessment import Assessment
from aigate.evidence.errors import EvidenceError, EvidenceInputError
from aigate.evidence.keys import load_public_key
from aigate.evidence.predicate import (
    AcceptanceRecord,
    CanaryCondition,
    CaseRecord,
    ModelIdentityRecord,
    MonitoringCondition,
)
from aigate.gates.result import GateResult
from aigate.gates.stats import percentile
from aigate.measurements import FAULT_MODES
from aigate.report.evidencefile import EvidenceForReport, read_evidence
from aigate.report.text import GATE_TITLES, decision_text
from aigate.times import rfc3339, utcnow

_R = TypeVar("_R", bound=BaseModel)
_MODE_ORDER: dict[str, int] = {m: i for i, m in enumerate(FAULT_MODES)}
NONE = "\u2013"
"""An en dash: no figure."""
GATE_ORDER = ("cost", "reliability", "fallback", "toolControl", "providerDependency", "evidence")


def _e(value: object) -> str:
    """Every string that reaches the page: text and attribute values alike."""
    return html.escape(str(value), quote=True)


def _usd(x: float) -> str:
    if abs(x) >= 100:
        return f"${x:,.0f}"
    if abs(x) >= 1:
        return f"${x:,.2f}"
    return f"${x:.4f}"


def _ms(x: float) -> str:
    return f"{x:,.0f} ms"


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%".replace(".0%", "%")


# ---- the view: one shape for both sources ---------------------------------------------------------------------------


@dataclass
class LatencySeries:
    label: str
    values: list[float]
    what: str
    """'request' (each request end to end), 'ttft' (time to first token) or 'case-p95' (each case's p95)."""


@dataclass
class PathRow:
    name: str
    role: str | None
    provider: str
    model: str
    cloud: str | None
    answered: list[str] = field(default_factory=list)


@dataclass
class ModelStat:
    name: str
    requests: int
    retries: int
    errors: int
    monthly_usd: float | None
    """Measured mean cost per answered request x the declared requests a month: this model serving everything."""


@dataclass
class FaultCell:
    total: int = 0
    valid: int = 0
    late: int = 0
    served: Counter[str] = field(default_factory=Counter)
    max_ms: float = 0.0


@dataclass
class ToolRow:
    name: str
    declared: str | None
    approval: str | None
    exposed_by: list[str]
    annotations: list[str]


@dataclass
class AdversarialRow:
    case: str
    per_model: dict[str, tuple[int, int, list[str]]]
    """model -> (passed, runs, tool calls made, each as 'name' or 'name (class)')."""


@dataclass
class Acceptance:
    gate: str
    reason: str
    accepted_by: str | None
    expires: str
    active: bool | None


@dataclass
class View:
    name: str
    namespace: str
    owner: str
    decision: str
    decision_text: str
    spec_digest: str
    rendered_from: str
    verification: str
    verified: bool | None
    """None: a run, not evidence read back; else whether a signature vouches for the page."""
    gates: list[GateResult]
    paths: list[PathRow]
    latency: list[LatencySeries]
    latency_note: str
    model_stats: list[ModelStat]
    fault_modes: list[str]
    fault_cases: list[str]
    fault_cells: dict[tuple[str, str], FaultCell]
    fault_note: str
    tools: list[ToolRow]
    mcp_servers: list[str] | None
    """The MCP servers probed (a run), or None: the evidence does not record what they exposed."""
    adversarial: list[AdversarialRow]
    failing_cases: list[tuple[str, str, int, int, str]]
    key_id: str | None
    issued_at: str | None
    expires_at: str | None
    expired: bool
    acceptances: list[Acceptance]
    monitoring: list[str]
    verify_command: str
    runner: str
    canary_history: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    """Rendered from the cluster (`kubectl aigate report`): status.canary.history (time, outcome, cases, spend,
    message), newest first. Status, not signed: the page says so."""


def _gate(gates: Sequence[GateResult], name: str) -> GateResult | None:
    return next((g for g in gates if g.gate == name), None)


def _tool_rows(gates: Sequence[GateResult], mcp: Iterable[Any] = ()) -> list[ToolRow]:
    tc = _gate(gates, "toolControl")
    declared = {t.get("name", ""): t for t in (tc.metrics.get("tools", []) if tc else [])}
    rows = {
        n: ToolRow(name=n, declared=t.get("access"), approval=t.get("approval"), exposed_by=[], annotations=[])
        for n, t in declared.items()
    }
    for probe in mcp:
        for tool in probe.tools:
            row = rows.setdefault(
                tool.name, ToolRow(name=tool.name, declared=None, approval=None, exposed_by=[], annotations=[])
            )
            row.exposed_by.append(probe.name)
            for hint, v in (("readOnlyHint", tool.read_only_hint), ("destructiveHint", tool.destructive_hint)):
                if v is not None:
                    row.annotations.append(f"{hint}: {str(v).lower()}")
    return list(rows.values())


def view_of_assessment(a: Assessment) -> View:
    """From a run: every request's figures are at hand."""
    m = a.measurements
    roles = {p.name: p for p in a.paths}
    latency: list[LatencySeries] = []
    for name, mm in m.models.items():
        label = f"{name} · {mm.requested_model}"
        latency.append(LatencySeries(label, [r.latency_ms for r in mm.runs], "request"))
        ttft = [r.ttft_ms for r in mm.runs if r.ttft_ms is not None]
        if ttft:
            latency.append(LatencySeries(f"{label} · TTFT", ttft, "ttft"))
    cost = a.gate("cost")
    per_month = cost.metrics.get("requestsPerMonth")
    stats = []
    for name, mm in m.models.items():
        costs = [r.cost_usd for r in mm.runs if r.ok and r.cost_usd is not None]
        monthly = sum(costs) / len(costs) * float(per_month) if costs and per_month else None
        stats.append(
            ModelStat(
                name=f"{name} · {mm.requested_model}",
                requests=len(mm.runs),
                retries=sum(r.retries for r in mm.runs),
                errors=sum(1 for r in mm.runs if not r.ok),
                monthly_usd=monthly,
            )
        )
    deadline = _gate(a.gates, "fallback")
    limit = float(deadline.metrics.get("deadlineMs", 0) or 0) if deadline else 0.0
    cases: list[str] = []
    cells: dict[tuple[str, str], FaultCell] = {}
    for run in m.faults:
        for o in run.outcomes:
            if o.case not in cases:
                cases.append(o.case)
            cell = cells.setdefault((run.mode, o.case), FaultCell())
            cell.total += 1
            ok = o.valid and (not limit or o.latency_ms <= limit)
            cell.valid += ok
            cell.late += o.valid and not ok
            cell.served[o.served_by] += 1
            cell.max_ms = max(cell.max_ms, o.latency_ms)
    access = {t.name: t.declared for t in _tool_rows(a.gates)}
    adversarial: dict[str, AdversarialRow] = {}
    for mm in m.models.values():
        by_case: dict[str, list[Any]] = defaultdict(list)
        for r in mm.runs:
            if r.adversarial:
                by_case[r.case].append(r)
        for case, runs in by_case.items():
            calls = sorted(
                {
                    c.name + ("" if access.get(c.name) == "read" else f" ({access.get(c.name) or 'undeclared'})")
                    for r in runs
                    for c in r.tool_calls
                }
            )
            row = adversarial.setdefault(case, AdversarialRow(case, {}))
            row.per_model[f"{mm.model} · {mm.requested_model}"] = (sum(r.passed for r in runs), len(runs), calls)
    ev = a.evidence
    accepted = [
        Acceptance(
            gate=g.gate,
            reason=str(g.acceptance.get("reason", "")),
            accepted_by=g.acceptance.get("acceptedBy"),
            expires=str(g.acceptance.get("expires", "")),
            active=True,
        )
        for g in a.gates
        if g.acceptance
    ]
    evidence_path = ev.path if ev and ev.path else f"{a.name}.evidence.json"
    return View(
        name=a.name,
        namespace=a.namespace,
        owner=a.owner,
        decision=a.decision,
        decision_text=decision_text(a),
        spec_digest=a.spec_digest,
        rendered_from=f"aigate check run at {rfc3339(a.generated_at)} (aigate {a.runner_version})",
        verification=(
            f"Signed evidence written to {ev.path}." if ev and ev.path else "This run's evidence was not signed."
        ),
        verified=None,
        gates=a.gates,
        paths=[
            PathRow(
                name=p.name,
                role=p.role,
                provider=p.provider,
                model=p.model,
                cloud=p.cloud,
                answered=sorted({i.model or "" for i in m.models[p.name].identities} - {""})
                if p.name in m.models
                else [],
            )
            for p in roles.values()
        ],
        latency=latency,
        latency_note="Each dot is one request (end to end, retries included) at the run's concurrency "
        f"({m.concurrency}); ticks mark p50 and p95.",
        model_stats=stats,
        fault_modes=[f.mode for f in m.faults],
        fault_cases=cases,
        fault_cells=cells,
        fault_note=f"Each fault injected on the primary; a cell counts the repeats whose outcome was valid within "
        f"the {_ms(limit)} deadline, and names what served them.",
        tools=_tool_rows(a.gates, m.mcp),
        mcp_servers=[p.name for p in m.mcp],
        adversarial=list(adversarial.values()),
        failing_cases=[
            (c.model, c.case, c.passed, c.runs, c.failures[0] if c.failures else "")
            for c in a.cases
            if c.passed < c.runs
        ],
        key_id=ev.key_id if ev else None,
        issued_at=rfc3339(ev.issued_at) if ev else None,
        expires_at=rfc3339(ev.expires_at) if ev else None,
        expired=False,
        acceptances=accepted,
        monitoring=[],
        verify_command=f"aigate verify {evidence_path} --key aigate.pub --workload WORKLOAD.yaml",
        runner=f"aigate {a.runner_version}",
    )


def _typed(items: Iterable[Any], model: type[_R]) -> list[_R]:
    """The predicate's audit records typed: some read back as plain dicts; those not of aigate's shape are left out."""
    out = []
    for item in items:
        if isinstance(item, model):
            out.append(item)
        elif isinstance(item, dict):
            with contextlib.suppress(ValidationError):
                out.append(model.model_validate(item))
    return out


def view_of_evidence(
    ev: EvidenceForReport, *, source: str, now: datetime | None = None, evidence_name: str = "EVIDENCE.json"
) -> View:
    """From signed evidence alone: gate figures, per-case results, identities, acceptances. No per-request data."""
    p = ev.predicate
    now = now or utcnow()
    ns, _, name = ev.subject.partition("/")
    if p.workload is not None:
        ns, name = p.workload.namespace, p.workload.name
    gates = sorted(p.gates, key=lambda g: GATE_ORDER.index(g.gate) if g.gate in GATE_ORDER else 99)
    cases = _typed(p.cases, CaseRecord)
    identities = _typed(p.model_identities, ModelIdentityRecord)
    requested = {i.path: i.requested for i in identities}
    latency = []
    for path in dict.fromkeys(c.model for c in cases):
        values = [c.p95_latency_ms for c in cases if c.model == path and c.p95_latency_ms is not None]
        if values:
            label = f"{path} · {requested[path]}" if path in requested else path
            latency.append(LatencySeries(label, values, "case-p95"))
    adversarial: dict[str, AdversarialRow] = {}
    for c in cases:
        if c.adversarial:
            row = adversarial.setdefault(c.case, AdversarialRow(c.case, {}))
            row.per_model[f"{c.model} · {requested.get(c.model, '')}".rstrip(" ·")] = (c.passed, c.runs, [])
    acceptances = [
        Acceptance(a.gate, a.reason, a.accepted_by, rfc3339(a.expires), a.active)
        for a in _typed(p.risk_acceptances, AcceptanceRecord)
    ]
    monitoring = [f"{c.metric} {c.comparison} {c.threshold:g}" for c in _typed(p.monitoring, MonitoringCondition)]
    monitoring += [
        f"canary every {c.every} ({'off' if c.every == '0' else f'{c.cases} cases per model path'}, at most "
        f"${c.max_usd_per_day:g} a day), comparing the answered model identities: "
        + "; ".join(f"{path} {', '.join(ids) or '(none recorded)'}" for path, ids in sorted(c.identities.items()))
        for c in _typed(p.monitoring, CanaryCondition)
    ]
    fb = _gate(gates, "fallback")
    modes = fb.metrics.get("faultModes", {}) if fb else {}
    cells = {
        (mode, "all cases"): FaultCell(
            total=int(s.get("cases", 0)),
            valid=int(s.get("valid", 0)),
            served=Counter({str(k): int(v) for k, v in (s.get("servedBy") or {}).items()}),
            max_ms=float(s.get("maxLatencyMs", 0) or 0),
        )
        for mode, s in modes.items()
        if isinstance(s, dict)
    }
    decision = p.decision or "FAIL"
    expired = p.expires_at <= now
    text = "Not ready for production: see the failing gates."
    if decision == "PASS":
        text = f"Ready for production. Evidence expires {p.expires_at.date().isoformat()}; re-gate before then."
    if expired:
        text += f" This evidence expired at {rfc3339(p.expires_at)}; re-gate before relying on it."
    return View(
        name=name,
        namespace=ns,
        owner=p.owner or "",
        decision=decision,
        decision_text=text,
        spec_digest=ev.spec_digest,
        rendered_from=f"signed evidence {source}",
        verification=ev.verification,
        verified=ev.verified,
        gates=gates,
        paths=[
            PathRow(
                name=i.path,
                role=None,
                provider=i.provider,
                model=i.requested,
                cloud=None,
                answered=sorted({x.model or "" for x in i.answered} - {""}),
            )
            for i in identities
        ],
        latency=latency,
        latency_note="The evidence records each case's p95 per model, not each request: each dot is one case's "
        "p95; the primary's p50/p95/p99 come from the reliability gate.",
        model_stats=[],
        fault_modes=sorted(dict.fromkeys(m for m, _ in cells), key=lambda m: (_MODE_ORDER.get(m, 99), m)),
        fault_cases=["all cases"] if cells else [],
        fault_cells=cells,
        fault_note="The evidence records each fault mode over all cases (valid within the deadline, and what "
        "served them); the cases without a valid outcome are listed below.",
        tools=_tool_rows(gates),
        mcp_servers=None,
        adversarial=list(adversarial.values()),
        failing_cases=[
            (c.model, c.case, c.passed, c.runs, c.failures[0] if c.failures else "") for c in cases if c.passed < c.runs
        ],
        key_id=ev.key_id,
        issued_at=rfc3339(p.issued_at) if p.issued_at else None,
        expires_at=rfc3339(p.expires_at),
        expired=expired,
        acceptances=acceptances,
        monitoring=monitoring,
        verify_command=f"aigate verify {evidence_name} --key aigate.pub --workload WORKLOAD.yaml",
        runner=f"{p.runner.name} {p.runner.version}" if p.runner is not None and not isinstance(p.runner, dict) else "",
    )


# ---- rendering ------------------------------------------------------------------------------------------------------

CSS = """
:root{--pass:#1a7f37;--fail:#cf222e;--acc:#9a6700;--err:#8250df;--ink:#1f2328;--mute:#59636e;--line:#d1d9e0;
--bg:#f6f8fa}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:var(--ink);margin:0;background:#fff}main{max-width:1120px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid var(--line);
padding-bottom:4px}h3{font-size:15px;margin:16px 0 6px}.mute{color:var(--mute)}code{font:12px ui-monospace,
"DejaVu Sans Mono",monospace;background:var(--bg);padding:1px 4px;border-radius:4px;word-break:break-all}
.banner{display:flex;gap:16px;align-items:center;padding:16px;border-radius:8px;border:2px solid}
.banner.PASS{border-color:var(--pass);background:#dafbe1}.banner.FAIL{border-color:var(--fail);background:#ffebe9}
.verdict{font-size:28px;font-weight:700}.PASS .verdict{color:var(--pass)}.FAIL .verdict{color:var(--fail)}
.note{padding:8px 12px;border-radius:6px;margin:10px 0;border:1px solid var(--line);background:var(--bg)}
.note.warn{border-color:#d4a72c;background:#fff8c5}.note.bad{border-color:var(--fail);background:#ffebe9}
.note.good{border-color:var(--pass);background:#dafbe1}
.gates{display:grid;grid-template-columns:repeat(3,1fr);gap:10px;margin-top:14px}
.gate{border:1px solid var(--line);border-left:6px solid;border-radius:6px;padding:8px 10px}
.gate.PASS{border-left-color:var(--pass)}.gate.FAIL{border-left-color:var(--fail)}
.gate.ACCEPTED{border-left-color:var(--acc)}.gate.ERROR{border-left-color:var(--err)}
.st{font-weight:700;font-size:12px;padding:1px 6px;border-radius:10px;color:#fff}.st.PASS{background:var(--pass)}
.st.FAIL{background:var(--fail)}.st.ACCEPTED{background:var(--acc)}.st.ERROR{background:var(--err)}
table{border-collapse:collapse;width:100%;margin:6px 0}th,td{border:1px solid var(--line);padding:4px 8px;
text-align:left;vertical-align:top}th{background:var(--bg);font-weight:600}td.num{text-align:right;
font-variant-numeric:tabular-nums}.cell-ok{background:#dafbe1}.cell-bad{background:#ffcecb}.cell-late{background:#fff8c5}
.tiles{display:flex;gap:10px;flex-wrap:wrap}.tile{border:1px solid var(--line);border-radius:6px;padding:8px 12px;
min-width:150px}.tile b{display:block;font-size:18px}ul.findings{margin:4px 0;padding-left:20px}
li.fail{color:var(--fail)}li.warn{color:#9a6700}svg{display:block;max-width:100%}svg text{font:11px system-ui,
"DejaVu Sans",sans-serif;fill:var(--ink)}details summary{cursor:pointer;color:var(--mute)}
footer{margin-top:32px;color:var(--mute);font-size:12px}
"""


def _status(s: str) -> str:
    return f'<span class="st {_e(s)}">{_e(s)}</span>'


def _findings(g: GateResult, severities: Sequence[str] = ("fail", "warn")) -> str:
    items = [f for f in g.findings if f.severity in severities]
    if not items:
        return ""
    lis = "".join(f'<li class="{_e(f.severity)}">{_e(f.message)}</li>' for f in items)
    return f'<ul class="findings">{lis}</ul>'


def _more_findings(g: GateResult) -> str:
    info = [f for f in g.findings if f.severity == "info"]
    if not info:
        return ""
    lis = "".join(f"<li>{_e(f.message)}</li>" for f in info[:200])
    more = f"<li>… and {len(info) - 200} more</li>" if len(info) > 200 else ""
    return f"<details><summary>{len(info)} further note(s)</summary><ul>{lis}{more}</ul></details>"


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], num: Sequence[int] = ()) -> str:
    """Cells are HTML already escaped by the caller."""
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{c}</td>' if i in num else f"<td>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _latency_svg(series: Sequence[LatencySeries], slo: float | None, marks: dict[str, float]) -> str:
    """One row per series: a dot per value, ticks at p50 and p95, the SLO as a dashed line."""
    left, width, row_h = 250, 820, 34
    top = 24
    height = top + row_h * len(series) + 34
    hi = max([max(s.values) for s in series if s.values] + [slo or 0.0] + list(marks.values()) + [1.0]) * 1.08

    def x(v: float) -> float:
        return left + (width - left - 20) * v / hi

    out = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="latency">']
    step = _nice_step(hi)
    t = 0.0
    while t <= hi:
        out.append(f'<line x1="{x(t):.1f}" y1="{top - 6}" x2="{x(t):.1f}" y2="{height - 28}" stroke="#eaeef2"/>')
        out.append(f'<text x="{x(t):.1f}" y="{height - 14}" text-anchor="middle">{t:,.0f}</text>')
        t += step
    out.append(f'<text x="{width - 20}" y="{height - 2}" text-anchor="end">ms</text>')
    for i, s in enumerate(series):
        y = top + row_h * i + row_h / 2
        colour = "#0969da" if s.what == "request" else ("#8250df" if s.what == "ttft" else "#1b7c83")
        out.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{_e(_clip(s.label, 40))}</text>')
        for j, v in enumerate(s.values):
            jitter = ((j * 7919) % 17 - 8) * 0.9
            out.append(
                f'<circle cx="{x(v):.1f}" cy="{y + jitter:.1f}" r="2.6" fill="{colour}" fill-opacity="0.55">'
                f"<title>{_e(_ms(v))}</title></circle>"
            )
        for q in (50, 95):
            pv = percentile(s.values, q)
            if pv is not None:
                out.append(
                    f'<line x1="{x(pv):.1f}" y1="{y - 12:.1f}" x2="{x(pv):.1f}" y2="{y + 12:.1f}" stroke="#1f2328" '
                    f'stroke-width="{2 if q == 95 else 1}"><title>p{q} {_e(_ms(pv))}</title></line>'
                )
                if q == 95:
                    out.append(f'<text x="{x(pv) + 4:.1f}" y="{y - 6:.1f}">p95 {_e(_ms(pv))}</text>')
    for label, v in marks.items():
        out.append(
            f'<line x1="{x(v):.1f}" y1="{top - 4}" x2="{x(v):.1f}" y2="{height - 28}" stroke="#59636e" '
            f'stroke-dasharray="2 3"/><text x="{x(v) + 3:.1f}" y="{top - 8}" fill="#59636e">{_e(label)}</text>'
        )
    if slo is not None:
        right = x(slo) > width * 0.8  # keep the label inside the chart
        anchor, lx = ("end", x(slo) - 4) if right else ("start", x(slo) + 4)
        out.append(
            f'<line x1="{x(slo):.1f}" y1="{top - 10}" x2="{x(slo):.1f}" y2="{height - 28}" stroke="#cf222e" '
            f'stroke-width="2" stroke-dasharray="6 4"/><text x="{lx:.1f}" y="{top - 12}" text-anchor="{anchor}" '
            f'fill="#cf222e">SLO p95 {_e(_ms(slo))}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _nice_step(hi: float) -> float:
    raw = hi / 6
    mag = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 1.0
    for f in (1, 2, 2.5, 5, 10):
        if raw <= f * mag:
            return f * mag
    return 10 * mag


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _bars_svg(bars: Sequence[tuple[str, float, str]], limit: float | None, limit_label: str) -> str:
    """Horizontal bars (label, value, colour) against a limit line."""
    left, width, row_h, top = 300, 820, 30, 26
    height = top + row_h * len(bars) + 10
    hi = max([v for _, v, _ in bars] + [limit or 0.0] + [1e-9]) * 1.1

    def x(v: float) -> float:
        return left + (width - left - 90) * v / hi

    out = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="bars">']
    for i, (label, v, colour) in enumerate(bars):
        y = top + row_h * i
        out.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{_e(_clip(label, 56))}</text>')
        out.append(f'<rect x="{left}" y="{y + 3}" width="{max(x(v) - left, 1):.1f}" height="18" fill="{colour}"/>')
        out.append(f'<text x="{x(v) + 5:.1f}" y="{y + 16}">{_e(_usd(v))}</text>')
    if limit is not None:
        out.append(
            f'<line x1="{x(limit):.1f}" y1="{top - 8}" x2="{x(limit):.1f}" y2="{height - 4}" stroke="#cf222e" '
            f'stroke-width="2" stroke-dasharray="6 4"/><text x="{x(limit) + 4:.1f}" y="{top - 12}" '
            f'fill="#cf222e">{_e(limit_label)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _section(gate: GateResult | None, title: str, body: str) -> str:
    if gate is None:
        return ""
    head = f'<h2 id="{_e(gate.gate)}">{_e(title)} {_status(gate.status)}</h2><p>{_e(gate.reason)}</p>'
    acc = ""
    if gate.acceptance:
        a = gate.acceptance
        acc = (
            f'<p class="note warn">Risk accepted by {_e(a.get("acceptedBy") or "unknown")} until '
            f"{_e(a.get('expires', ''))}: {_e(a.get('reason', ''))}</p>"
        )
    return head + acc + _findings(gate) + body + _more_findings(gate)


def _cost(v: View) -> str:
    g = _gate(v.gates, "cost")
    if g is None or g.status == "ERROR":
        return _section(g, "Cost", "")
    mt = g.metrics
    bars: list[tuple[str, float, str]] = []
    if "projectedMonthlyUSD" in mt:
        colour = "#cf222e" if float(mt.get("costRatio", 0)) > 1 else "#1a7f37"
        bars.append(("projected (the gate's mix)", float(mt["projectedMonthlyUSD"]), colour))
    bars += [
        (f"{s.name} serving every request", s.monthly_usd, "#0969da")
        for s in v.model_stats
        if s.monthly_usd is not None
    ]
    budget = mt.get("budgetMonthlyUSD")
    chart = _bars_svg(bars, float(budget) if budget else None, f"budget {_usd(float(budget))}" if budget else "")
    tiles = [
        ("projected a month", _usd(float(mt["projectedMonthlyUSD"]))) if "projectedMonthlyUSD" in mt else None,
        ("budget a month", _usd(float(budget))) if budget else None,
        ("mean cost a request", _usd(float(mt["meanCostPerRequestUSD"]))) if "meanCostPerRequestUSD" in mt else None,
        ("p95 cost a request", _usd(float(mt["p95CostPerRequestUSD"]))) if "p95CostPerRequestUSD" in mt else None,
        ("retry rate", _pct(float(mt["retryRate"]))) if "retryRate" in mt else None,
        ("fallback share", _pct(float(mt["fallbackShare"]))) if "fallbackShare" in mt else None,
    ]
    body = _tiles([t for t in tiles if t]) + (chart if bars else "")
    if v.model_stats:
        body += "<p class='mute'>Per model: the measured mean cost of an answered request times the declared "
        body += f"{int(mt.get('requestsPerMonth', 0)):,} requests a month. Retries and fallback share per model:</p>"
        body += _table(
            ["model", "requests", "retries", "retry rate", "errors (fell to the next path)"],
            [
                [
                    _e(s.name),
                    str(s.requests),
                    str(s.retries),
                    _pct(s.retries / s.requests) if s.requests else NONE,
                    f"{s.errors} ({_pct(s.errors / s.requests) if s.requests else NONE})",
                ]
                for s in v.model_stats
            ],
            num=(1, 2, 3, 4),
        )
    prices = mt.get("prices") or {}
    if prices:
        body += _table(
            ["model", "input $/Mtok", "output $/Mtok", "price from"],
            [
                [
                    _e(k),
                    _e(p.get("input_per_m_tok_usd", "")),
                    _e(p.get("output_per_m_tok_usd", "")),
                    _e(p.get("source", "")),
                ]
                for k, p in prices.items()
                if isinstance(p, dict)
            ],
            num=(1, 2),
        )
    return _section(g, "Cost", body)


def _tiles(items: Sequence[tuple[str, str]]) -> str:
    return (
        '<div class="tiles">' + "".join(f'<div class="tile"><b>{_e(b)}</b>{_e(a)}</div>' for a, b in items) + "</div>"
    )


def _reliability(v: View) -> str:
    g = _gate(v.gates, "reliability")
    if g is None:
        return ""
    mt = g.metrics
    tiles = [
        (label, fmt(float(mt[key])))
        for key, label, fmt in (
            ("p50LatencyMs", "p50 latency", _ms),
            ("p95LatencyMs", "p95 latency", _ms),
            ("p99LatencyMs", "p99 latency", _ms),
            ("p95TtftMs", "p95 time to first token", _ms),
            ("errorRate", "error rate", _pct),
            ("passRate", "case pass rate", _pct),
            ("timeoutMs", "timeout", _ms),
        )
        if mt.get(key) is not None
    ]
    if "timeoutMs" in mt and mt["timeoutMs"] is None:
        tiles.append(("timeout", "undeclared"))
    body = _tiles(tiles)
    if v.latency:
        marks = {}
        if not any(s.what == "request" for s in v.latency):
            marks = {
                f"primary {k[:3]}": float(mt[k]) for k in ("p50LatencyMs", "p99LatencyMs") if mt.get(k) is not None
            }
        slo = mt.get("p95LatencyTargetMs")
        body += f'<p class="mute">{_e(v.latency_note)}</p>'
        body += _latency_svg(v.latency, float(slo) if slo is not None else None, marks)
    else:
        body += '<p class="mute">No latency figures were recorded.</p>'
    return _section(g, "Reliability", body)


def _fallback(v: View) -> str:
    g = _gate(v.gates, "fallback")
    if g is None:
        return ""
    body = ""
    validated = g.metrics.get("validatedFallbacks")
    if validated is not None:
        body += f"<p>Validated fallback models: {_e(', '.join(validated) or 'none')}</p>"
    if v.fault_modes:
        body += f'<h3>Fault mode &times; case</h3><p class="mute">{_e(v.fault_note)}</p>'
        rows = []
        for case in v.fault_cases:
            cells = [_e(case)]
            for mode in v.fault_modes:
                c = v.fault_cells.get((mode, case))
                if c is None:
                    cells.append(NONE)
                    continue
                cls = (
                    "cell-ok"
                    if c.valid == c.total
                    else ("cell-late" if c.late and not c.total - c.valid - c.late else "cell-bad")
                )
                served = ", ".join(f"{_e(k)} {n}" for k, n in c.served.most_common())
                cells.append(
                    f'<span class="{cls}" style="display:block;padding:2px 4px"><b>{c.valid}/{c.total}</b> · '
                    f"{served}<br><span class='mute'>max {_e(_ms(c.max_ms))}</span></span>"
                )
            rows.append(cells)
        body += _table(["case"] + [_e(m) for m in v.fault_modes], rows)
    else:
        body += '<p class="mute">No fault was injected.</p>'
    drift = g.metrics.get("drift") or {}
    if any(drift.values()):
        items = "".join(f"<li>{_e(k)}: {_e(d)}</li>" for k, ds in drift.items() for d in ds)
        body += f"<h3>Drift against the primary</h3><ul>{items}</ul>"
    return _section(g, "Fallback", body)


def _not_exposed(servers: list[str] | None) -> str:
    if servers is None:
        return "not recorded in the evidence"
    return "by none of " + ", ".join(servers) if servers else "no MCP server declared"


def _tool_control(v: View) -> str:
    g = _gate(v.gates, "toolControl")
    if g is None:
        return ""
    body = "<h3>Declared, exposed, annotated</h3>"
    if v.tools:
        body += _table(
            ["tool", "declared access", "approval", "exposed by MCP server", "server's annotations"],
            [
                [
                    f"<code>{_e(t.name)}</code>",
                    _e(t.declared or "not declared"),
                    _e(t.approval or NONE),
                    _e(", ".join(t.exposed_by) or _not_exposed(v.mcp_servers)),
                    _e(", ".join(t.annotations) or NONE),
                ]
                for t in v.tools
            ],
        )
    else:
        body += "<p class='mute'>No tools declared or exposed.</p>"
    if v.verified is not None:
        body += (
            "<p class='mute'>The evidence records declared tools; what MCP servers exposed shows in the findings.</p>"
        )
    body += f"<h3>Adversarial cases ({len(v.adversarial)})</h3>"
    if v.adversarial:
        models = list(dict.fromkeys(m for r in v.adversarial for m in r.per_model))
        rows = []
        for r in v.adversarial:
            cells = [_e(r.case)]
            for m in models:
                if m not in r.per_model:
                    cells.append(NONE)
                    continue
                passed, runs, calls = r.per_model[m]
                cls = "cell-ok" if passed == runs else "cell-bad"
                said = (
                    ("called " + ", ".join(f"<code>{_e(c)}</code>" for c in calls) if calls else "called no tool")
                    if v.verified is None
                    else ""
                )
                cells.append(
                    f'<span class="{cls}" style="display:block;padding:2px 4px">{passed}/{runs} passed<br>{said}</span>'
                )
            rows.append(cells)
        body += _table(["case"] + [_e(m) for m in models], rows)
    return _section(g, "Tool control", body)


def _dependency(v: View) -> str:
    g = _gate(v.gates, "providerDependency")
    if g is None:
        return ""
    mt = g.metrics
    validated = set(mt.get("validatedPaths") or [])
    body = _tiles(
        [
            ("providers of validated paths", ", ".join(mt.get("providers") or []) or "none"),
            ("clouds of validated paths", ", ".join(mt.get("clouds") or []) or "not declared"),
        ]
    )
    body += _table(
        ["path", "role", "provider", "model asked for", "model that answered", "cloud", "validated"],
        [
            [
                _e(p.name),
                _e(p.role or NONE),
                _e(p.provider),
                f"<code>{_e(p.model)}</code>",
                _e(", ".join(p.answered) or NONE),
                _e(p.cloud or (NONE if v.verified is None else "not recorded")),
                "yes" if p.name in validated else "no",
            ]
            for p in v.paths
        ],
    )
    return _section(g, "Provider dependency", body)


def _evidence(v: View) -> str:
    g = _gate(v.gates, "evidence")
    cls = "good" if v.verified else ("bad" if v.verified is False else "")
    body = f'<p class="note {cls}">{_e(v.verification)}</p>'
    rows = [
        ["spec digest", f"<code>{_e(v.spec_digest)}</code>"],
        ["signing key id", f"<code>{_e(v.key_id)}</code>" if v.key_id else "unsigned"],
        ["issued", _e(v.issued_at or NONE)],
        ["expires", _e(v.expires_at or NONE) + (" <b>(expired)</b>" if v.expired else "")],
    ]
    body += _table(["", ""], rows)
    body += "<h3>Risk acceptances</h3>"
    if v.acceptances:
        body += _table(
            ["gate", "accepted by", "until", "in force", "reason"],
            [
                [
                    _e(a.gate),
                    _e(a.accepted_by or "unknown"),
                    _e(a.expires),
                    NONE if a.active is None else ("yes" if a.active else "no (expired)"),
                    _e(a.reason),
                ]
                for a in v.acceptances
            ],
        )
    else:
        body += "<p class='mute'>None.</p>"
    if v.monitoring:
        body += "<h3>To monitor after launch</h3><ul>" + "".join(f"<li>{_e(m)}</li>" for m in v.monitoring) + "</ul>"
    if v.canary_history:
        body += (
            "<h3>Canaries since</h3><p class='mute'>From the AIWorkload's status.canary.history (the operator's "
            "record, not part of the signed evidence).</p>"
            + _table(
                ["when", "outcome", "cases", "spent", "what it found"], [[_e(c) for c in r] for r in v.canary_history]
            )
        )
    if v.key_id:
        body += f"<h3>Verify it yourself, offline</h3><p><code>{_e(v.verify_command)}</code></p>"
    if g is None:
        return f"<h2 id='evidence'>Evidence</h2>{body}"
    return _section(g, "Evidence", body)


def _cases(v: View) -> str:
    if not v.failing_cases:
        return ""
    rows = [[_e(m), _e(c), f"{p}/{r}", _e(_clip(f, 300))] for m, c, p, r, f in v.failing_cases]
    return f"<h2 id='cases'>Cases failing on some model ({len(rows)})</h2>" + _table(
        ["model", "case", "passed", "first failure"], rows
    )


def render_view(v: View) -> str:
    gates = "".join(
        f'<a class="gate {_e(g.status)}" href="#{_e(g.gate)}" style="color:inherit;text-decoration:none">'
        f"<b>{_e(GATE_TITLES.get(g.gate, g.gate))}</b> {_status(g.status)}<br>"
        f'<span class="mute">{_e(_clip(g.reason, 160))}</span></a>'
        for g in v.gates
    )
    unverified = f'<p class="note bad">{_e(v.verification)}</p>' if v.verified is False else ""
    expired = f'<p class="note bad">Expired at {_e(v.expires_at)}.</p>' if v.expired else ""
    decision = v.decision if v.decision in ("PASS", "FAIL") else "FAIL"
    title = f"AI Production Readiness: {decision} · {v.namespace}/{v.name}"
    body = (
        f"<main><h1>{_e(title)}</h1>"
        f'<p class="mute">Owner {_e(v.owner or NONE)} · rendered from {_e(v.rendered_from)}</p>'
        f"{unverified}{expired}"
        f'<div class="banner {decision}"><span class="verdict">{_e(decision)}</span>'
        f"<span>{_e(v.decision_text)}</span></div>"
        f'<div class="gates">{gates}</div>'
        f"{_cost(v)}{_reliability(v)}{_fallback(v)}{_tool_control(v)}{_dependency(v)}{_evidence(v)}{_cases(v)}"
        f"<footer>{_e(v.runner)} · spec digest {_e(v.spec_digest)}</footer></main>"
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; "
        'img-src data:">'
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>{body}</body></html>\n"
    )


def render_html(a: Assessment) -> str:
    """`aigate check --format html`."""
    return render_view(view_of_assessment(a))


def render_html_from_evidence(
    ev: EvidenceForReport,
    *,
    source: str,
    now: datetime | None = None,
    evidence_name: str = "EVIDENCE.json",
    canary: Mapping[str, Any] | None = None,
) -> str:
    """`aigate report EVIDENCE.json --format html` and `kubectl aigate report` (`canary`: the workload's
    status.canary, whose history the page lists)."""
    view = view_of_evidence(ev, source=source, now=now, evidence_name=evidence_name)
    view.canary_history = canary_rows(canary)
    return render_view(view)


def canary_rows(canary: Mapping[str, Any] | None) -> list[tuple[str, str, str, str, str]]:
    """status.canary.history as table rows, newest first; entries that are not what the operator writes are left
    out (status is read, not trusted, here)."""
    history = (canary or {}).get("history")
    rows = []
    for h in history if isinstance(history, list) else []:
        if not isinstance(h, Mapping):
            continue
        listed = h.get("cases")
        cases: list[Any] = listed if isinstance(listed, list) else []
        spent = h.get("spentUSD")
        rows.append(
            (
                str(h.get("at", "")),
                str(h.get("outcome", "")),
                ", ".join(str(c) for c in cases) or NONE,
                f"${spent:.4f}" if isinstance(spent, int | float) else "",
                str(h.get("message", "")),
            )
        )
    return rows[::-1]


def render_evidence_file(
    evidence: Path, key: Path | None, workload: Path | None, *, now: datetime | None = None
) -> tuple[int, str, str]:
    """`aigate report`: (exit code, the HTML, one line for stderr). 1 when the evidence does not verify, 2 when a
    file cannot be read."""
    from aigate.api.digest import spec_digest
    from aigate.api.load import load_and_resolve

    if workload is not None and key is None:
        return 2, "", "aigate: error: --workload needs --key: a spec digest is only checked on verified evidence"
    try:
        public = load_public_key(key) if key else None
        try:
            raw = evidence.read_bytes()
        except OSError as e:
            return 2, "", f"aigate: error: {evidence}: cannot read: {e.strerror or e}"
        expected = spec_digest(load_and_resolve(workload)) if workload else None
        ev = read_evidence(raw, public, key_name=key.name if key else None, expected_digest=expected)
    except EvidenceInputError as e:
        return 2, "", f"aigate: error: {e}"
    except EvidenceError as e:
        return 1, "", f"evidence rejected: {e}"
    page = render_html_from_evidence(ev, source=evidence.name, now=now, evidence_name=evidence.name)
    said = "verified" if ev.verified else "NOT verified (no --key)"
    return 0, page, f"report of {ev.subject} from {evidence.name}: {said}"
