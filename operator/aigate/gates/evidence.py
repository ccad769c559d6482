"""Evidence gate: the package must be complete and signed, or nobody can rely on it later."""

from __future__ import annotations

from aigate.gates.result import Finding, GateResult


def judge_evidence(problems: list[str], key_id: str | None) -> GateResult:
    """`problems`: what the package lacks; `key_id`: the key it will be signed with, None when unsigned."""
    missing = list(problems)
    if key_id is None:
        missing.append("unsigned")
    if missing:
        return GateResult(
            gate="evidence",
            status="FAIL",
            reason=f"Evidence package: incomplete ({', '.join(missing)})",
            findings=[Finding(severity="fail", code="evidence.incomplete", message=f"evidence: {p}") for p in missing],
        )
    assert key_id is not None
    return GateResult(
        gate="evidence",
        status="PASS",
        reason=f"Evidence package: complete, signed (key {key_id[:16]})",
        metrics={"keyId": key_id},
    )
