"""The machine-readable report: a stable, versioned schema for CI systems and dashboards."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from aigate.assessment import Assessment, CaseSummary, EvidenceInfo, PathInfo
from aigate.gates.reliability import load_text
from aigate.gates.result import GateResult
from aigate.times import rfc3339

REPORT_SCHEMA_VERSION = "aigate.dev/report/v1"


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class FaultModeSummary(_Doc):
    mode: str
    cases: int
    valid: int
    served_by: dict[str, int]
    max_latency_ms: float


class ReportDoc(_Doc):
    """Fields are added, never renamed or removed, within one schemaVersion."""

    schema_version: Literal["aigate.dev/report/v1"] = Field("aigate.dev/report/v1", alias="schemaVersion")
    workload: dict[str, str]
    spec_digest: str = Field(alias="specDigest")
    decision: Literal["PASS", "FAIL"]
    generated_at: str = Field(alias="generatedAt")
    runner_version: str = Field(alias="runnerVersion")
    paths: list[PathInfo]
    gates: list[GateResult]
    cases: list[CaseSummary]
    fault_modes: list[FaultModeSummary] = Field(alias="faultModes")
    spent_usd: float = Field(alias="spentUSD")
    concurrency: int
    load: str = ""
    """Which loop drove the requests: open loop with Poisson (or uniform) arrivals at a rate, at most N in flight."""
    evidence: EvidenceInfo | None = None


def report_doc(a: Assessment) -> ReportDoc:
    modes = [
        FaultModeSummary(
            mode=f.mode,
            cases=len(f.outcomes),
            valid=sum(1 for o in f.outcomes if o.valid),
            served_by={s: sum(1 for o in f.outcomes if o.served_by == s) for s in {o.served_by for o in f.outcomes}},
            max_latency_ms=round(max((o.latency_ms for o in f.outcomes), default=0.0), 1),
        )
        for f in a.measurements.faults
    ]
    return ReportDoc.model_validate(
        {
            "schemaVersion": REPORT_SCHEMA_VERSION,
            "workload": {"name": a.name, "namespace": a.namespace, "owner": a.owner},
            "specDigest": a.spec_digest,
            "decision": a.decision,
            "generatedAt": rfc3339(a.generated_at),
            "runnerVersion": a.runner_version,
            "paths": a.paths,
            "gates": a.gates,
            "cases": a.cases,
            "faultModes": modes,
            "spentUSD": round(a.measurements.spent_usd, 6),
            "concurrency": a.measurements.concurrency,
            "load": load_text(a.measurements),
            "evidence": a.evidence,
        }
    )


def report_json_schema() -> dict[str, Any]:
    return ReportDoc.model_json_schema(by_alias=True, mode="serialization")


def render_json(a: Assessment) -> str:
    doc = report_doc(a).model_dump(mode="json", by_alias=True)
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"
