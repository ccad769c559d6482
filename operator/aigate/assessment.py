"""An assessment: one workload's gate results, decision and measurements, as every report and the evidence
see them. Built by the pipeline, rendered by `aigate.report`, signed by `aigate.evidence`."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from aigate import __version__
from aigate.api.load import ResolvedWorkload
from aigate.evidence.predicate import (
    AcceptanceRecord,
    AnsweredModel,
    CaseRecord,
    EvidencePredicate,
    FaultModes,
    MeasurementSummary,
    ModelIdentityRecord,
    MonitoringCondition,
    Runner,
    WorkloadRef,
)
from aigate.gates.numbers import DAYS_PER_MONTH
from aigate.gates.result import Decision, GateResult
from aigate.gates.stats import percentile, rate
from aigate.measurements import Measurements, required_fault_modes


class PathInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)
    name: str
    role: str
    provider: str
    model: str
    cloud: str | None = None


class CaseSummary(BaseModel):
    """One case on one model across its repeats: what JUnit and the evidence record per case."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)
    case: str
    model: str
    adversarial: bool
    runs: int
    passed: int
    p95_latency_ms: float | None
    failures: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)
    """Assertions of an imported promptfoo test not judged (import.promptfoo.unsupported: skip), each named."""


class EvidenceInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)
    key_id: str | None
    issued_at: datetime
    expires_at: datetime
    path: str | None = None
    digest: str | None = None


class Assessment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    namespace: str
    owner: str
    spec_digest: str
    decision: Decision
    gates: list[GateResult]
    paths: list[PathInfo]
    cases: list[CaseSummary]
    measurements: Measurements
    evidence: EvidenceInfo | None = None
    generated_at: datetime
    runner_version: str = __version__

    def gate(self, name: str) -> GateResult:
        return next(g for g in self.gates if g.gate == name)


def paths_of(resolved: ResolvedWorkload) -> list[PathInfo]:
    return [
        PathInfo(name=m.name, role=m.role, provider=m.provider, model=m.model, cloud=m.cloud)
        for m in resolved.workload.spec.models
    ]


def case_summaries(resolved: ResolvedWorkload, m: Measurements) -> list[CaseSummary]:
    adversarial = {c.name: c.adversarial for c in resolved.cases}
    skipped = {c.name: list(c.expect.promptfoo.skipped) for c in resolved.cases if c.expect.promptfoo is not None}
    out = []
    for mm in m.models.values():
        by_case: dict[str, list[Any]] = defaultdict(list)
        for r in mm.runs:
            by_case[r.case].append(r)
        for case in [c.name for c in resolved.cases]:
            runs = by_case.get(case, [])
            failures: list[str] = []
            for r in runs:
                if not r.ok:
                    failures.append(f"repeat {r.repeat}: {r.error}: {r.error_detail}".rstrip(": "))
                failures += [f"repeat {r.repeat}: {a.name}: {a.detail}" for a in r.assertions if not a.passed]
            out.append(
                CaseSummary(
                    case=case,
                    model=mm.model,
                    adversarial=adversarial.get(case, False),
                    runs=len(runs),
                    passed=sum(1 for r in runs if r.passed),
                    p95_latency_ms=percentile([r.latency_ms for r in runs], 95),
                    failures=failures,
                    skipped=skipped.get(case, []),
                )
            )
    return out


def monitoring_conditions(resolved: ResolvedWorkload) -> list[MonitoringCondition]:
    """What to watch after launch, with thresholds from the spec: the gate's promises, kept honest."""
    spec = resolved.workload.spec
    return [
        MonitoringCondition(metric="p95LatencyMs", threshold=spec.slo.p95_latency_ms, comparison="<="),
        MonitoringCondition(
            metric="dailyCostUSD", threshold=round(spec.budget.monthly_usd / DAYS_PER_MONTH, 2), comparison="<="
        ),
        MonitoringCondition(metric="errorRate", threshold=spec.slo.max_error_rate, comparison="<="),
        *(
            MonitoringCondition(metric=metric, threshold=value, comparison="<=")
            for metric, value in (("ttftP95Ms", spec.slo.ttft_p95_ms), ("itlP95Ms", spec.slo.itl_p95_ms))
            if value is not None
        ),
        MonitoringCondition(metric="passRate", threshold=spec.slo.min_pass_rate, comparison=">="),
    ]


def build_predicate(
    resolved: ResolvedWorkload,
    spec_digest: str,
    gates: list[GateResult],
    decision: Decision,
    m: Measurements,
    issued_at: datetime,
    expires_at: datetime,
) -> EvidencePredicate:
    """The evidence predicate: everything an auditor needs to see what was tested and what came out."""
    spec = resolved.workload.spec
    identities = []
    for mm in m.models.values():
        seen = {(i.model, i.system_fingerprint) for i in mm.identities}
        identities.append(
            ModelIdentityRecord(
                path=mm.model,
                provider=mm.provider,
                requested=mm.requested_model,
                api=mm.api,
                answered=[AnsweredModel(model=a, system_fingerprint=b) for a, b in sorted(seen, key=str)],
                price=mm.price.model_dump() if mm.price else None,
            )
        )
    cases = [
        CaseRecord(
            case=c.case,
            model=c.model,
            adversarial=c.adversarial,
            runs=c.runs,
            passed=c.passed,
            p95_latency_ms=c.p95_latency_ms,
            failures=c.failures[:10],
            skipped=c.skipped,
        )
        for c in case_summaries(resolved, m)
    ]
    return EvidencePredicate(
        workload=WorkloadRef(namespace=resolved.workload.metadata.namespace, name=resolved.name),
        owner=spec.owner,
        spec_digest=spec_digest,
        referenced=sorted(resolved.referenced),
        decision=decision,
        gates=gates,
        cases=cases,
        model_identities=identities,
        fault_modes=FaultModes(
            tried=[f.mode for f in m.faults], required=list(required_fault_modes(spec.primary.stream))
        ),
        risk_acceptances=[
            AcceptanceRecord(
                gate=a.gate,
                reason=a.reason,
                accepted_by=a.accepted_by,
                expires=a.expires,
                active=a.expires > issued_at,
            )
            for a in spec.risk_acceptances
        ],
        monitoring=monitoring_conditions(resolved),
        measurement=MeasurementSummary(
            started_at=m.started_at,
            finished_at=m.finished_at,
            concurrency=m.concurrency,
            spent_usd=round(m.spent_usd, 6),
            requests=sum(len(mm.runs) for mm in m.models.values()) + sum(len(f.outcomes) for f in m.faults),
            primary_pass_rate=_pass_rate(m, spec.primary.name),
        ),
        runner=Runner(name="aigate", version=__version__),
        issued_at=issued_at,
        expires_at=expires_at,
    )


def _pass_rate(m: Measurements, name: str) -> float | None:
    mm = m.models.get(name)
    if mm is None or not mm.runs:
        return None
    return round(rate(sum(1 for r in mm.runs if r.passed), len(mm.runs)), 4)
