"""What to change, per finding code: the second half of "why was this refused" (`kubectl aigate why`).

Keyed by code, never by message text; a code without an entry gets the gate's general advice.
"""

from __future__ import annotations

from aigate.gates.result import FindingCode, GateResult

REMEDIES: dict[FindingCode, str] = {
    "cost.priceUnknown": "set spec.models[].pricing for the model the catalog does not know",
    "cost.overBudget": "a cheaper model, fewer tokens (shorter prompts, spec.models[].maxTokens), "
    "or a budget.monthlyUSD that matches the projection",
    "cost.perRequestOverLimit": "cap output tokens (spec.models[].maxTokens) or raise budget.maxCostPerRequestUSD",
    "reliability.p95Latency": "a faster model or region, shorter outputs, or an slo.p95LatencyMs the workload can keep",
    "reliability.errorRate": "retries (spec.fallback.retries) or a provider that errs less",
    "reliability.passRate": "change the prompt or the model until the suite's assertions pass at slo.minPassRate",
    "reliability.timeoutUndefined": "declare spec.slo.timeoutMs",
    "fallback.none": "declare a fallback model, spec.fallback.humanRoute or spec.fallback.safeStop",
    "fallback.notValidated": "a fallback model that passes the suite at slo.minPassRate, or remove the failing one",
    "fallback.humanRouteSilent": "make spec.fallback.humanRoute.url answer the probe",
    "fallback.faultOutcomes": "retries, a validated fallback model or a safe stop, so every case ends within "
    "the deadline when the primary fails",
    "fallback.untested": "re-run the gates: no fault was injected",
    "toolControl.problem": "approval: required on every write or destructive tool; declare every tool the MCP "
    "servers expose, with the access they annotate; keep adversarial cases from reaching write tools",
    "providerDependency.noPath": "a model that answers, and a validated fallback on another provider",
    "providerDependency.singleProvider": "a validated fallback model on another provider",
    "providerDependency.singleCloud": "a validated path on another cloud (spec.models[].cloud)",
    "evidence.incomplete": "the evidence must be complete and signed: in a cluster the operator signs it; "
    "check its signing key and the gate run",
    "acceptance.expired": "renew the risk acceptance (spec.riskAcceptances) or remediate the gate",
    "acceptance.otherSpec": "an acceptor renews the risk acceptance for the spec as it is now, or remediate the gate",
    "cost.insufficientSamples": "raise spec.suite.repeats to the count the finding names, so the p95 cost per "
    "request can be judged",
    "reliability.insufficientSamples": "raise spec.suite.repeats to the count the finding names, so the percentile "
    "can be judged",
    "reliability.ttftP95": "a model or region with a faster first token, shorter prompts, or an slo.ttftP95Ms the "
    "workload can keep",
    "reliability.itlP95": "a model or region that streams faster, or an slo.itlP95Ms the workload can keep",
    "toolControl.accessUnclassified": "declare spec.tools[].access (read, write or destructive) for every tool",
    "toolControl.approvalMissing": "approval: required on every write or destructive tool",
    "toolControl.adversarialCall": "keep adversarial cases from reaching the tool: a system prompt that treats case "
    "text as data, a model that ignores injected instructions, or approval on the tool",
    "run.budgetReached": "raise budget.gateRunMaxUSD, or lower suite.repeats or models[].maxTokens, and re-run",
    "run.errorRateReached": "fix what made the provider fail (the finding names the errors), or raise "
    "suite.stopOnErrorRate, and re-run",
}

UNDECIDED: frozenset[str] = frozenset({"cost.insufficientSamples", "reliability.insufficientSamples"})
"""Warnings that are why a gate could not be judged (InsufficientSamples): their remedy is what to change too."""

GATE_ADVICE = {
    "cost": "bring the projected monthly cost within budget.monthlyUSD",
    "reliability": "meet the SLO at the measured concurrency",
    "fallback": "a fallback path that keeps every case valid under each fault",
    "toolControl": "keep the agent's tools within what was declared and approved",
    "providerDependency": "validated paths on two providers",
    "evidence": "complete, signed evidence",
}


def remedies(gate: GateResult) -> list[str]:
    """What to change for a failing gate, one line per distinct remedy, in the order of its findings."""
    out: list[str] = []
    for f in gate.findings:
        wanted = f.severity == "fail" or f.code in UNDECIDED
        if wanted and f.code in REMEDIES and REMEDIES[f.code] not in out:
            out.append(REMEDIES[f.code])
    return out or [GATE_ADVICE.get(gate.gate, "re-run the gates")]
