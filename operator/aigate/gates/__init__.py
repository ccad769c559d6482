"""The six gates: pure functions from (workload, measurements) to GateResult, and the decision."""

from __future__ import annotations

from aigate.api.load import ResolvedWorkload
from aigate.api.models import GateName
from aigate.gates.acceptance import apply_acceptances, is_active
from aigate.gates.cost import judge_cost
from aigate.gates.dependency import judge_provider_dependency
from aigate.gates.evidence import judge_evidence
from aigate.gates.fallback import FallbackPaths, judge_fallback_paths
from aigate.gates.reliability import judge_reliability
from aigate.gates.result import Decision, Finding, FindingCode, GateResult, GateStatus, decide
from aigate.gates.stats import rate
from aigate.gates.toolcontrol import ExtraCheck, judge_tool_control
from aigate.measurements import Measurements

__all__ = [
    "Decision",
    "Finding",
    "GateResult",
    "GateStatus",
    "apply_acceptances",
    "decide",
    "is_active",
    "judge_evidence",
    "judge_measured",
]


def measured_so_far(m: Measurements) -> dict[str, object]:
    """What a stopped run did measure, per model: the figures its starved gates report and the evidence keeps."""
    return {
        name: {
            "requests": len(mm.runs),
            "errors": sum(1 for r in mm.runs if not r.ok),
            "errorRate": round(rate(sum(1 for r in mm.runs if not r.ok), len(mm.runs)), 4),
            "passed": sum(1 for r in mm.runs if r.passed),
        }
        for name, mm in m.models.items()
    }


def stopped_early(gate: GateName, m: Measurements) -> GateResult:
    """A gate the run stopped before it could judge: ERROR StoppedEarly, saying what stopped it and what was
    measured until then."""
    by = m.stopped_by or "budget"
    why = m.aborted or "budget.gateRunMaxUSD reached"
    code: FindingCode = "run.errorRateReached" if by == "errorRate" else "run.budgetReached"
    return GateResult(
        gate=gate,
        status="ERROR",
        error_reason="StoppedEarly",
        reason=f"gate run stopped before completing: {why}",
        findings=[Finding(severity="fail", code=code, message=f"gate run stopped early: {why}")],
        metrics={
            "spentUSD": round(m.spent_usd, 4),
            "stoppedBy": by,
            "measuredSoFar": measured_so_far(m),
            "faultModesRun": [f.mode for f in m.faults],
        },
    )


def judge_measured(
    resolved: ResolvedWorkload,
    m: Measurements,
    *,
    assumed_timeout_ms: float,
    tool_checks: list[ExtraCheck] | None = None,
) -> list[GateResult]:
    """The five gates judged from measurements (the evidence gate judges the package built from these).

    Risk acceptances are not applied here: `apply_acceptances` does that, with the clock, in one place.
    """
    spec = resolved.workload.spec
    if m.budget_exhausted or m.aborted:
        # a failure measured before the stop is a failure; nothing else is judged from an incomplete run
        reliability = judge_reliability(spec, m) if m.stopped_by == "errorRate" else None
        if reliability is None or reliability.status != "FAIL":
            reliability = stopped_early("reliability", m)
        else:
            reliability.findings.insert(0, stopped_early("reliability", m).findings[0])
        measured = [stopped_early("cost", m), reliability, stopped_early("fallback", m)]
        paths = FallbackPaths()
    else:
        fallback, paths = judge_fallback_paths(spec, m, assumed_timeout_ms)
        measured = [judge_cost(spec, m), judge_reliability(spec, m), fallback]
    return [
        *measured,
        judge_tool_control(resolved, m, tool_checks),
        judge_provider_dependency(spec, m, paths.validated, paths.drift),
    ]
