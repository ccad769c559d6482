"""The six gates: pure functions from (workload, measurements) to GateResult, and the decision."""

from __future__ import annotations

from aigate.api.load import ResolvedWorkload
from aigate.gates.acceptance import apply_acceptances, is_active
from aigate.gates.cost import judge_cost
from aigate.gates.dependency import judge_provider_dependency
from aigate.gates.evidence import judge_evidence
from aigate.gates.fallback import FallbackPaths, judge_fallback_paths
from aigate.gates.reliability import judge_reliability
from aigate.gates.result import Decision, Finding, GateResult, GateStatus, decide
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


def _budget_error(gate: str, m: Measurements) -> GateResult:
    return GateResult.model_validate(
        {
            "gate": gate,
            "status": "ERROR",
            "reason": f"gate run stopped before completing: {m.aborted or 'budget.gateRunMaxUSD reached'}",
            "metrics": {"spentUSD": round(m.spent_usd, 4)},
        }
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
        measured = [_budget_error(g, m) for g in ("cost", "reliability", "fallback")]
        paths = FallbackPaths()
    else:
        fallback, paths = judge_fallback_paths(spec, m, assumed_timeout_ms)
        measured = [judge_cost(spec, m), judge_reliability(spec, m), fallback]
    return [
        *measured,
        judge_tool_control(resolved, m, tool_checks),
        judge_provider_dependency(spec, m, paths.validated, paths.drift),
    ]
