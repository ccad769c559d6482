"""What a gate says: the shape every gate returns, whatever it judges."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aigate.api.models import GateName

GateStatus = Literal["PASS", "FAIL", "ACCEPTED", "ERROR"]


FindingCode = Literal[
    "cost.priceUnknown",
    "cost.usageEstimated",
    "cost.overBudget",
    "cost.perRequestOverLimit",
    "reliability.p95Latency",
    "reliability.errorRate",
    "reliability.passRate",
    "reliability.timeoutUndefined",
    "reliability.caseFailed",
    "fallback.none",
    "fallback.notValidated",
    "fallback.humanRouteSilent",
    "fallback.faultOutcomes",
    "fallback.untested",
    "fallback.drift",
    "fallback.faultCase",
    "toolControl.problem",
    "toolControl.note",
    "providerDependency.noPath",
    "providerDependency.singleProvider",
    "providerDependency.singleCloud",
    "providerDependency.drift",
    "evidence.incomplete",
    "acceptance.expired",
]
"""What a finding is about, for machines (reports, dashboards): the message is for people and may be reworded."""


class Finding(BaseModel):
    """One thing a person must know about: a line of the report, a remediation item."""

    model_config = ConfigDict(extra="forbid")

    severity: Literal["fail", "warn", "info"]
    message: str
    code: FindingCode | None = None
    """Set by every gate; absent only in evidence signed before findings carried codes."""
    subject: str | None = None
    """What it is about: a model, a case, a tool, a fault mode."""


class GateResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gate: GateName
    status: GateStatus
    reason: str
    """One line, as the report and the status condition show it."""
    findings: list[Finding] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict)
    acceptance: dict[str, Any] | None = None
    """The risk acceptance that turned a FAIL into ACCEPTED: reason, acceptedBy, expires."""

    @property
    def ok(self) -> bool:
        return self.status in ("PASS", "ACCEPTED")


Decision = Literal["PASS", "FAIL"]


def decide(results: list[GateResult]) -> Decision:
    """PASS only when every gate is PASS or ACCEPTED: an ERROR never lets a workload through."""
    return "PASS" if results and all(r.ok for r in results) else "FAIL"
