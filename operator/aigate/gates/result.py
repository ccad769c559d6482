"""What a gate says: the shape every gate returns, whatever it judges."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aigate.api.models import GateName
from aigate.standards import standard_ids

GateStatus = Literal["PASS", "FAIL", "ACCEPTED", "ERROR"]


FindingCode = Literal[
    "cost.priceUnknown",
    "cost.usageEstimated",
    "cost.overBudget",
    "cost.perRequestOverLimit",
    "cost.insufficientSamples",
    "reliability.p95Latency",
    "reliability.ttftP95",
    "reliability.itlP95",
    "reliability.errorRate",
    "reliability.passRate",
    "reliability.timeoutUndefined",
    "reliability.caseFailed",
    "reliability.insufficientSamples",
    "fallback.none",
    "fallback.notValidated",
    "fallback.humanRouteSilent",
    "fallback.faultOutcomes",
    "fallback.untested",
    "fallback.drift",
    "fallback.faultCase",
    "toolControl.problem",
    "toolControl.accessUnclassified",
    "toolControl.approvalMissing",
    "toolControl.adversarialCall",
    "toolControl.note",
    "providerDependency.noPath",
    "providerDependency.singleProvider",
    "providerDependency.singleCloud",
    "providerDependency.drift",
    "evidence.incomplete",
    "acceptance.expired",
    "acceptance.otherSpec",
    "run.budgetReached",
    "run.errorRateReached",
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
    standards: list[str] = Field(default_factory=list)
    """The standard IDs it evidences (OWASP LLM and Agentic Top 10, NIST AI 600-1, EU AI Act), from the one
    mapping keyed by code (aigate/standards/mapping.yaml); filled from the code when not given."""

    @model_validator(mode="after")
    def _standards(self) -> Finding:
        if self.code is not None and not self.standards:
            self.standards = standard_ids(self.code)
        return self


class GateResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gate: GateName
    status: GateStatus
    reason: str
    """One line, as the report and the status condition show it."""
    findings: list[Finding] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict)
    error_reason: Literal["InsufficientSamples", "StoppedEarly"] | None = None
    """Why an ERROR could not be judged, for machines (the status condition's reason)."""
    acceptance: dict[str, Any] | None = None
    """The risk acceptance that turned a FAIL into ACCEPTED: reason, acceptedBy, expires."""

    @property
    def ok(self) -> bool:
        return self.status in ("PASS", "ACCEPTED")


Decision = Literal["PASS", "FAIL"]


def decide(results: list[GateResult]) -> Decision:
    """PASS only when every gate is PASS or ACCEPTED: an ERROR never lets a workload through."""
    return "PASS" if results and all(r.ok for r in results) else "FAIL"
