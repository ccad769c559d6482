"""Fallback gate: when the primary fails, does every case still end well, and are the fallbacks fit to
serve? Drift between primary and fallback is reported, since a fallback that answers differently changes
what flows downstream."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field

from aigate.api.models import AIWorkloadSpec
from aigate.gates.numbers import fault_deadline_ms
from aigate.gates.result import Finding, FindingCode, GateResult
from aigate.gates.stats import ms, pct, percentile, rate
from aigate.measurements import CaseRun, Measurements, ModelMeasurement

ASSERTION_LABELS = {
    "jsonSchema": "JSON schema broken",
    "contains": "expected text missing",
    "notContains": "forbidden text present",
    "regex": "pattern not matched",
    "toolCalls": "tool calls wrong",
    "maxLatencyMs": "too slow",
}
_REFUSAL = re.compile(r"\b(I can(no|')t|I am unable|I'm unable|I won't|cannot help with)\b", re.IGNORECASE)


def deadline_ms(spec: AIWorkloadSpec, assumed_timeout_ms: float) -> float:
    """The end-to-end deadline a case must meet under a fault: declared, else three timeouts."""
    return fault_deadline_ms(spec, spec.slo.timeout_ms or assumed_timeout_ms)


def validation(spec: AIWorkloadSpec, mm: ModelMeasurement) -> tuple[bool, str]:
    """A fallback counts only if it passes the suite at slo.minPassRate; say why not in the report's words."""
    runs = mm.runs
    if not runs:
        return False, f"{mm.requested_model}: not measured"
    pass_rate = rate(sum(1 for r in runs if r.passed), len(runs))
    if pass_rate >= spec.slo.min_pass_rate:
        return True, f"{mm.requested_model}: {pct(pass_rate)} of cases pass"
    broken: Counter[str] = Counter()
    with_assertion: Counter[str] = Counter()
    for r in runs:
        for a in r.assertions:
            with_assertion[a.name] += 1
            if not a.passed:
                broken[a.name] += 1
    errors = sum(1 for r in runs if not r.ok)
    parts = [f"{mm.requested_model}: {pct(pass_rate)} of cases pass"]
    if broken:
        name, n = broken.most_common(1)[0]
        parts.append(f"{ASSERTION_LABELS.get(name, name)} in {n}/{with_assertion[name]}")
    if errors:
        parts.append(f"errors in {errors}/{len(runs)}")
    return False, ", ".join(parts)


def _shape(r: CaseRun) -> str:
    text = r.text.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return "text"
    if isinstance(doc, dict):
        return "json:" + ",".join(sorted(doc))
    return "json:" + type(doc).__name__


def drift(primary: ModelMeasurement, other: ModelMeasurement) -> list[str]:
    """Provider-specific behaviour the fallback does not reproduce, in short phrases."""
    out: list[str] = []
    p_ok = [r for r in primary.runs if r.ok]
    o_ok = [r for r in other.runs if r.ok]
    if not p_ok or not o_ok:
        return out
    p_shapes, o_shapes = Counter(_shape(r) for r in p_ok), Counter(_shape(r) for r in o_ok)
    p_main, o_main = p_shapes.most_common(1)[0][0], o_shapes.most_common(1)[0][0]
    if p_main != o_main:
        out.append(f"output structure: primary mostly {p_main}, {other.model} mostly {o_main}")
    p_ref = rate(sum(1 for r in p_ok if _REFUSAL.search(r.text)), len(p_ok))
    o_ref = rate(sum(1 for r in o_ok if _REFUSAL.search(r.text)), len(o_ok))
    if abs(p_ref - o_ref) >= 0.1:
        out.append(f"refusals: primary {pct(p_ref)}, {other.model} {pct(o_ref)}")

    def calls(runs: list[CaseRun]) -> dict[str, set[str]]:
        acc: dict[str, set[str]] = {}
        for r in runs:
            acc.setdefault(r.case, set()).update(c.name for c in r.tool_calls)
        return acc

    pc, oc = calls(p_ok), calls(o_ok)
    differing = sorted(c for c in pc.keys() & oc.keys() if pc[c] != oc[c])
    if differing:
        out.append(f"tool-call pattern differs in {len(differing)} case(s): {', '.join(differing[:5])}")
    p50p = percentile([r.latency_ms for r in p_ok], 50) or 0.0
    p50o = percentile([r.latency_ms for r in o_ok], 50) or 0.0
    if p50p > 0 and (p50o > 2 * p50p or p50o < p50p / 2):
        out.append(f"latency: p50 {ms(p50p)} on the primary, {ms(p50o)} on {other.model}")
    return out


@dataclass(frozen=True)
class FallbackPaths:
    """What the fallback gate found that the provider-dependency gate builds on."""

    validated: list[str] = field(default_factory=list)
    """Names of the fallback models that pass the suite at slo.minPassRate."""
    drift: dict[str, list[str]] = field(default_factory=dict)
    """Per fallback model, how it differs from the primary."""


def judge_fallback(spec: AIWorkloadSpec, m: Measurements, assumed_timeout_ms: float) -> GateResult:
    return judge_fallback_paths(spec, m, assumed_timeout_ms)[0]


def judge_fallback_paths(
    spec: AIWorkloadSpec, m: Measurements, assumed_timeout_ms: float
) -> tuple[GateResult, FallbackPaths]:
    """The gate result, and the validated paths and drift for `judge_provider_dependency`."""
    fb = spec.fallback
    findings: list[Finding] = []
    fails: list[tuple[FindingCode, str]] = []
    has_path = bool(spec.fallbacks) or fb.human_route is not None or fb.safe_stop is not None
    if not has_path:
        none = GateResult(
            gate="fallback",
            status="FAIL",
            reason="Fallback: none (no fallback model, human route or safe stop declared)",
            findings=[
                Finding(
                    severity="fail",
                    code="fallback.none",
                    message="no fallback path: the loss of the primary stops the workload",
                )
            ],
        )
        return none, FallbackPaths()
    validated: list[str] = []
    not_validated: list[str] = []
    drift_by_model: dict[str, list[str]] = {}
    primary = m.models.get(spec.primary.name)
    for f in spec.fallbacks:
        mm = m.models.get(f.name)
        if mm is None:
            not_validated.append(f"{f.model}: not measured")
            continue
        ok, why = validation(spec, mm)
        (validated if ok else not_validated).append(f.name if ok else why)
        if primary is not None:
            d = drift(primary, mm)
            drift_by_model[f.name] = d
            findings.extend(
                Finding(severity="info", code="fallback.drift", subject=f.name, message=f"drift: {x}") for x in d
            )
    if not_validated:
        fails.append(("fallback.notValidated", f"Fallback: not validated ({'; '.join(not_validated)})"))
    if fb.human_route is not None:
        probe = m.human_route
        if probe is None or not probe.acknowledged:
            detail = probe.detail if probe else "not probed"
            fails.append(
                ("fallback.humanRouteSilent", f"human route {fb.human_route.url} did not acknowledge ({detail})")
            )
    limit = deadline_ms(spec, assumed_timeout_ms)
    modes: dict[str, dict[str, object]] = {}
    bad_by_mode: dict[str, int] = {}
    total_bad = total = late_total = 0
    for run in m.faults:
        bad = [o for o in run.outcomes if not o.valid or o.latency_ms > limit]
        served = Counter(o.served_by for o in run.outcomes)
        worst = max((o.latency_ms for o in run.outcomes), default=0.0)
        modes[run.mode] = {
            "cases": len(run.outcomes),
            "valid": len(run.outcomes) - len(bad),
            "servedBy": dict(served),
            "maxLatencyMs": round(worst, 1),
        }
        total += len(run.outcomes)
        if bad:
            bad_by_mode[run.mode] = len(bad)
            total_bad += len(bad)
            late_total += sum(1 for o in bad if o.valid)
            for o in bad:
                findings.append(
                    Finding(
                        severity="info",
                        code="fallback.faultCase",
                        subject=o.case,
                        message=f"{run.mode}: {o.case} served by {o.served_by} in {ms(o.latency_ms)}"
                        + (f" ({o.detail})" if o.detail else ""),
                    )
                )
    if total_bad:
        per_mode = ", ".join(f"{mode} {n}/{modes[mode]['cases']}" for mode, n in bad_by_mode.items())
        late = f", {late_total} past the {ms(limit)} deadline" if late_total else ""
        fails.append(
            (
                "fallback.faultOutcomes",
                f"Fault injection: {total_bad}/{total} cases without a valid outcome ({per_mode}{late})",
            )
        )
    if not m.faults:
        fails.append(("fallback.untested", "no fault was injected: the fallback path is untested"))
    metrics = {
        "validatedFallbacks": validated,
        "deadlineMs": limit,
        "faultModes": modes,
        "drift": drift_by_model,
    }
    findings = [Finding(severity="fail", code=code, message=f) for code, f in fails] + findings
    paths = FallbackPaths(validated=list(validated), drift=dict(drift_by_model))
    if fails:
        reason = "; ".join(f for _, f in fails)
        return GateResult(gate="fallback", status="FAIL", reason=reason, findings=findings, metrics=metrics), paths
    models = {f.name: f.model for f in spec.fallbacks}
    path = models[validated[0]] if validated else ("human route" if fb.human_route else "safe stop")
    reason = f"Fallback: validated ({path}); {len(m.faults)} fault modes, every case ended within {ms(limit)}"
    return GateResult(gate="fallback", status="PASS", reason=reason, findings=findings, metrics=metrics), paths
