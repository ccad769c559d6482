"""Evidence: the in-toto statement, DSSE signing with ECDSA P-256 or Ed25519, and offline verification that
`aigate verify`, the admission webhook and cosign all agree on."""

from aigate.evidence.dsse import IN_TOTO_PAYLOAD_TYPE, sign_envelope, to_sigstore_bundle, verify_envelope
from aigate.evidence.errors import (
    EvidenceBadSignature,
    EvidenceError,
    EvidenceExpired,
    EvidenceInputError,
    EvidenceMalformed,
    EvidenceNotPassed,
    EvidenceStale,
    EvidenceUnsigned,
    EvidenceVerificationError,
    EvidenceWrongKey,
)
from aigate.evidence.keys import (
    KeyKind,
    PrivateKey,
    PublicKey,
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
    write_keypair,
)
from aigate.evidence.predicate import EvidencePredicate, parse_predicate
from aigate.evidence.statement import (
    MAX_ENVELOPE_BYTES,
    PREDICATE_REQUIRED_KEYS,
    PREDICATE_TYPE,
    bound_predicate,
    build_statement,
    completeness_problems,
    envelope_bytes,
    sign_statement,
)
from aigate.evidence.verify import VerifiedEvidence, verify_evidence

__all__ = [
    "IN_TOTO_PAYLOAD_TYPE",
    "MAX_ENVELOPE_BYTES",
    "PREDICATE_REQUIRED_KEYS",
    "PREDICATE_TYPE",
    "EvidenceBadSignature",
    "EvidenceError",
    "EvidenceExpired",
    "EvidenceInputError",
    "EvidenceMalformed",
    "EvidenceNotPassed",
    "EvidencePredicate",
    "EvidenceStale",
    "EvidenceUnsigned",
    "EvidenceVerificationError",
    "EvidenceWrongKey",
    "KeyKind",
    "PrivateKey",
    "PublicKey",
    "VerifiedEvidence",
    "bound_predicate",
    "build_statement",
    "completeness_problems",
    "envelope_bytes",
    "generate_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "parse_predicate",
    "sign_envelope",
    "sign_statement",
    "to_sigstore_bundle",
    "verify_envelope",
    "verify_evidence",
    "write_keypair",
]
