"""Verify a signed evidence package, offline, the way `aigate verify` and the admission webhook do.

One reason per failure, checked in this order: envelope readable, payloadType, signature, statement shape,
predicateType, subject digest (evidence for another spec is stale whatever else it says), expiry, decision.
Unreadable input raises `EvidenceInputError` (exit 2), evidence that does not hold a subclass of
`EvidenceVerificationError` (exit 1) that names which check failed: `EvidenceBadSignature` (`EvidenceWrongKey`
when the envelope names another key), `EvidenceUnsigned`, `EvidenceMalformed`, `EvidenceStale`,
`EvidenceExpired`, `EvidenceNotPassed`. Callers tell them apart by class, never by message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aigate.evidence.dsse import IN_TOTO_PAYLOAD_TYPE, from_sigstore_bundle, verify_envelope
from aigate.evidence.errors import (
    EvidenceError,
    EvidenceExpired,
    EvidenceInputError,
    EvidenceMalformed,
    EvidenceNotPassed,
    EvidenceStale,
)
from aigate.evidence.keys import PublicKey, key_id
from aigate.evidence.predicate import EvidencePredicate, parse_predicate
from aigate.evidence.statement import (
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    SUBJECT_PREFIX,
    normalize_digest,
    parse_time,
)
from aigate.times import rfc3339

# Larger input is refused before parsing: aigate never signs more, and a webhook must not parse anything sent.
MAX_INPUT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class VerifiedEvidence:
    """A statement whose signature, type, subject, expiry and decision all checked out."""

    statement: dict[str, Any]
    predicate: dict[str, Any]
    """The predicate as signed (long strings summarised, as `bound_predicate` left them)."""
    signed: EvidencePredicate
    """The same, typed: what decisions read."""
    subject_name: str
    """aiworkload/<namespace>/<name>"""
    spec_digest: str
    """sha256:<hex>"""
    key_id: str
    issued_at: datetime | None
    expires_at: datetime
    decision: str

    def summary(self) -> str:
        """One line for `aigate verify`."""
        workload = self.subject_name.removeprefix(SUBJECT_PREFIX)
        return (
            f"{workload} decision {self.decision}, spec digest {self.spec_digest[:19]}…, key {self.key_id[:16]}, "
            f"expires {rfc3339(self.expires_at)}"
        )


def parse_envelope(envelope_json: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    """The DSSE envelope from JSON bytes, a str, a dict, or a Sigstore bundle holding one."""
    if isinstance(envelope_json, Mapping):
        return from_sigstore_bundle(envelope_json)
    data = envelope_json.encode("utf-8") if isinstance(envelope_json, str) else envelope_json
    if len(data) > MAX_INPUT_BYTES:
        raise EvidenceInputError(f"evidence is {len(data)} bytes, above the {MAX_INPUT_BYTES}-byte limit")
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EvidenceInputError(f"evidence is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise EvidenceInputError("evidence is not a DSSE envelope (a JSON object)")
    return from_sigstore_bundle(doc)


def verify_evidence(
    envelope_json: bytes | str | Mapping[str, Any],
    public_key: PublicKey,
    *,
    now: datetime,
    expected_digest: str | None = None,
    key_name: str | None = None,
    require_pass: bool = True,
) -> VerifiedEvidence:
    """Check everything a rollout relies on; `expected_digest` ('sha256:<hex>') is the workload's current spec
    digest when known. `now` must carry a time zone. `key_name` (e.g. 'aigate.pub') only improves messages.
    `require_pass=False` accepts signed evidence of a FAIL: the operator keeps it as the answer for that spec."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    envelope = parse_envelope(envelope_json)
    payload = verify_envelope(envelope, public_key, payload_type=IN_TOTO_PAYLOAD_TYPE, key_name=key_name)
    try:
        statement = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise EvidenceMalformed("signed payload is not JSON (not an in-toto statement)") from None
    if not isinstance(statement, dict):
        raise EvidenceMalformed("signed payload is not an in-toto statement (a JSON object)")
    if statement.get("_type") != STATEMENT_TYPE:
        raise EvidenceMalformed(f"statement _type is {statement.get('_type')!r}, expected {STATEMENT_TYPE!r}")
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise EvidenceMalformed(
            f"predicateType is {statement.get('predicateType')!r}, expected {PREDICATE_TYPE!r} (not aigate evidence)"
        )
    subjects = statement.get("subject")
    subject = subjects[0] if isinstance(subjects, list) and subjects else None
    if not isinstance(subject, dict) or not isinstance(subject.get("digest"), dict):
        raise EvidenceMalformed("statement has no subject with a digest")
    name = subject.get("name")
    if not isinstance(name, str) or not name.startswith(SUBJECT_PREFIX):
        raise EvidenceMalformed(f"statement subject {name!r} is not an AI workload ({SUBJECT_PREFIX}…)")
    try:
        digest = "sha256:" + normalize_digest(str(subject["digest"].get("sha256", "")))
    except EvidenceError:
        raise EvidenceMalformed("statement subject has no sha256 digest") from None
    predicate = statement.get("predicate")
    if not isinstance(predicate, dict):
        raise EvidenceMalformed("statement has no predicate")
    if expected_digest is not None:
        want = "sha256:" + normalize_digest(expected_digest)
        if digest != want:
            raise EvidenceStale(
                f"evidence is for spec digest {digest[:19]}… but the workload's is {want[:19]}… "
                "(spec changed after signing)",
                signed_digest=digest,
                current_digest=want,
            )
    pd = predicate.get("specDigest")
    if pd is not None and str(pd) != digest:
        raise EvidenceMalformed(f"predicate specDigest {str(pd)[:19]}… differs from the subject's {digest[:19]}…")
    try:
        expires_at = parse_time(predicate.get("expiresAt"), "expiresAt")
    except EvidenceError as e:
        raise EvidenceMalformed(f"evidence has no valid expiry: {e}") from None
    if expires_at <= now:
        raise EvidenceExpired(f"evidence expired at {rfc3339(expires_at)} (now {rfc3339(now)})", expires_at=expires_at)
    decision = predicate.get("decision")
    if require_pass and decision != "PASS":
        raise EvidenceNotPassed(f"decision is {decision}" if isinstance(decision, str) else "no decision")
    try:
        issued_at: datetime | None = parse_time(predicate.get("issuedAt"), "issuedAt")
    except EvidenceError:
        issued_at = None
    try:
        signed = parse_predicate({**predicate, "issuedAt": issued_at and rfc3339(issued_at)})
    except ValueError as e:
        raise EvidenceMalformed(f"evidence {e}") from None
    return VerifiedEvidence(
        statement=statement,
        predicate=predicate,
        signed=signed,
        subject_name=name,
        spec_digest=digest,
        key_id=key_id(public_key),
        issued_at=issued_at,
        expires_at=expires_at,
        decision=str(decision),
    )
