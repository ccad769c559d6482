"""One gate run end to end: measure, judge, build and sign the evidence, decide.

The CLI (`aigate check`), the demo and the operator's gate Job all come through here, so a workload is
judged the same way wherever it runs.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aigate.api.digest import acceptance_digest, spec_digest
from aigate.api.errors import UsageError
from aigate.api.load import ResolvedWorkload, load_and_resolve
from aigate.assessment import Assessment, EvidenceInfo, build_predicate, case_summaries, paths_of
from aigate.evidence.errors import EvidenceError, EvidenceInputError
from aigate.evidence.keys import key_id as key_id_of
from aigate.evidence.keys import load_private_key, load_public_key
from aigate.evidence.predicate import CanaryCondition, EvidencePredicate, ModelIdentityRecord, PolicyRecord
from aigate.evidence.statement import bound_predicate, build_statement, completeness_problems, sign_statement
from aigate.evidence.verify import verify_evidence
from aigate.gates import apply_acceptances, decide, judge_evidence, judge_measured
from aigate.gates.numbers import assumed_timeout_ms
from aigate.gates.result import GateResult
from aigate.gates.toolcontrol import ExtraCheck
from aigate.gates.toolcontrol_mcp import mcp_check
from aigate.gates.toolcontrol_rbac import rbac_check
from aigate.measurements import Measurements
from aigate.measuring import CheckOptions as CheckOptions  # the measuring half, importable without this module
from aigate.measuring import Progress as Progress
from aigate.measuring import _utcnow
from aigate.measuring import measure as measure
from aigate.policy.governance import EffectivePolicy, PlatformDefault, canary_interval, effective, hours
from aigate.times import parse_rfc3339


def tool_checks() -> list[ExtraCheck]:

    return [mcp_check, rbac_check]


def judge(
    resolved: ResolvedWorkload,
    m: Measurements,
    *,
    now: datetime,
    key_id: str | None,
    policy: EffectivePolicy | None = None,
) -> tuple[list[GateResult], EvidencePredicate, str]:
    """Pure: the six gate results, the evidence predicate they produce, and the spec digest. Under `policy`
    (the AIGatePolicies governing the workload and the platform default; without one, the built-in platform
    default) gates it marks unacceptable are never ACCEPTED, and the evidence expires no later than it allows."""
    policy = policy if policy is not None else effective((), {}, PlatformDefault())
    digest = spec_digest(resolved)
    spec = resolved.workload.spec
    acceptances = [a for a in spec.risk_acceptances if a.gate not in policy.unacceptable_gates]
    timeout = assumed_timeout_ms(spec)
    measured = judge_measured(resolved, m, assumed_timeout_ms=timeout, tool_checks=tool_checks())
    bound_to = acceptance_digest(resolved)
    measured = apply_acceptances(measured, acceptances, now, bound_to)
    draft = build_predicate(resolved, digest, measured, decide(measured), m, now, now + spec.evidence.valid_for_delta())
    judged = judge_evidence(completeness_problems(draft.to_json()), key_id)
    evidence = apply_acceptances([judged], acceptances, now, bound_to)
    results = [*measured, *evidence]
    expires = evidence_expiry(now, spec.evidence.valid_for_delta(), policy, results)
    predicate = build_predicate(resolved, digest, results, decide(results), m, now, expires)
    predicate.monitoring.append(canary_condition(resolved, predicate, policy))
    if policy.names:
        predicate.policy = PolicyRecord(
            names=list(policy.names),
            digest=policy.digest or "",
            enforcement=policy.enforcement,
            max_valid_for=hours(policy.max_valid_for) if policy.max_valid_for is not None else None,
        )
    return results, predicate, digest


def canary_condition(
    resolved: ResolvedWorkload, predicate: EvidencePredicate, policy: EffectivePolicy
) -> CanaryCondition:
    """What is watched after launch by the canary: the interval under the policy, the cases per path, the day's cap,
    and the identities a canary compares with (docs/gates.md, "After launch")."""
    spec = resolved.workload.spec
    every = canary_interval(resolved.workload, policy)
    identities = {
        r.path: sorted({a.model for a in r.answered if a.model})
        for r in predicate.model_identities
        if isinstance(r, ModelIdentityRecord)
    }
    return CanaryCondition(
        every="0" if every is None else hours(every),
        cases=spec.canary.cases,
        max_usd_per_day=spec.budget.canary_cap_usd,
        identities=identities,
    )


def evidence_expiry(
    now: datetime, valid_for: timedelta, policy: EffectivePolicy, results: list[GateResult]
) -> datetime:
    """Evidence never outlives what it rests on: the earliest of its validity, the policy's limit, and the expiry
    of each risk acceptance that turned a FAIL into ACCEPTED."""
    ends = [now + valid_for]
    if policy.max_valid_for is not None:
        ends.append(now + policy.max_valid_for)
    for r in results:
        expires = parse_rfc3339(str((r.acceptance or {}).get("expires") or "")) if r.status == "ACCEPTED" else None
        if expires is not None:
            ends.append(expires)
    return min(ends)


async def run_check(resolved: ResolvedWorkload, opts: CheckOptions) -> Assessment:

    key = load_private_key(opts.sign_key) if opts.sign_key else None
    kid = key_id_of(key.public_key()) if key is not None else None
    m = await measure(resolved, opts)
    now = opts.now()
    results, predicate, digest = judge(resolved, m, now=now, key_id=kid, policy=opts.policy)
    evidence = None
    if key is not None:
        out = opts.evidence_out or Path(f"{resolved.name}.evidence.json")
        envelope = sign_predicate(resolved, digest, predicate, key)
        write_evidence(out, envelope)
        evidence = EvidenceInfo(
            key_id=kid,
            issued_at=predicate.issued_at or now,
            expires_at=predicate.expires_at,
            path=str(out),
            digest=digest,
        )
    return Assessment(
        name=resolved.name,
        namespace=resolved.workload.metadata.namespace,
        owner=resolved.workload.spec.owner,
        spec_digest=digest,
        decision=decide(results),
        gates=results,
        paths=paths_of(resolved),
        cases=case_summaries(resolved, m),
        measurements=m,
        evidence=evidence,
        generated_at=now,
    )


def sign_predicate(resolved: ResolvedWorkload, digest: str, predicate: EvidencePredicate, key: Any) -> dict[str, Any]:
    doc = bound_predicate(predicate.to_json())
    statement = build_statement(resolved.workload.metadata.namespace, resolved.name, digest, doc)
    return sign_statement(statement, key)


def write_evidence(path: Path, envelope: dict[str, Any]) -> None:
    try:
        path.write_text(json.dumps(envelope, indent=2) + "\n", encoding="utf-8")
    except OSError as e:
        raise UsageError(f"--evidence-out {path}: cannot write: {e.strerror or e}") from None


def check_exit_code(a: Assessment) -> int:
    """2 when a measured gate could not be judged (the run failed, not the workload)."""
    if a.decision == "PASS":
        return 0
    measured_error = any(g.status == "ERROR" for g in a.gates if g.gate in ("cost", "reliability", "fallback"))
    return 2 if measured_error else 1


def verify_file(evidence: Path, key: Path, workload: Path | None, now: datetime | None = None) -> tuple[int, str]:
    """`aigate verify`: (exit code, the one line that says why)."""

    try:
        public = load_public_key(key)
        try:
            raw = evidence.read_bytes()
        except OSError as e:
            return 2, f"aigate: error: {evidence}: cannot read: {e.strerror or e}"
        expected = spec_digest(load_and_resolve(workload)) if workload else None
        verified = verify_evidence(raw, public, now=now or _utcnow(), expected_digest=expected, key_name=key.name)
    except EvidenceInputError as e:
        return 2, f"aigate: error: {e}"
    except EvidenceError as e:
        return 1, f"evidence rejected: {e}"
    return 0, f"evidence verified: {verified.summary()}"
