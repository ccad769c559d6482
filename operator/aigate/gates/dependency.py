"""Provider-dependency gate: the loss of one provider (or cloud) must leave a validated path."""

from __future__ import annotations

from aigate.api.models import AIWorkloadSpec
from aigate.gates.result import Finding, FindingCode, GateResult
from aigate.measurements import Measurements


def validated_paths(spec: AIWorkloadSpec, m: Measurements, validated_fallbacks: list[str]) -> list[str]:
    """The primary (when it answered at all: its quality is the reliability gate's business) and the fallbacks
    the fallback gate validated."""
    primary = m.models.get(spec.primary.name)
    answered = primary is not None and any(r.ok for r in primary.runs)
    out = [spec.primary.name] if answered else []
    return out + [n for n in validated_fallbacks if n != spec.primary.name]


def judge_provider_dependency(
    spec: AIWorkloadSpec, m: Measurements, validated_fallbacks: list[str], drift: dict[str, list[str]]
) -> GateResult:
    by_name = {x.name: x for x in spec.models}
    paths = validated_paths(spec, m, validated_fallbacks)
    providers = sorted({by_name[p].provider_family for p in paths})
    clouds_declared = any(x.cloud for x in spec.models)
    clouds = sorted({by_name[p].cloud or "undeclared" for p in paths})
    findings = [
        Finding(
            severity="info",
            code="providerDependency.drift",
            subject=name,
            message=f"{by_name[name].model} did not reproduce the primary's {d}",
        )
        for name, items in drift.items()
        for d in items
    ]
    metrics = {"validatedPaths": paths, "providers": providers, "clouds": clouds if clouds_declared else []}
    fails: list[tuple[FindingCode, str]] = []
    if not paths:
        fails.append(("providerDependency.noPath", "no validated path"))
    elif len(providers) < 2:
        fails.append(("providerDependency.singleProvider", f"single provider: {providers[0]}"))
    if clouds_declared and paths and len(set(clouds) - {"undeclared"}) < 2:
        fails.append(("providerDependency.singleCloud", f"single cloud: {', '.join(clouds)}"))
    findings = [Finding(severity="fail", code=code, message=f) for code, f in fails] + findings
    if fails:
        return GateResult(
            gate="providerDependency",
            status="FAIL",
            reason="Provider dependency: " + "; ".join(f for _, f in fails),
            findings=findings,
            metrics=metrics,
        )
    where = f" across clouds {', '.join(clouds)}" if clouds_declared else ""
    return GateResult(
        gate="providerDependency",
        status="PASS",
        reason=f"Provider dependency: validated paths on {', '.join(providers)}{where}",
        findings=findings,
        metrics=metrics,
    )
