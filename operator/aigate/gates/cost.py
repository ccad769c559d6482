"""Cost gate: what the workload would spend at its declared volume, from what the gate run measured."""

from __future__ import annotations

from aigate.api.models import AIWorkloadSpec
from aigate.gates.result import Finding, GateResult
from aigate.gates.stats import percentile, rate, usd
from aigate.measurements import Measurements, ModelMeasurement
from aigate.policy.numbers import DAYS_PER_MONTH


def _mean_cost(m: ModelMeasurement) -> float | None:
    costs = [r.cost_usd for r in m.runs if r.ok and r.cost_usd is not None]
    return sum(costs) / len(costs) if costs else None


def judge_cost(spec: AIWorkloadSpec, m: Measurements) -> GateResult:
    findings: list[Finding] = []
    primary = m.models.get(spec.primary.name)
    if primary is None or not primary.runs:
        return GateResult(gate="cost", status="ERROR", reason="Cost: no measurements of the primary model")
    unknown = [mm for mm in m.models.values() if mm.price is None]
    for mm in unknown:
        findings.append(
            Finding(
                severity="fail",
                code="cost.priceUnknown",
                subject=mm.model,
                message=f"price unknown for {mm.requested_model} ({mm.provider}): "
                f"{mm.price_problem or 'not in the price catalog'}; set spec.models[].pricing",
            )
        )
    estimated = [mm.model for mm in m.models.values() if any(r.usage.estimated for r in mm.runs)]
    if estimated:
        findings.append(
            Finding(
                severity="warn",
                code="cost.usageEstimated",
                message=f"token usage estimated from text for {', '.join(estimated)}: the provider reported none",
            )
        )
    if unknown:
        names = ", ".join(mm.requested_model for mm in unknown)
        return GateResult(
            gate="cost",
            status="FAIL",
            reason=f"Projected monthly cost: unknown (no price for {names})",
            findings=findings,
        )

    runs = primary.runs
    retry_rate = rate(sum(r.retries for r in runs), len(runs))
    fallback_share = rate(sum(1 for r in runs if not r.ok), len(runs))
    primary_cost = _mean_cost(primary)
    if primary_cost is None:
        return GateResult(
            gate="cost",
            status="ERROR",
            reason="Cost: the primary model answered no request, so its cost per request is unknown",
            findings=findings,
        )
    fallback_cost = primary_cost
    for fb in spec.fallbacks:
        c = _mean_cost(m.models[fb.name]) if fb.name in m.models else None
        if c is not None:
            fallback_cost = c
            break
    per_request = (1 - fallback_share) * primary_cost * (1 + retry_rate) + fallback_share * fallback_cost
    requests_per_month = spec.traffic.requests_per_day * DAYS_PER_MONTH
    projected = per_request * requests_per_month
    budget = spec.budget.monthly_usd
    ratio = projected / budget
    p95_cost = percentile([r.cost_usd for r in runs if r.cost_usd is not None], 95) or 0.0
    metrics = {
        "projectedMonthlyUSD": round(projected, 2),
        "budgetMonthlyUSD": budget,
        "costRatio": round(ratio, 3),
        "requestsPerMonth": requests_per_month,
        "meanCostPerRequestUSD": round(per_request, 6),
        "p95CostPerRequestUSD": round(p95_cost, 6),
        "retryRate": round(retry_rate, 4),
        "fallbackShare": round(fallback_share, 4),
        "prices": {k: v.price.model_dump() for k, v in m.models.items() if v.price},
    }
    reason = f"Projected monthly cost: {usd(projected)} = {ratio:.1f}x target {usd(budget)}"
    failed = ratio > 1
    if failed:
        findings.append(Finding(severity="fail", code="cost.overBudget", message=reason))
    cap = spec.budget.max_cost_per_request_usd
    if cap is not None:
        metrics["maxCostPerRequestUSD"] = cap
        if p95_cost > cap:
            failed = True
            msg = f"p95 cost per request: {usd(p95_cost)}, above limit {usd(cap)}"
            findings.append(Finding(severity="fail", code="cost.perRequestOverLimit", message=msg))
            if ratio <= 1:
                reason = msg
    return GateResult(
        gate="cost", status="FAIL" if failed else "PASS", reason=reason, findings=findings, metrics=metrics
    )
