"""Evidence errors. Two kinds, because a caller must tell them apart: input that could not be read (a missing
file, a key in the wrong format: `aigate verify` exits 2) and evidence that was read and does not hold (a bad
signature, an expired package: exit 1, the admission webhook denies)."""

from __future__ import annotations

from datetime import datetime


class EvidenceError(Exception):
    """Any evidence problem. `str(err)` is one line a person reads; it never contains key material."""

    exit_code = 2


class EvidenceInputError(EvidenceError):
    """The input could not be read: unreadable file, not PEM, wrong key type, encrypted key, not a DSSE envelope."""

    exit_code = 2


class EvidenceVerificationError(EvidenceError):
    """The evidence was read and does not hold: signature, payload type, subject digest, expiry or decision."""

    exit_code = 1


class EvidenceMalformed(EvidenceVerificationError):
    """Signed, but not aigate evidence: payload type, statement shape, predicate type, subject, predicate fields."""


class EvidenceUnsigned(EvidenceVerificationError):
    """The envelope carries no signature."""


class EvidenceBadSignature(EvidenceVerificationError):
    """No signature verifies with the given key."""


class EvidenceWrongKey(EvidenceBadSignature):
    """No signature verifies, and the envelope names another key's id: signed, but by someone else."""


class EvidenceStale(EvidenceVerificationError):
    """Signed for another spec digest: the spec (or something it references) changed after signing."""

    def __init__(self, message: str, *, signed_digest: str, current_digest: str) -> None:
        super().__init__(message)
        self.signed_digest = signed_digest
        self.current_digest = current_digest


class EvidenceExpired(EvidenceVerificationError):
    """Past its expiresAt."""

    def __init__(self, message: str, *, expires_at: datetime) -> None:
        super().__init__(message)
        self.expires_at = expires_at


class EvidenceNotPassed(EvidenceVerificationError):
    """Valid evidence of a FAIL decision, where a PASS is required."""
