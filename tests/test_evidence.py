"""Evidence: keys, DSSE signing, the statement and its size bound, and verification's one-line reasons."""

from __future__ import annotations

import base64
import copy
import json
import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from aigate.evidence import (
    MAX_ENVELOPE_BYTES,
    PREDICATE_REQUIRED_KEYS,
    PREDICATE_TYPE,
    EvidenceError,
    EvidenceInputError,
    EvidenceVerificationError,
    KeyKind,
    bound_predicate,
    build_statement,
    completeness_problems,
    envelope_bytes,
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
    sign_envelope,
    sign_statement,
    to_sigstore_bundle,
    verify_envelope,
    verify_evidence,
    write_keypair,
)
from aigate.evidence.dsse import IN_TOTO_PAYLOAD_TYPE, pae
from aigate.evidence.keys import private_key_from_pem, public_key_from_pem
from aigate.evidence.statement import max_predicate_bytes, statement_bytes

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
DIGEST = "ab" * 32
OTHER_DIGEST = "cd" * 32
KINDS: list[KeyKind] = ["ecdsa-p256", "ed25519"]


def predicate(**over: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "workload": {"namespace": "fraud", "name": "fraud-review-assistant"},
        "owner": "fraud-platform-team",
        "specDigest": f"sha256:{DIGEST}",
        "decision": "PASS",
        "gates": [
            {"gate": g, "status": "PASS", "reason": "ok", "findings": [], "metrics": {}, "acceptance": None}
            for g in ("cost", "reliability", "fallback", "toolControl", "providerDependency")
        ],
        "cases": [{"case": "summarize-case", "model": "primary", "runs": 3, "passed": 3, "failures": []}],
        "modelIdentities": [{"path": "primary", "provider": "anthropic", "requested": "claude-sonnet-4-5"}],
        "faultModes": {"tried": ["timeout", "http_5xx"], "required": ["timeout", "http_5xx"]},
        "riskAcceptances": [],
        "monitoring": [{"metric": "p95LatencyMs", "threshold": 4000, "comparison": "<="}],
        "runner": {"name": "aigate", "version": "0.1.0"},
        "issuedAt": NOW.isoformat(),
        "expiresAt": (NOW + timedelta(days=30)).isoformat(),
    }
    p.update(over)
    return p


def keypair(kind: KeyKind = "ecdsa-p256") -> tuple[Any, Any]:
    priv_pem, pub_pem = generate_key(kind)
    return private_key_from_pem(priv_pem), public_key_from_pem(pub_pem)


def signed(priv: Any, digest: str = DIGEST, **over: Any) -> dict[str, Any]:
    return sign_statement(build_statement("fraud", "fraud-review-assistant", digest, predicate(**over)), priv)


# keys


@pytest.mark.parametrize("kind", KINDS)
def test_keypair_files(tmp_path: Path, kind: KeyKind) -> None:
    priv_path, pub_path = write_keypair(tmp_path / "keys", kind)
    assert (priv_path.name, pub_path.name) == ("aigate.key", "aigate.pub")
    assert stat.S_IMODE(priv_path.stat().st_mode) == 0o600
    assert pub_path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert priv_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    priv, pub = load_private_key(priv_path), load_public_key(pub_path)
    assert key_id(priv.public_key()) == key_id(pub)
    assert len(key_id(pub)) == 64
    assert not list(tmp_path.glob("keys/.*")), "no temp files left behind"


def test_keypair_mode_0600_whatever_the_umask(tmp_path: Path) -> None:
    import os

    old = os.umask(0)
    try:
        priv_path, _ = write_keypair(tmp_path, "ecdsa-p256")
    finally:
        os.umask(old)
    assert stat.S_IMODE(priv_path.stat().st_mode) == 0o600


def test_keypair_refuses_to_overwrite(tmp_path: Path) -> None:
    priv_path, _ = write_keypair(tmp_path)
    before = priv_path.read_bytes()
    with pytest.raises(EvidenceInputError, match="refusing to overwrite"):
        write_keypair(tmp_path)
    assert priv_path.read_bytes() == before
    write_keypair(tmp_path, overwrite=True)
    assert priv_path.read_bytes() != before
    assert stat.S_IMODE(priv_path.stat().st_mode) == 0o600


def test_key_id_is_sha256_of_spki_der() -> None:
    import hashlib

    _, pub = keypair()
    der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key_id(pub) == hashlib.sha256(der).hexdigest()


def _secret_lines(pem: bytes) -> list[str]:
    return [ln for ln in pem.decode().splitlines() if ln and not ln.startswith("-----")]


def _assert_no_secret(err: BaseException, pem: bytes) -> None:
    text = f"{err} {err!r} {err.__cause__!r} {err.__context__!r}"
    for line in _secret_lines(pem):
        assert line not in text
        assert line[:16] not in text


def test_key_loading_errors_are_clear_and_never_leak_the_private_key(tmp_path: Path) -> None:
    priv_pem, pub_pem = generate_key("ecdsa-p256")
    (tmp_path / "aigate.key").write_bytes(priv_pem)
    (tmp_path / "aigate.pub").write_bytes(pub_pem)

    cases: list[tuple[Any, Path, str]] = []
    # a private key where the public key belongs
    cases.append((load_public_key, tmp_path / "aigate.key", "holds a PRIVATE key"))
    # a public key where the private key belongs
    cases.append((load_private_key, tmp_path / "aigate.pub", "not a private key"))
    # a missing file
    cases.append((load_private_key, tmp_path / "nope.key", "cannot read private key"))
    # an encrypted key
    enc = private_key_from_pem(priv_pem).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"hunter2"),
    )
    (tmp_path / "enc.key").write_bytes(enc)
    cases.append((load_private_key, tmp_path / "enc.key", "is encrypted"))
    # a corrupted private key (PEM armour around damaged base64)
    lines = priv_pem.decode().splitlines()
    lines[2] = lines[2][::-1]
    (tmp_path / "bad.key").write_text("\n".join(lines) + "\n")
    cases.append((load_private_key, tmp_path / "bad.key", "not a PEM private key aigate can read"))
    # the wrong key type
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "rsa.key").write_bytes(rsa_pem)
    cases.append((load_private_key, tmp_path / "rsa.key", "is an RSA key; aigate signs with ECDSA P-256 or Ed25519"))
    p384 = ec.generate_private_key(ec.SECP384R1())
    (tmp_path / "p384.pub").write_bytes(
        p384.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    cases.append((load_public_key, tmp_path / "p384.pub", "is an ECDSA secp384r1 key"))
    (tmp_path / "garbage.pub").write_text("hello\n")
    cases.append((load_public_key, tmp_path / "garbage.pub", "not a PEM public key"))

    for loader, path, message in cases:
        with pytest.raises(EvidenceInputError) as info:
            loader(path)
        assert message in str(info.value), (path.name, str(info.value))
        assert str(path) in str(info.value)
        for secret in (priv_pem, rsa_pem, enc):
            _assert_no_secret(info.value, secret)


def test_unknown_key_kind() -> None:
    with pytest.raises(EvidenceInputError, match="unknown key type"):
        generate_key("rsa")  # type: ignore[arg-type]


# DSSE


def test_pae_matches_the_spec() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


@pytest.mark.parametrize("kind", KINDS)
def test_envelope_round_trip(kind: KeyKind) -> None:
    priv, pub = keypair(kind)
    env = sign_envelope(b'{"a":1}', IN_TOTO_PAYLOAD_TYPE, priv)
    assert set(env) == {"payloadType", "payload", "signatures"}
    assert env["signatures"][0]["keyid"] == key_id(pub)
    assert verify_envelope(env, pub) == b'{"a":1}'
    # URL-safe, unpadded base64 is accepted too (the DSSE spec asks verifiers to)
    env2 = dict(env, payload=base64.urlsafe_b64encode(b'{"a":1}').decode().rstrip("="))
    assert verify_envelope(env2, pub) == b'{"a":1}'


def test_ecdsa_signature_is_der() -> None:
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    priv, _ = keypair("ecdsa-p256")
    sig = base64.b64decode(sign_envelope(b"x", "t", priv)["signatures"][0]["sig"])
    r, s = decode_dss_signature(sig)
    assert r > 0 and s > 0


def test_envelope_errors() -> None:
    priv, pub = keypair()
    env = sign_envelope(b"payload", IN_TOTO_PAYLOAD_TYPE, priv)
    with pytest.raises(EvidenceInputError, match="payload is not valid base64"):
        verify_envelope(dict(env, payload="%%%not base64"), pub)
    with pytest.raises(EvidenceVerificationError, match="payloadType is 'text/plain'"):
        verify_envelope(dict(env, payloadType="text/plain"), pub)
    with pytest.raises(EvidenceVerificationError, match="no signature"):
        verify_envelope(dict(env, signatures=[]), pub)
    with pytest.raises(EvidenceInputError, match="signature 0 is not valid base64"):
        verify_envelope(dict(env, signatures=[{"keyid": "", "sig": "!!"}]), pub)
    with pytest.raises(EvidenceInputError, match="not a DSSE envelope"):
        verify_envelope({"payload": 3}, pub)
    # payloadType is signed: changing it (and accepting any type) still fails the signature
    with pytest.raises(EvidenceVerificationError, match="signature does not verify"):
        verify_envelope(dict(env, payloadType="text/plain"), pub, payload_type=None)


# statement and completeness


def test_statement_shape() -> None:
    st = build_statement("fraud", "fraud-review-assistant", f"sha256:{DIGEST}", predicate())
    assert st["_type"] == "https://in-toto.io/Statement/v1"
    assert st["predicateType"] == PREDICATE_TYPE == "https://aigate.dev/evidence/v1"
    assert st["subject"] == [{"name": "aiworkload/fraud/fraud-review-assistant", "digest": {"sha256": DIGEST}}]
    assert build_statement("fraud", "fraud-review-assistant", DIGEST, predicate()) == st
    with pytest.raises(EvidenceError, match="not a sha256 digest"):
        build_statement("fraud", "x", "sha256:abc", predicate())


def test_complete_predicate_has_no_problems() -> None:
    assert completeness_problems(predicate()) == []
    assert set(PREDICATE_REQUIRED_KEYS) <= set(predicate())


def test_completeness_problems() -> None:
    p = predicate()
    del p["monitoring"]
    assert completeness_problems(p) == ["missing monitoring"]
    assert completeness_problems(predicate(gates=[])) == ["no gate results"]
    assert completeness_problems(predicate(gates=predicate()["gates"][:3])) == [
        "gates did not run: toolControl, providerDependency"
    ]
    assert completeness_problems(predicate(expiresAt=None)) == ["no expiry"]
    assert completeness_problems(predicate(expiresAt=(NOW - timedelta(hours=1)).isoformat())) == [
        "expires before it is issued"
    ]
    assert completeness_problems(predicate(owner="")) == ["no owner"]
    assert completeness_problems(predicate(cases=[])) == ["no case results"]
    assert completeness_problems(predicate(monitoring=[])) == ["no monitoring conditions"]
    assert completeness_problems(predicate(faultModes={"tried": ["timeout"], "required": ["timeout", "http_429"]})) == [
        "fault modes not tried: http_429"
    ]
    assert completeness_problems(
        predicate(riskAcceptances=[{"gate": "cost", "reason": "r", "acceptedBy": None, "expires": "2027-01-01"}])
    ) == ["risk acceptance for cost has no identity (acceptedBy)"]
    assert completeness_problems(predicate(specDigest="sha256:nope")) == ["no valid spec digest"]
    assert len(completeness_problems({})) == len(PREDICATE_REQUIRED_KEYS)


# verification


@pytest.mark.parametrize("kind", KINDS)
def test_sign_verify_round_trip(kind: KeyKind) -> None:
    priv, pub = keypair(kind)
    env = signed(priv)
    raw = envelope_bytes(env)
    v = verify_evidence(raw, pub, now=NOW, expected_digest=f"sha256:{DIGEST}", key_name="aigate.pub")
    assert v.spec_digest == f"sha256:{DIGEST}"
    assert v.subject_name == "aiworkload/fraud/fraud-review-assistant"
    assert v.decision == "PASS"
    assert v.key_id == key_id(pub)
    assert v.expires_at == NOW + timedelta(days=30)
    assert v.predicate["owner"] == "fraud-platform-team"
    assert "fraud/fraud-review-assistant decision PASS" in v.summary()
    # a dict, a str and pretty-printed JSON verify the same: the signature covers the payload, not the layout
    assert verify_evidence(env, pub, now=NOW) == v
    assert verify_evidence(json.dumps(env, indent=2), pub, now=NOW) == v


def _flip_payload_byte(env: dict[str, Any]) -> dict[str, Any]:
    payload = bytearray(base64.b64decode(env["payload"]))
    i = payload.index(b"fraud-platform-team")
    payload[i] ^= 0x01  # 'f' -> 'g': still valid JSON, one byte different
    return dict(env, payload=base64.b64encode(bytes(payload)).decode())


@pytest.mark.parametrize("kind", KINDS)
def test_tampered_payload_fails_signature(kind: KeyKind) -> None:
    priv, pub = keypair(kind)
    with pytest.raises(EvidenceVerificationError, match=r"signature does not verify with key aigate.pub \(keyid"):
        verify_evidence(_flip_payload_byte(signed(priv)), pub, now=NOW, key_name="aigate.pub")


def test_spec_changed_after_signing() -> None:
    priv, pub = keypair()
    with pytest.raises(EvidenceVerificationError) as info:
        verify_evidence(signed(priv), pub, now=NOW, expected_digest=f"sha256:{OTHER_DIGEST}")
    assert str(info.value) == (
        f"evidence is for spec digest sha256:{DIGEST[:12]}… but the workload's is sha256:{OTHER_DIGEST[:12]}… "
        "(spec changed after signing)"
    )


def test_subject_digest_rewritten_fails_signature() -> None:
    """Changing the subject digest inside a signed envelope (to match a new spec) breaks the signature."""
    priv, pub = keypair()
    env = signed(priv)
    st = json.loads(base64.b64decode(env["payload"]))
    st["subject"][0]["digest"]["sha256"] = OTHER_DIGEST
    forged = dict(env, payload=base64.b64encode(statement_bytes(st)).decode())
    with pytest.raises(EvidenceVerificationError, match="signature does not verify"):
        verify_evidence(forged, pub, now=NOW, expected_digest=f"sha256:{OTHER_DIGEST}")


def test_wrong_key() -> None:
    priv, _ = keypair()
    _, other_pub = keypair()
    with pytest.raises(EvidenceVerificationError) as info:
        verify_evidence(signed(priv), other_pub, now=NOW, key_name="other.pub")
    msg = str(info.value)
    assert msg.startswith(f"signature does not verify with key other.pub (keyid {key_id(other_pub)[:16]}…)")
    assert f"the envelope names keyid {key_id(priv.public_key())[:16]}…" in msg
    # a key of the other algorithm fails the same way
    _, ed_pub = keypair("ed25519")
    with pytest.raises(EvidenceVerificationError, match="signature does not verify"):
        verify_evidence(signed(priv), ed_pub, now=NOW)


def test_expired() -> None:
    priv, pub = keypair()
    env = signed(priv, expiresAt="2026-12-01T00:00:00+00:00")
    verify_evidence(env, pub, now=datetime(2026, 11, 30, 23, 59, tzinfo=UTC))
    with pytest.raises(EvidenceVerificationError) as info:
        verify_evidence(env, pub, now=datetime(2026, 12, 1, tzinfo=UTC))
    assert str(info.value) == "evidence expired at 2026-12-01T00:00:00Z (now 2026-12-01T00:00:00Z)"


def test_decision_fail() -> None:
    priv, pub = keypair()
    with pytest.raises(EvidenceVerificationError) as info:
        verify_evidence(signed(priv, decision="FAIL"), pub, now=NOW)
    assert str(info.value) == "decision is FAIL"


def test_not_aigate_evidence() -> None:
    priv, pub = keypair()
    st = build_statement("fraud", "x", DIGEST, predicate())
    st["predicateType"] = "https://slsa.dev/provenance/v1"
    with pytest.raises(EvidenceVerificationError, match=re.escape("predicateType is 'https://slsa.dev/provenance/v1'")):
        verify_evidence(sign_statement(st, priv), pub, now=NOW)
    env = sign_envelope(b"not json", IN_TOTO_PAYLOAD_TYPE, priv)
    with pytest.raises(EvidenceVerificationError, match="signed payload is not JSON"):
        verify_evidence(env, pub, now=NOW)


def test_sigstore_bundle_is_accepted_as_input() -> None:
    priv, pub = keypair()
    env = signed(priv)
    bundle = to_sigstore_bundle(env)
    assert bundle["verificationMaterial"]["publicKey"]["hint"] == key_id(pub)
    assert "keyid" not in bundle["dsseEnvelope"]["signatures"][0]
    assert verify_evidence(json.dumps(bundle), pub, now=NOW) == verify_evidence(env, pub, now=NOW)


def test_unreadable_input_is_an_input_error() -> None:
    _, pub = keypair()
    for raw, msg in [(b"{not json", "evidence is not JSON"), (b"[1,2]", "not a DSSE envelope")]:
        with pytest.raises(EvidenceInputError, match=msg) as info:
            verify_evidence(raw, pub, now=NOW)
        assert info.value.exit_code == 2
    with pytest.raises(EvidenceInputError, match="above the 1048576-byte limit"):
        verify_evidence(b" " * (1024 * 1024 + 1), pub, now=NOW)
    assert EvidenceVerificationError("x").exit_code == 1


def test_naive_now_is_a_programming_error() -> None:
    priv, pub = keypair()
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_evidence(signed(priv), pub, now=datetime(2026, 1, 1))


# size bound


def _huge_predicate() -> dict[str, Any]:
    """200 cases x 3 runs, each with a 4 KiB answer: ~2.4 MB of transcript."""
    cases = [
        {
            "case": f"case-{i}",
            "runs": [{"repeat": r, "text": f"answer {i}/{r} " + "lorem ipsum é " * 290} for r in range(3)],
        }
        for i in range(200)
    ]
    return predicate(cases=cases)


@pytest.mark.parametrize("kind", KINDS)
def test_size_bound(kind: KeyKind) -> None:
    priv, pub = keypair(kind)
    big = _huge_predicate()
    original = copy.deepcopy(big)
    assert len(json.dumps(big).encode()) > 2 * MAX_ENVELOPE_BYTES
    bounded = bound_predicate(big)
    assert big == original, "the input is not modified"
    env = sign_statement(build_statement("fraud", "fraud-review-assistant", DIGEST, bounded), priv)
    size = len(envelope_bytes(env))
    assert max_predicate_bytes() < size <= MAX_ENVELOPE_BYTES  # bounded, not gutted
    v = verify_evidence(envelope_bytes(env), pub, now=NOW, expected_digest=DIGEST)
    pairs = [
        (r["text"], o["text"])
        for c, oc in zip(v.predicate["cases"], original["cases"], strict=True)
        for r, o in zip(c["runs"], oc["runs"], strict=True)
    ]
    summarised = [(t, o) for t, o in pairs if isinstance(t, dict)]
    assert summarised and any(t == o for t, o in pairs), "some transcripts summarised, the rest kept whole"
    s, original_text = summarised[0]
    assert s["truncated"] is True
    assert s["bytes"] == len(original_text.encode())
    assert s["head"] == original_text[:200]
    import hashlib

    assert s["sha256"] == hashlib.sha256(original_text.encode()).hexdigest()


def test_small_predicate_is_untouched() -> None:
    p = predicate()
    assert bound_predicate(p) == p


def test_size_bound_cannot_fit() -> None:
    many_small = predicate(cases=[{"case": f"c{i}", "runs": 3, "passed": 3} for i in range(40000)])
    with pytest.raises(EvidenceError, match="record fewer cases or repeats"):
        bound_predicate(many_small)


def test_sign_refuses_oversized_envelope() -> None:
    priv, _ = keypair()
    st = build_statement("fraud", "x", DIGEST, _huge_predicate())
    with pytest.raises(EvidenceError, match="above the 921600-byte bound"):
        sign_statement(st, priv)


def test_verification_failures_are_told_apart_by_class() -> None:
    """Callers (webhook, reconciler, CLI) branch on the class, never on the message."""
    from aigate.evidence import (
        EvidenceExpired,
        EvidenceNotPassed,
        EvidenceStale,
        EvidenceUnsigned,
        EvidenceVerificationError,
        EvidenceWrongKey,
    )

    priv, pub = keypair()
    other, _ = keypair()
    env = signed(priv)
    with pytest.raises(EvidenceStale) as stale:
        verify_evidence(env, pub, now=NOW, expected_digest="cd" * 32)
    assert stale.value.signed_digest == f"sha256:{DIGEST}" and stale.value.current_digest == "sha256:" + "cd" * 32
    with pytest.raises(EvidenceExpired) as expired:
        verify_evidence(env, pub, now=NOW + timedelta(days=31))
    assert expired.value.expires_at == NOW + timedelta(days=30)
    with pytest.raises(EvidenceWrongKey):
        verify_evidence(signed(other), pub, now=NOW)
    with pytest.raises(EvidenceUnsigned):
        verify_evidence({**env, "signatures": []}, pub, now=NOW)
    with pytest.raises(EvidenceNotPassed):
        verify_evidence(signed(priv, decision="FAIL"), pub, now=NOW)
    for cls in (EvidenceStale, EvidenceExpired, EvidenceWrongKey, EvidenceUnsigned, EvidenceNotPassed):
        assert issubclass(cls, EvidenceVerificationError) and cls.exit_code == 1


def test_the_typed_predicate_reads_what_was_signed() -> None:
    priv, pub = keypair()
    v = verify_evidence(signed(priv), pub, now=NOW)
    assert v.signed.decision == "PASS" and v.signed.expires_at == NOW + timedelta(days=30)
    assert [g.gate for g in v.signed.gates][:2] == ["cost", "reliability"] and not v.signed.failed_gates
    assert v.signed.workload is not None and v.signed.workload.name == "fraud-review-assistant"
