"""DSSE envelopes (https://github.com/secure-systems-lab/dsse, protocol v1), the signing format in-toto
attestations and cosign use.

The signature covers PAE(payloadType, payload) = "DSSEv1" SP len(type) SP type SP len(body) SP body (lengths in
ASCII decimal, bytes), never the JSON of the envelope, so the envelope's own serialization does not matter.
ECDSA P-256 signs with SHA-256 and writes the ASN.1 DER signature, as cosign does; Ed25519 signs PAE directly.
`keyid` is an unauthenticated hint, but one that must not lie: verification tries the given key on every signature
that names no keyid or the key's own, and a signature naming another key's is not this key's (as sigstore-go skips
it), so an envelope whose keyid was rewritten is refused like one signed with another key.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from aigate.evidence.errors import (
    EvidenceBadSignature,
    EvidenceInputError,
    EvidenceMalformed,
    EvidenceUnsigned,
    EvidenceWrongKey,
)
from aigate.evidence.keys import PrivateKey, PublicKey, key_id

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """Pre-Authentication Encoding: what is actually signed."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


def sign_envelope(
    payload: bytes, payload_type: str, private_key: PrivateKey, *, keyid: str | None = None
) -> dict[str, Any]:
    """One-signature envelope; `keyid` defaults to the key's id (sha256 of its DER SubjectPublicKeyInfo)."""
    message = pae(payload_type, payload)
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        sig = private_key.sign(message)
    else:
        sig = private_key.sign(message, ec.ECDSA(hashes.SHA256()))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [
            {
                "keyid": key_id(private_key.public_key()) if keyid is None else keyid,
                "sig": base64.b64encode(sig).decode("ascii"),
            }
        ],
    }


def b64decode_any(value: str) -> bytes:
    """Standard or URL-safe base64, padded or not (the DSSE spec asks verifiers to accept both)."""
    s = value.strip().translate(str.maketrans("-_", "+/"))
    s += "=" * (-len(s) % 4)
    return base64.b64decode(s, validate=True)


def verify_signature(public_key: PublicKey, sig: bytes, message: bytes) -> bool:
    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(sig, message)
        else:
            public_key.verify(sig, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def verify_envelope(
    envelope: Mapping[str, Any],
    public_key: PublicKey,
    *,
    payload_type: str | None = IN_TOTO_PAYLOAD_TYPE,
    key_name: str | None = None,
) -> bytes:
    """The payload bytes, once one signature verifies with `public_key` over PAE(payloadType, payload).

    `payload_type=None` accepts any type. `key_name` (e.g. the public key's file name) only improves messages.
    A malformed envelope raises `EvidenceInputError`; one that does not verify, `EvidenceVerificationError`.
    """
    if not isinstance(envelope, Mapping):
        raise EvidenceInputError(f"not a DSSE envelope: expected a JSON object, got {type(envelope).__name__}")
    ptype, payload_b64, signatures = envelope.get("payloadType"), envelope.get("payload"), envelope.get("signatures")
    if not isinstance(ptype, str) or not isinstance(payload_b64, str):
        raise EvidenceInputError("not a DSSE envelope: payloadType and payload must be strings")
    if payload_type is not None and ptype != payload_type:
        raise EvidenceMalformed(f"envelope payloadType is {ptype!r}, expected {payload_type!r}")
    try:
        payload = b64decode_any(payload_b64)
    except (binascii.Error, ValueError):
        raise EvidenceInputError("envelope payload is not valid base64") from None
    if not isinstance(signatures, list) or not signatures:
        raise EvidenceUnsigned("envelope has no signature (the evidence is unsigned)")
    kid = key_id(public_key)
    message = pae(ptype, payload)
    other_ids: list[str] = []
    for i, entry in enumerate(signatures):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("sig"), str):
            raise EvidenceInputError(f"envelope signature {i} is not an object with a string 'sig'")
        try:
            sig = b64decode_any(entry["sig"])
        except (binascii.Error, ValueError):
            raise EvidenceInputError(f"envelope signature {i} is not valid base64") from None
        sid = entry.get("keyid")
        if sid not in (None, "", kid):
            other_ids.append("".join(c if c.isprintable() else "?" for c in str(sid)[:64]))  # quoted in one line
            continue
        if verify_signature(public_key, sig, message):
            return payload
    who = f"key {key_name}" if key_name else "the given public key"
    reason = f"signature does not verify with {who} (keyid {kid[:16]}…)"
    if other_ids:
        reason += f"; the envelope names keyid {other_ids[0][:16]}… (signed with another key?)"
        raise EvidenceWrongKey(reason)
    raise EvidenceBadSignature(reason)


SIGSTORE_BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def to_sigstore_bundle(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """The envelope as a Sigstore bundle v0.3 for `cosign verify-blob-attestation --bundle ... --key ...`.

    cosign v3 deprecates verifying a bare envelope (`--signature`) in favour of bundles. The key id moves to
    `verificationMaterial.publicKey.hint` and the signature's `keyid` is dropped: sigstore-go skips a signature
    whose keyid is set and differs from the key's SSH-style fingerprint. No transparency-log entry: verify with
    `--insecure-ignore-tlog` (the key, not a public log, is the trust root here).
    """
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or len(signatures) != 1 or not isinstance(signatures[0], Mapping):
        raise EvidenceInputError("a Sigstore bundle carries exactly one signature")
    sig = signatures[0]
    return {
        "mediaType": SIGSTORE_BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": str(sig.get("keyid") or "")}},
        "dsseEnvelope": {
            "payload": envelope["payload"],
            "payloadType": envelope["payloadType"],
            "signatures": [{"sig": sig["sig"]}],
        },
    }


def from_sigstore_bundle(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """The DSSE envelope inside a Sigstore bundle; any other document is returned as it is."""
    media_type = doc.get("mediaType")
    if isinstance(media_type, str) and media_type.startswith("application/vnd.dev.sigstore.bundle"):
        env = doc.get("dsseEnvelope")
        if not isinstance(env, Mapping):
            raise EvidenceInputError("Sigstore bundle holds no DSSE envelope (dsseEnvelope)")
        return env
    return doc
