"""Evidence signing keys: ECDSA P-256 (the default, what cosign uses) or Ed25519.

Files are PEM: the private key as unencrypted PKCS#8 (`-----BEGIN PRIVATE KEY-----`, mode 0600; in a cluster
it lives in a Secret only the operator reads), the public key as a SubjectPublicKeyInfo
(`-----BEGIN PUBLIC KEY-----`), the form `cosign verify-blob-attestation --key` reads. The key id is the
sha256 of the DER SubjectPublicKeyInfo, in hex.

No message raised or logged here ever contains key material: errors name the file and the problem only.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Literal, get_args

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from aigate.evidence.errors import EvidenceInputError

KeyKind = Literal["ecdsa-p256", "ed25519"]
KEY_KINDS: tuple[KeyKind, ...] = get_args(KeyKind)

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

PRIVATE_KEY_FILE = "aigate.key"
PUBLIC_KEY_FILE = "aigate.pub"

_SUPPORTED = "aigate signs with ECDSA P-256 or Ed25519 keys"


def generate_key(kind: KeyKind = "ecdsa-p256") -> tuple[bytes, bytes]:
    """A new key pair as (private PKCS#8 PEM, public SubjectPublicKeyInfo PEM)."""
    private: PrivateKey
    if kind == "ecdsa-p256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif kind == "ed25519":
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        raise EvidenceInputError(f"unknown key type {kind!r}; expected one of {', '.join(KEY_KINDS)}")
    return private_key_pem(private), public_key_pem(private.public_key())


def private_key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_key_pem(key: PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(public_key: PublicKey) -> str:
    """sha256 (hex) of the DER SubjectPublicKeyInfo: stable across PEM re-encodings, like cosign's key ids."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def key_kind(key: PrivateKey | PublicKey) -> KeyKind:
    return "ed25519" if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey) else "ecdsa-p256"


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise EvidenceInputError(f"cannot read {what} {path}: {e.strerror or type(e).__name__}") from None


def _describe(key: object) -> str:
    """What kind of key this is, for an error message (never its content)."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return f"an ECDSA {key.curve.name} key"
    kinds: tuple[tuple[tuple[type, ...], str], ...] = (
        ((rsa.RSAPrivateKey, rsa.RSAPublicKey), "an RSA key"),
        ((dsa.DSAPrivateKey, dsa.DSAPublicKey), "a DSA key"),
        ((ed448.Ed448PrivateKey, ed448.Ed448PublicKey), "an Ed448 key"),
    )
    for classes, name in kinds:
        if isinstance(key, classes):
            return name
    return f"a {type(key).__name__.lstrip('_')}"


def _check_private(key: object, source: str) -> PrivateKey:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise EvidenceInputError(f"private key {source} is {_describe(key)}; {_SUPPORTED}")


def _check_public(key: object, source: str) -> PublicKey:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise EvidenceInputError(f"public key {source} is {_describe(key)}; {_SUPPORTED}")


def private_key_from_pem(data: bytes, source: str = "(inline)") -> PrivateKey:
    """Parse an unencrypted PKCS#8 (or SEC1 EC) PEM private key; `source` names it in errors (a path, a Secret)."""
    if b"-----BEGIN" not in data:
        raise EvidenceInputError(f"private key {source} is not PEM (expected -----BEGIN PRIVATE KEY-----)")
    if b"ENCRYPTED" in data.split(b"-----END", 1)[0]:
        raise EvidenceInputError(
            f"private key {source} is encrypted; aigate needs an unencrypted PKCS#8 PEM key "
            "(write one with `aigate keygen`, keep it in a mode-0600 file or a Secret)"
        )
    if b"-----BEGIN PUBLIC KEY-----" in data or b"-----BEGIN CERTIFICATE-----" in data:
        raise EvidenceInputError(f"private key {source} holds a public key or certificate, not a private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise EvidenceInputError(
            f"private key {source} is encrypted; aigate needs an unencrypted PKCS#8 PEM key"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise EvidenceInputError(f"private key {source} is not a PEM private key aigate can read") from None
    return _check_private(key, source)


def public_key_from_pem(data: bytes, source: str = "(inline)") -> PublicKey:
    """Parse a SubjectPublicKeyInfo PEM public key; `source` names it in errors. A private key is refused."""
    if b"PRIVATE KEY-----" in data:
        # Say so without echoing it: someone passed aigate.key where aigate.pub belongs.
        raise EvidenceInputError(f"public key {source} holds a PRIVATE key; pass the public key ({PUBLIC_KEY_FILE})")
    if b"-----BEGIN PUBLIC KEY-----" not in data:
        raise EvidenceInputError(f"public key {source} is not a PEM public key (expected -----BEGIN PUBLIC KEY-----)")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise EvidenceInputError(f"public key {source} is not a PEM public key aigate can read") from None
    return _check_public(key, source)


def load_private_key(path: Path | str) -> PrivateKey:
    return private_key_from_pem(_read(Path(path), "private key"), str(path))


def load_public_key(path: Path | str) -> PublicKey:
    return public_key_from_pem(_read(Path(path), "public key"), str(path))


def write_keypair(out_dir: Path | str, kind: KeyKind = "ecdsa-p256", *, overwrite: bool = False) -> tuple[Path, Path]:
    """Write `aigate.key` (mode 0600 from the first byte on disk) and `aigate.pub` into `out_dir`.

    Refuses to replace an existing key unless `overwrite`: losing a signing key silently invalidates every
    package signed with it.
    """
    out = Path(out_dir)
    priv_path, pub_path = out / PRIVATE_KEY_FILE, out / PUBLIC_KEY_FILE
    if not overwrite:
        for p in (priv_path, pub_path):
            if p.exists():
                raise EvidenceInputError(f"{p} already exists; refusing to overwrite a signing key")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EvidenceInputError(f"cannot create {out}: {e.strerror or type(e).__name__}") from None
    private_pem, public_pem = generate_key(kind)
    _write_atomic(priv_path, private_pem, 0o600)
    _write_atomic(pub_path, public_pem, 0o644)
    return priv_path, pub_path


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Temp file created 0600 in the same directory, chmod, rename: never a moment with a readable secret."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise EvidenceInputError(f"cannot write {path}: {e.strerror or type(e).__name__}") from None
