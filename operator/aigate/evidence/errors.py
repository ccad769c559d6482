"""Evidence errors. Two kinds, because a caller must tell them apart: input that could not be read (a missing
file, a key in the wrong format: `aigate verify` exits 2) and evidence that was read and does not hold (a bad
signature, an expired package: exit 1, the admission webhook denies)."""

from __future__ import annotations


class EvidenceError(Exception):
    """Any evidence problem. `str(err)` is one line a person reads; it never contains key material."""

    exit_code = 2


class EvidenceInputError(EvidenceError):
    """The input could not be read: unreadable file, not PEM, wrong key type, encrypted key, not a DSSE envelope."""

    exit_code = 2


class EvidenceVerificationError(EvidenceError):
    """The evidence was read and does not hold: signature, payload type, subject digest, expiry or decision."""

    exit_code = 1
