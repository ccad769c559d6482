"""Cost gate: what the workload would spend at its declared volume, from what the gate run measured."""

from __future__ import annotations

import math
import statistics

from aigate.api.models import AIWorkloadSpec
from aigate.gates.numbers import DAYS_PER_MONTH, PERCENTILE_CONFIDENCE
from aigate.gates.reliability import insufficient_message, judged
from aigate.gates.result import Finding, GateResult
from aigate.gates.stats import percentile, rate, usd
from aigate.measurements import Measurements, ModelMeasurement


def _mean_cost(m: ModelMeasurement) -> float | None:
    costs = [r.cost_usd for r in m.runs if r.ok and r.cost_usd is not None]
    return sum(costs) / len(costs) if costs else None


def _standard_error(m: ModelMeasurement) -> float:
    """Of the mean cost per answered request: the run's own variance (tokens vary from answer to answer)."""
    costs = [r.cost_usd for r in m.runs if r.ok and r.cost_usd is not None]
    if len(costs) < 2:
        return 0.0
    return statistics.stdev(costs) / math.sqrt(len(costs))


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
    # the mean's one-sided upper bound at PERCENTILE_CONFIDENCE, from the run's variance: the gate judges it
    z = statistics.NormalDist().inv_cdf(PERCENTILE_CONFIDENCE)
    spread = z * _standard_error(primary) * (1 - fallback_share) * (1 + retry_rate) * requests_per_month
    low, high = max(0.0, projected - spread), projected + spread
    budget = spec.budget.monthly_usd
    ratio = high / budget
    p95_cost = percentile([r.cost_usd for r in runs if r.cost_usd is not None], 95) or 0.0
    metrics = {
        "projectedMonthlyUSD": round(projected, 2),
        "projectedMonthlyRangeUSD": [round(low, 2), round(high, 2)],
        "judgedMonthlyUSD": round(high, 2),
        "budgetMonthlyUSD": budget,
        "costRatio": round(ratio, 3),
        "requestsPerMonth": requests_per_month,
        "meanCostPerRequestUSD": round(per_request, 6),
        "p95CostPerRequestUSD": round(p95_cost, 6),
        "retryRate": round(retry_rate, 4),
        "fallbackShare": round(fallback_share, 4),
        "prices": {k: v.price.model_dump() for k, v in m.models.items() if v.price},
    }
    reason = f"Projected monthly cost: {usd(high)} = {ratio:.1f}x target {usd(budget)}"
    if spread > 0:
        reason += (
            f" (the upper end of {usd(low)}-{usd(high)}, the run's {PERCENTILE_CONFIDENCE:.0%} range around the mean "
            f"{usd(projected)}, is judged)"
        )
    failed = ratio > 1
    if failed:
        findings.append(Finding(severity="fail", code="cost.overBudget", message=reason))
    cap = spec.budget.max_cost_per_request_usd
    undecided = None
    if cap is not None:
        metrics["maxCostPerRequestUSD"] = cap
        costs = [r.cost_usd for r in runs if r.cost_usd is not None]
        j = judged(costs, cap, runs)
        metrics.update(j.metrics("p95CostPerRequestUSD"))
        if j.verdict == "fail":
            failed = True
            msg = f"p95 cost per request: {usd(p95_cost)}, above limit {usd(cap)} ({j.interval_text(usd)})"
            findings.append(Finding(severity="fail", code="cost.perRequestOverLimit", message=msg))
            if ratio <= 1:
                reason = msg
        elif j.verdict == "insufficient":
            undecided = insufficient_message("p95 cost per request", j, f"limit {usd(cap)}", usd, runs)
            findings.append(Finding(severity="warn", code="cost.insufficientSamples", message=undecided))
    if undecided and not failed:
        return GateResult(
            gate="cost",
            status="ERROR",
            error_reason="InsufficientSamples",
            reason="InsufficientSamples: " + undecided,
            findings=findings,
            metrics=metrics,
        )
    return GateResult(
        gate="cost", status="FAIL" if failed else "PASS", reason=reason, findings=findings, metrics=metrics
    )
