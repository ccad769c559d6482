"""Signed evidence read back for a report: verified when a public key is given, else decoded and marked unverified.

A report of evidence is worth having after the evidence expired or when it records a FAIL, so verification here
checks what makes the content trustworthy (signature, statement shape, subject, and the spec digest when a workload
is given) and leaves expiry and the decision to be shown, not refused.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aigate.evidence.dsse import b64decode_any
from aigate.evidence.errors import EvidenceInputError, EvidenceMalformed
from aigate.evidence.keys import PublicKey
from aigate.evidence.predicate import EvidencePredicate, parse_predicate
from aigate.evidence.statement import PREDICATE_TYPE, SUBJECT_PREFIX
from aigate.evidence.verify import parse_envelope, verify_evidence

_BEFORE_ANY_EXPIRY = datetime(1970, 1, 2, tzinfo=UTC)


@dataclass(frozen=True)
class EvidenceForReport:
    predicate: EvidencePredicate
    subject: str
    """<namespace>/<name> as the statement's subject names it."""
    spec_digest: str
    key_id: str | None
    """The key that verified it, else the key id the envelope claims (unchecked)."""
    verified: bool
    verification: str
    """One sentence for the page: verified with which key, or why not."""


def read_evidence(
    raw: bytes | str | Mapping[str, Any],
    public_key: PublicKey | None,
    *,
    key_name: str | None = None,
    expected_digest: str | None = None,
) -> EvidenceForReport:
    """Raises `EvidenceInputError` for unreadable input and, when a key is given, the verifier's
    `EvidenceVerificationError` subclass for evidence that does not hold."""
    if public_key is not None:
        v = verify_evidence(
            raw,
            public_key,
            now=_BEFORE_ANY_EXPIRY,
            expected_digest=expected_digest,
            key_name=key_name,
            require_pass=False,
        )
        against = " and the workload's current spec digest" if expected_digest else ""
        return EvidenceForReport(
            predicate=v.signed,
            subject=v.subject_name.removeprefix(SUBJECT_PREFIX),
            spec_digest=v.spec_digest,
            key_id=v.key_id,
            verified=True,
            verification=f"Signature verified with key {v.key_id[:16]} ({key_name or 'public key'}){against}.",
        )
    envelope = parse_envelope(raw)
    statement = _unverified_statement(envelope)
    subject = (statement.get("subject") or [{}])[0]
    digest = subject.get("digest", {}).get("sha256", "") if isinstance(subject, dict) else ""
    sigs = envelope.get("signatures") or []
    claimed = sigs[0].get("keyid") if sigs and isinstance(sigs[0], dict) else None
    try:
        predicate = parse_predicate(statement.get("predicate"))
    except ValueError as e:
        raise EvidenceMalformed(f"evidence {e}") from None
    return EvidenceForReport(
        predicate=predicate,
        subject=str(subject.get("name", "")).removeprefix(SUBJECT_PREFIX) if isinstance(subject, dict) else "",
        spec_digest=f"sha256:{digest}" if digest else (predicate.spec_digest or ""),
        key_id=str(claimed) if claimed else None,
        verified=False,
        verification="Not verified: no public key was given, so nothing on this page is vouched for by a signature.",
    )


def _unverified_statement(envelope: Mapping[str, Any]) -> dict[str, Any]:
    payload = envelope.get("payload")
    if not isinstance(payload, str):
        raise EvidenceInputError("evidence is not a DSSE envelope (no payload)")
    try:
        statement = json.loads(b64decode_any(payload))
    except (binascii.Error, ValueError):
        raise EvidenceInputError("evidence payload is not base64-encoded JSON") from None
    if not isinstance(statement, dict) or statement.get("predicateType") != PREDICATE_TYPE:
        raise EvidenceMalformed(f"evidence is not an aigate statement (predicateType {PREDICATE_TYPE})")
    return statement
