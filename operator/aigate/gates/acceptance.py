"""Risk acceptances: a FAIL a named person has accepted until a date. One function judges expiry for the
CLI, the operator and the admission webhook alike."""

from __future__ import annotations

from datetime import datetime

from aigate.api.models import RiskAcceptance
from aigate.gates.result import Finding, GateResult
from aigate.times import rfc3339


def is_active(acceptance: RiskAcceptance, now: datetime) -> bool:
    return acceptance.expires > now


def apply_acceptances(
    results: list[GateResult], acceptances: list[RiskAcceptance], now: datetime, spec: str | None = None
) -> list[GateResult]:
    """Turn a FAIL into ACCEPTED while an acceptance for that gate is unexpired; an ERROR is never accepted,
    since nobody can accept what was not measured. `spec`: the acceptance digest of the spec judged; an
    acceptance recorded for another spec (its specDigest) no longer applies, until an acceptor renews it."""
    out = []
    for r in results:
        mine = [a for a in acceptances if a.gate == r.gate]
        other_spec = [a for a in mine if spec is not None and a.spec_digest is not None and a.spec_digest != spec]
        mine = [a for a in mine if a not in other_spec]
        active = [a for a in mine if is_active(a, now)]
        expired = [a for a in mine if not is_active(a, now)]
        extra = [
            Finding(
                severity="warn",
                code="acceptance.expired",
                subject=r.gate,
                message=f"risk acceptance for {r.gate} expired at {rfc3339(a.expires)} "
                f"({a.reason}; accepted by {a.accepted_by or 'unknown'}): it counts for nothing",
            )
            for a in expired
        ]
        extra += [
            Finding(
                severity="warn",
                code="acceptance.otherSpec",
                subject=r.gate,
                message=f"risk acceptance for {r.gate} by {a.accepted_by or 'unknown'} was given for another spec "
                f"({a.spec_digest}): it no longer applies until an acceptor renews it",
            )
            for a in other_spec
        ]
        if r.status == "FAIL" and active:
            a = max(active, key=lambda x: x.expires)
            info = {
                "reason": a.reason,
                "acceptedBy": a.accepted_by,
                "expires": rfc3339(a.expires),
            }
            out.append(
                r.model_copy(
                    update={
                        "status": "ACCEPTED",
                        "reason": f"{r.reason} (risk accepted by {a.accepted_by or 'unknown'} until "
                        f"{a.expires.date().isoformat()}: {a.reason})",
                        "acceptance": info,
                        "findings": r.findings + extra,
                    }
                )
            )
        elif r.status == "FAIL" and other_spec:
            reason = f"{r.reason} (risk acceptance given for another spec: renew it)"
            out.append(r.model_copy(update={"reason": reason, "findings": r.findings + extra}))
        else:
            out.append(r.model_copy(update={"findings": r.findings + extra}) if extra else r)
    return out
