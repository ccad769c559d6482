"""The AIWorkload's status: seven conditions from the gate results, in the Kubernetes API conventions.

Pure functions: the controller passes the previous conditions so that lastTransitionTime moves only when a
condition's status does. Every condition reason is one of the `Reason` constants: a machine reads the reason, a
person the message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from aigate.gates.result import GateResult, GateStatus
from aigate.times import rfc3339

GATE_CONDITIONS = {
    "cost": "CostGate",
    "reliability": "ReliabilityGate",
    "fallback": "FallbackGate",
    "toolControl": "ToolControlGate",
    "providerDependency": "ProviderDependencyGate",
    "evidence": "EvidenceGate",
}
CONDITION_TYPES = [*GATE_CONDITIONS.values(), "Ready", "Drift"]
"""Drift: what the canaries after launch found (`aigate.policy.canary`); written only once a canary or a re-gate
after a drift has something to say."""
MAX_MESSAGE = 1024


class Reason:
    """Condition reasons (CamelCase, as the API conventions want)."""

    PASSED: Final = "Passed"
    FAILED: Final = "Failed"
    RISK_ACCEPTED: Final = "RiskAccepted"
    ERROR: Final = "Error"
    TESTING: Final = "Testing"
    EVIDENCE_PASSED: Final = "EvidencePassed"
    GATES_FAILED: Final = "GatesFailed"
    EVIDENCE_EXPIRED: Final = "EvidenceExpired"
    INVALID_SPEC: Final = "InvalidSpec"
    GATE_RUN_ERROR: Final = "GateRunError"
    NAMESPACE_EXCLUDED: Final = "NamespaceExcluded"
    INSUFFICIENT_SAMPLES: Final = "InsufficientSamples"
    STOPPED_EARLY: Final = "StoppedEarly"


GATE_REASONS: dict[GateStatus, str] = {
    "PASS": Reason.PASSED,
    "FAIL": Reason.FAILED,
    "ACCEPTED": Reason.RISK_ACCEPTED,
    "ERROR": Reason.ERROR,
}


def condition(
    type_: str, status: bool | None, reason: str, message: str, generation: int | None, now: datetime
) -> dict[str, Any]:
    return {
        "type": type_,
        "status": "Unknown" if status is None else ("True" if status else "False"),
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "observedGeneration": generation,
        "lastTransitionTime": rfc3339(now),
    }


ERROR_REASONS = {"InsufficientSamples": Reason.INSUFFICIENT_SAMPLES, "StoppedEarly": Reason.STOPPED_EARLY}
"""Why a gate in ERROR could not be judged (GateResult.error_reason), as its condition's reason."""


def gate_conditions(results: list[GateResult], generation: int | None, now: datetime) -> list[dict[str, Any]]:
    out = []
    for r in results:
        ok = None if r.status == "ERROR" else r.ok
        reason = ERROR_REASONS[r.error_reason] if r.error_reason else GATE_REASONS[r.status]
        out.append(condition(GATE_CONDITIONS[r.gate], ok, reason, r.reason, generation, now))
    return out


def merge_conditions(previous: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The whole list, in a stable order; lastTransitionTime kept where the status did not change, and
    conditions not re-judged this time carried over so that none is lost."""
    old = {c.get("type"): c for c in previous}
    fresh = {c["type"]: c for c in new}
    out = []
    for t in CONDITION_TYPES:
        c = fresh.get(t) or old.get(t)
        if c is None:
            continue
        c = dict(c)
        before = old.get(t)
        if before is not None and before.get("status") == c["status"] and before.get("lastTransitionTime"):
            c["lastTransitionTime"] = before["lastTransitionTime"]
        out.append(c)
    return out


def pending_conditions(message: str, generation: int | None, now: datetime) -> list[dict[str, Any]]:
    """While a gate run is under way: every gate Unknown, not Ready."""
    gates = [condition(t, None, Reason.TESTING, message, generation, now) for t in GATE_CONDITIONS.values()]
    return [*gates, condition("Ready", False, Reason.TESTING, message, generation, now)]


def failed_gates(results: list[GateResult]) -> list[GateResult]:
    return [r for r in results if not r.ok]


def ready_condition(
    results: list[GateResult], decision: str, expires_at: datetime | None, generation: int | None, now: datetime
) -> dict[str, Any]:
    if decision == "PASS":
        until = f" until {rfc3339(expires_at)}" if expires_at else ""
        return condition(
            "Ready", True, Reason.EVIDENCE_PASSED, f"all gates pass; evidence valid{until}", generation, now
        )
    failed = failed_gates(results)
    text = "; ".join(f"{r.gate}: {r.reason}" for r in failed)
    return condition("Ready", False, Reason.GATES_FAILED, text or "decision FAIL", generation, now)


def expired_condition(expires_at: str, generation: int | None, now: datetime) -> dict[str, Any]:
    return condition("Ready", False, Reason.EVIDENCE_EXPIRED, f"evidence expired at {expires_at}", generation, now)


def problem_condition(reason: str, message: str, generation: int | None, now: datetime) -> dict[str, Any]:
    """Ready False for a spec that cannot be gated (Reason.INVALID_SPEC) or a run that failed (GATE_RUN_ERROR)."""
    return condition("Ready", False, reason, message, generation, now)


def ready_reason(conditions: list[dict[str, Any]]) -> str | None:
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    return None if ready is None else ready.get("reason")
