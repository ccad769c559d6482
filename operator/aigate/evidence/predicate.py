"""The signed predicate as a typed model: built by `aigate.assessment.build_predicate`, read back by the verifier,
the admission webhook and the reconciler, so that each reads the same fields the same way.

The JSON is camelCase, times RFC 3339 (`aigate.times.rfc3339`). Reading is lenient where signing was strict:
the evidence gate judged completeness before signing, so here only what a decision needs is required (decision,
gates, expiresAt); a string `bound_predicate` summarised to fit a ConfigMap reads back as its head.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer
from pydantic.alias_generators import to_camel

from aigate.gates.result import Decision, GateResult
from aigate.times import rfc3339


class _P(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class WorkloadRef(_P):
    namespace: str
    name: str


class CaseRecord(_P):
    case: str = ""
    model: str = ""
    adversarial: bool = False
    runs: int = 0
    passed: int = 0
    p95_latency_ms: float | None = None
    failures: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)
    """Assertions of an imported promptfoo test not judged (import.promptfoo.unsupported: skip), each named."""


class AnsweredModel(_P):
    model: str | None = None
    system_fingerprint: str | None = None


class ModelIdentityRecord(_P):
    path: str = ""
    provider: str = ""
    requested: str = ""
    api: str = ""
    """The provider API measured: chatCompletions, responses or messages (empty in older evidence)."""
    answered: list[AnsweredModel] = Field(default_factory=list)
    price: dict[str, Any] | None = None


class FaultModes(_P):
    tried: list[str] = Field(default_factory=list)
    required: list[str] = Field(default_factory=list)


class AcceptanceRecord(_P):
    gate: str
    reason: str
    accepted_by: str | None = None
    expires: datetime
    active: bool

    @field_serializer("expires")
    def _time(self, t: datetime) -> str:
        return rfc3339(t)


class MonitoringCondition(_P):
    metric: str
    threshold: float
    comparison: Literal["<=", ">="]


class CanaryCondition(_P):
    """The canary after launch, as the workload was judged: how often, how many cases per model path, what it may
    spend a day, and the model identities each path answered with, which a canary that sees another calls drift."""

    metric: Literal["canary"] = "canary"
    every: str
    """The interval under the policy in force (`6h`), "0" when off."""
    cases: int
    max_usd_per_day: float = Field(alias="maxUSDPerDay")
    identities: dict[str, list[str]] = Field(default_factory=dict)


class MeasurementSummary(_P):
    started_at: datetime
    finished_at: datetime
    concurrency: int
    spent_usd: float = Field(alias="spentUSD")
    requests: int
    primary_pass_rate: float | None = None

    @field_serializer("started_at", "finished_at")
    def _time(self, t: datetime) -> str:
        return rfc3339(t)


class Runner(_P):
    name: str
    version: str


class PolicyRecord(_P):
    """The policy the workload was judged under: the AIGatePolicies selecting its namespace and, for what none of
    them sets, the platform default (named `platform-default`); what they amount to for enforcement and validity."""

    names: list[str]
    digest: str
    enforcement: str | None = None
    """The enforcement floor a rollout is judged under (the workload may ask for stricter)."""
    max_valid_for: str | None = None
    """The longest validity evidence may have, in hours (`720h`)."""


class EvidencePredicate(_P):
    """predicateType https://aigate.dev/evidence/v1."""

    workload: WorkloadRef | None = None
    owner: str | None = None
    spec_digest: str | None = None
    referenced: list[str] = Field(default_factory=list)
    decision: Decision | None = None
    gates: list[GateResult] = Field(default_factory=list)
    cases: list[CaseRecord | dict[str, Any]] = Field(default_factory=list)
    """Audit records (cases to runner): typed when they have aigate's shape, else read back as they were signed;
    completeness was the evidence gate's to judge before signing, not the reader's."""
    model_identities: list[ModelIdentityRecord | dict[str, Any]] = Field(default_factory=list)
    fault_modes: FaultModes | list[Any] | None = None
    risk_acceptances: list[AcceptanceRecord | dict[str, Any]] = Field(default_factory=list)
    monitoring: list[MonitoringCondition | CanaryCondition | dict[str, Any]] = Field(default_factory=list)
    measurement: MeasurementSummary | dict[str, Any] | None = None
    runner: Runner | dict[str, Any] | None = None
    issued_at: datetime | None = None
    expires_at: datetime
    policy: PolicyRecord | None = None
    """The AIGatePolicies in force (names and digest); None when none governed the workload."""

    @field_serializer("issued_at", "expires_at")
    def _time(self, t: datetime | None) -> str | None:
        return rfc3339(t) if t is not None else None

    def to_json(self) -> dict[str, Any]:
        """The JSON document that is signed."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=False)

    @property
    def failed_gates(self) -> list[GateResult]:
        return [g for g in self.gates if not g.ok]


def _unsummarised(value: Any) -> Any:
    """A string that `bound_predicate` replaced by {"truncated": true, "head": ...} reads back as its head."""
    if isinstance(value, dict):
        if value.get("truncated") is True and isinstance(value.get("head"), str):
            return value["head"] + "…"
        return {k: _unsummarised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unsummarised(v) for v in value]
    return value


def parse_predicate(doc: Any) -> EvidencePredicate:
    """The typed view of a signed predicate; ValueError (one line) when it lacks what a decision needs."""
    try:
        return EvidencePredicate.model_validate(_unsummarised(doc))
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "predicate"
        raise ValueError(f"predicate {where}: {first['msg']}") from None
