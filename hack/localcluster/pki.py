"""The control plane's certificates: one CA, the API server's serving certificate, client certificates, and the
service-account signing key pair, issued as aigate issues its own (aigate.kube.pki) and written to files. Keys are
written 0600 and never logged."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from aigate.kube.pki import ca_certificate, cert_pem, key_pem, leaf_certificate, new_key

_VALIDITY = datetime.timedelta(days=365)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


@dataclass(frozen=True)
class CA:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    pair: CertPair

    @classmethod
    def create(cls, directory: Path, common_name: str = "aigate-local-ca") -> CA:
        key = new_key()
        cert = ca_certificate(key, common_name, datetime.datetime.now(datetime.UTC), _VALIDITY, path_length=None)
        pair = CertPair(directory / "ca.crt", directory / "ca.key")
        pair.cert.write_bytes(cert_pem(cert))
        _write_private(pair.key, key_pem(key))
        return cls(cert=cert, key=key, pair=pair)

    def issue(
        self,
        directory: Path,
        stem: str,
        common_name: str,
        *,
        organizations: tuple[str, ...] = (),
        dns_names: tuple[str, ...] = (),
        ips: tuple[str, ...] = (),
        server: bool = False,
        client: bool = False,
    ) -> CertPair:
        """A leaf certificate signed by this CA, written to DIRECTORY/STEM.crt and STEM.key."""
        key = new_key()
        now = datetime.datetime.now(datetime.UTC)
        cert = leaf_certificate(
            self.cert,
            self.key,
            key,
            common_name,
            now,
            now + _VALIDITY,
            organizations=organizations,
            hosts=(*dns_names, *ips),
            server=server,
            client=client,
        )
        pair = CertPair(directory / f"{stem}.crt", directory / f"{stem}.key")
        pair.cert.write_bytes(cert_pem(cert))
        _write_private(pair.key, key_pem(key))
        return pair


@dataclass(frozen=True)
class CertPair:
    """Where a certificate (or a public key) and its private key were written."""

    cert: Path
    key: Path


def service_account_keys(directory: Path) -> CertPair:
    """The RSA key pair the API server signs service-account tokens with (sa.key) and verifies them with (sa.pub)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pair = CertPair(directory / "sa.pub", directory / "sa.key")
    pair.cert.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    _write_private(pair.key, key_pem(key))
    return pair
