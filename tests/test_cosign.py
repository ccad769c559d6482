"""Interop: evidence signed by aigate verifies with cosign, the tool platform teams already trust, offline.

cosign is built from source by `bash hack/build-cosign.sh` (pinned there). Without it these tests skip, except
in CI (CI=true or AIGATE_REQUIRE_CLUSTER=1), where a missing cosign is a failure: interop that is never run
is interop nobody has.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import re
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aigate.api.digest import canonical_spec, spec_digest
from aigate.api.load import load_and_resolve
from aigate.evidence import (
    MAX_ENVELOPE_BYTES,
    PREDICATE_TYPE,
    KeyKind,
    bound_predicate,
    build_statement,
    envelope_bytes,
    generate_key,
    sign_statement,
    to_sigstore_bundle,
    verify_evidence,
)
from aigate.evidence.keys import private_key_from_pem, public_key_from_pem

ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = ROOT / "hack" / "build-cosign.sh"
EXAMPLE = ROOT / "examples" / "fraud-review-assistant-remediated.yaml"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _pinned_version() -> str:
    m = re.search(r'^COSIGN_VERSION="\$\{COSIGN_VERSION:-(v[0-9.]+)\}"', BUILD_SCRIPT.read_text(), re.M)
    assert m, f"no COSIGN_VERSION pin in {BUILD_SCRIPT}"
    return m.group(1)


def _cosign_path() -> Path:
    if os.environ.get("AIGATE_COSIGN"):
        return Path(os.environ["AIGATE_COSIGN"])
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower(), "unknown")
    cache = Path(os.environ.get("AIGATE_CACHE_DIR") or Path.home() / ".cache" / "aigate")
    return cache / "bin" / f"cosign-{_pinned_version()}-{platform.system().lower()}-{arch}" / "cosign"


@pytest.fixture(scope="module")
def cosign() -> Path:
    path = _cosign_path()
    if os.access(path, os.X_OK):
        return path
    why = f"cosign not found at {path} (build it: bash hack/build-cosign.sh, or set AIGATE_COSIGN)"
    if os.environ.get("AIGATE_REQUIRE_CLUSTER") == "1" or os.environ.get("CI") == "true":
        pytest.fail(f"{why}; CI must build it")
    pytest.skip(why)


@dataclass
class Files:
    dir: Path
    pub: Path
    blob: Path
    envelope: dict[str, Any]
    key: Any


def _predicate(digest: str, **over: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "workload": {"namespace": "fraud", "name": "fraud-review-assistant"},
        "owner": "fraud-platform-team",
        "specDigest": digest,
        "decision": "PASS",
        "gates": [{"gate": "cost", "status": "PASS", "reason": "ok"}],
        "cases": [],
        "modelIdentities": [],
        "faultModes": [],
        "riskAcceptances": [],
        "monitoring": [],
        "runner": {"name": "aigate", "version": "test"},
        "issuedAt": NOW.isoformat(),
        "expiresAt": (NOW + timedelta(days=30)).isoformat(),
    }
    p.update(over)
    return p


def _setup(tmp_path: Path, kind: KeyKind = "ecdsa-p256", **over: Any) -> Files:
    """Sign a statement about the example workload; write the public key, the envelope and the blob (the
    canonical spec, whose sha256 is the subject digest) where cosign reads them."""
    resolved = load_and_resolve(EXAMPLE)
    digest = spec_digest(resolved)
    priv_pem, pub_pem = generate_key(kind)
    key = private_key_from_pem(priv_pem)
    pub = tmp_path / "aigate.pub"
    pub.write_bytes(pub_pem)
    blob = tmp_path / "spec.json"
    blob.write_bytes(canonical_spec(resolved))
    pred = bound_predicate(_predicate(digest, **over))
    env = sign_statement(build_statement("fraud", "fraud-review-assistant", digest, pred), key)
    verify_evidence(env, public_key_from_pem(pub_pem), now=NOW, expected_digest=digest)
    return Files(tmp_path, pub, blob, env, key)


def _run(cosign: Path, f: Files, envelope: dict[str, Any], *, form: str, blob: Path | None = None, **kw: str) -> Any:
    """`cosign verify-blob-attestation` offline with the public key: the envelope as --signature (deprecated in
    cosign v3, still the one-file form) or as a Sigstore bundle."""
    args = [str(cosign), "verify-blob-attestation", "--key", kw.get("key", str(f.pub))]
    args += ["--type", kw.get("type", PREDICATE_TYPE), "--insecure-ignore-tlog"]
    if form == "envelope":
        sig = f.dir / "evidence.json"
        sig.write_bytes(envelope_bytes(envelope))
        args += ["--signature", str(sig), "--new-bundle-format=false"]
    else:
        bundle = f.dir / "evidence.sigstore.json"
        bundle.write_text(json.dumps(to_sigstore_bundle(envelope)))
        args += ["--bundle", str(bundle)]
    args.append(str(blob or f.blob))
    env = {**os.environ, "HOME": str(f.dir), "SIGSTORE_NO_CACHE": "true"}
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=env, check=False)


FORMS = ["envelope", "bundle"]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("kind", ["ecdsa-p256", "ed25519"])
def test_cosign_verifies_aigate_evidence(cosign: Path, tmp_path: Path, form: str, kind: KeyKind) -> None:
    f = _setup(tmp_path, kind)
    r = _run(cosign, f, f.envelope, form=form)
    assert r.returncode == 0, r.stderr
    assert "Verified OK" in r.stderr + r.stdout


@pytest.mark.parametrize("form", FORMS)
def test_cosign_rejects_a_tampered_envelope(cosign: Path, tmp_path: Path, form: str) -> None:
    f = _setup(tmp_path)
    payload = bytearray(base64.b64decode(f.envelope["payload"]))
    i = payload.index(b'"decision":"PASS"') + len(b'"decision":"')
    payload[i : i + 4] = b"FAIL"
    tampered = dict(f.envelope, payload=base64.b64encode(bytes(payload)).decode())
    r = _run(cosign, f, tampered, form=form)
    assert r.returncode != 0 and "accepted signatures do not match" in r.stderr, r.stderr
    # and a flipped signature byte
    sig = bytearray(base64.b64decode(f.envelope["signatures"][0]["sig"]))
    sig[-1] ^= 0x01
    bad_sig = dict(
        f.envelope, signatures=[dict(f.envelope["signatures"][0], sig=base64.b64encode(bytes(sig)).decode())]
    )
    r = _run(cosign, f, bad_sig, form=form)
    assert r.returncode != 0 and "accepted signatures do not match" in r.stderr, r.stderr


@pytest.mark.parametrize("form", FORMS)
def test_cosign_rejects_another_spec_wrong_key_and_wrong_type(cosign: Path, tmp_path: Path, form: str) -> None:
    f = _setup(tmp_path)
    changed = tmp_path / "changed-spec.json"
    changed.write_bytes(f.blob.read_bytes().replace(b'"spec":{', b'"spec":{"owner2":"x",', 1))
    assert changed.read_bytes() != f.blob.read_bytes()
    r = _run(cosign, f, f.envelope, form=form, blob=changed)
    assert r.returncode != 0 and "digest" in r.stderr, r.stderr  # the spec changed after signing
    other = tmp_path / "other.pub"
    other.write_bytes(generate_key("ecdsa-p256")[1])
    r = _run(cosign, f, f.envelope, form=form, key=str(other))
    assert r.returncode != 0 and "accepted signatures do not match" in r.stderr, r.stderr
    r = _run(cosign, f, f.envelope, form=form, type="https://slsa.dev/provenance/v1")
    assert r.returncode != 0 and "invalid predicate type" in r.stderr, r.stderr


def test_cosign_verifies_a_maximum_size_envelope(cosign: Path, tmp_path: Path) -> None:
    cases = [{"case": f"c{i}", "runs": [{"text": f"{i}/{r} " + "x" * 4000} for r in range(3)]} for i in range(200)]
    f = _setup(tmp_path, cases=cases)
    size = len(envelope_bytes(f.envelope))
    assert MAX_ENVELOPE_BYTES * 0.9 < size <= MAX_ENVELOPE_BYTES
    for form in FORMS:
        r = _run(cosign, f, f.envelope, form=form)
        assert r.returncode == 0, (form, r.stderr)
