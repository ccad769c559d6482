"""The webhook certificate rotator's decisions (controller/certs.py `plan`), its files, and `aigate webhook`'s server
picking up a renewal without a restart. The Secret and caBundle injection against a real API server are in
tests/cluster/test_chart_certs.py."""

from __future__ import annotations

import asyncio
import datetime
import http.client
import json
import ssl
import urllib.parse
from pathlib import Path

import pytest
from cryptography import x509

from aigate.controller import certs
from aigate.controller.certs import CertRotator, Pair, WebhookTLS, plan, secret_data, tls_from_secret, write_files
from aigate.kube.metrics import Metrics
from aigate.webhook.review import Answer, respond
from aigate.webhook.server import App
from webhook_tls import free_port, serving

T0 = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
HOSTS = ("aigate-webhook.aigate-system.svc", "aigate-webhook.aigate-system.svc.cluster.local")
SHORT = datetime.timedelta(seconds=90)


def cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def first(hosts: tuple[str, ...] = HOSTS, **kw: datetime.timedelta) -> WebhookTLS:
    decided = plan(None, hosts, T0, **kw)
    assert decided is not None
    return decided[0]


def test_first_pass_issues_a_ca_and_a_serving_certificate_for_the_service() -> None:
    decided = plan(None, HOSTS, T0)
    assert decided is not None
    tls, reason = decided
    assert reason == "no webhook CA yet"
    ca, serving = cert(tls.ca.cert), cert(tls.serving.cert)
    serving.verify_directly_issued_by(ca)
    san = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == list(HOSTS)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert serving.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert serving.not_valid_after_utc - T0 == certs.CERT_VALIDITY
    assert ca.not_valid_after_utc - T0 == certs.CA_VALIDITY
    assert tls.bundle.strip() == tls.ca.cert.strip()


def test_a_good_secret_is_left_alone() -> None:
    tls = first()
    assert plan(tls, HOSTS, T0 + datetime.timedelta(days=200)) is None
    assert plan(tls_from_secret(secret_data(tls)), HOSTS, T0) is None, "the Secret's data reads back as written"


def test_a_short_validity_renews_the_serving_certificate_under_the_same_ca() -> None:
    """Renewed with a third of its life left (60 s into 90 s), not before; the CA and the bundle stay."""
    tls = first(cert_validity=SHORT)
    assert plan(tls, HOSTS, T0 + datetime.timedelta(seconds=59), cert_validity=SHORT) is None
    due = T0 + datetime.timedelta(seconds=60)
    assert certs.next_renewal(tls, T0) == due
    assert plan(tls, HOSTS, due - datetime.timedelta(seconds=1), cert_validity=SHORT) is None
    decided = plan(tls, HOSTS, due, cert_validity=SHORT)
    assert decided is not None
    renewed, reason = decided
    assert reason.startswith("the serving certificate expires at")
    assert renewed.ca == tls.ca and renewed.bundle == tls.bundle
    assert cert(renewed.serving.cert).serial_number != cert(tls.serving.cert).serial_number
    assert cert(renewed.serving.cert).not_valid_after_utc == due + SHORT
    cert(renewed.serving.cert).verify_directly_issued_by(cert(tls.ca.cert))


def test_a_renewed_ca_is_trusted_beside_the_old_one_until_the_old_one_expires() -> None:
    short_ca = datetime.timedelta(hours=3)
    tls = first(ca_validity=short_ca, cert_validity=datetime.timedelta(hours=1))
    at = T0 + datetime.timedelta(hours=2)
    decided = plan(tls, HOSTS, at, ca_validity=short_ca, cert_validity=datetime.timedelta(hours=2))
    assert decided is not None
    renewed, reason = decided
    assert reason.startswith("the webhook CA expires at")
    assert renewed.ca != tls.ca
    bundle = x509.load_pem_x509_certificates(renewed.bundle)
    assert bundle == [cert(renewed.ca.cert), cert(tls.ca.cert)], "new CA first, the old one still trusted"
    cert(renewed.serving.cert).verify_directly_issued_by(cert(renewed.ca.cert))
    # once the old CA has expired it leaves the bundle
    later = T0 + datetime.timedelta(hours=3, minutes=1)
    assert certs.next_renewal(renewed, at) == cert(tls.ca.cert).not_valid_after_utc, "the old CA leaves first"
    decided = plan(renewed, HOSTS, later, ca_validity=short_ca, cert_validity=datetime.timedelta(hours=2))
    assert decided is not None and decided[1] == "a previous CA expired"
    assert x509.load_pem_x509_certificates(decided[0].bundle) == [cert(renewed.ca.cert)]
    assert decided[0].serving == renewed.serving


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("hosts", "the serving certificate names"),
        ("serving-key", "the serving certificate's key does not match it"),
        ("serving-garbage", "the serving certificate is unreadable"),
        ("foreign-serving", "the serving certificate is not signed by the current CA"),
        ("ca-key", "the webhook CA's key does not match its certificate"),
        ("ca-garbage", "the webhook CA is unreadable"),
    ],
)
def test_a_damaged_secret_is_repaired(damage: str, reason: str) -> None:
    tls, other = first(), first()
    hosts = HOSTS
    if damage == "hosts":
        hosts = ("aigate-webhook.elsewhere.svc",)
    elif damage == "serving-key":
        tls = WebhookTLS(tls.ca, Pair(tls.serving.cert, other.serving.key), tls.bundle)
    elif damage == "serving-garbage":
        tls = WebhookTLS(tls.ca, Pair(b"not a certificate", tls.serving.key), tls.bundle)
    elif damage == "foreign-serving":
        tls = WebhookTLS(tls.ca, other.serving, tls.bundle)
    elif damage == "ca-key":
        tls = WebhookTLS(Pair(tls.ca.cert, other.ca.key), tls.serving, tls.bundle)
    elif damage == "ca-garbage":
        tls = WebhookTLS(Pair(b"garbage", tls.ca.key), tls.serving, b"garbage")
    decided = plan(tls, hosts, T0)
    assert decided is not None
    fixed, why = decided
    assert why.startswith(reason)
    assert plan(fixed, hosts, T0) is None
    cert(fixed.serving.cert).verify_directly_issued_by(cert(fixed.ca.cert))


@pytest.mark.parametrize(
    "data", [None, {}, {"tls.crt": "x"}, {"ca.crt": "!!", "ca.key": "", "tls.crt": "", "tls.key": ""}]
)
def test_an_unreadable_secret_starts_over(data: dict[str, str] | None) -> None:
    assert tls_from_secret(data) is None


def test_serving_certificate_never_outlives_its_ca() -> None:
    tls = first(ca_validity=datetime.timedelta(hours=1), cert_validity=datetime.timedelta(days=30))
    assert cert(tls.serving.cert).not_valid_after_utc == cert(tls.ca.cert).not_valid_after_utc


def test_files_change_all_at_once_and_only_when_different(tmp_path: Path) -> None:
    d = tmp_path / "tls"
    assert write_files(d, {"tls.crt": b"cert-1", "tls.key": b"key-1"}) is True
    assert (d / "tls.crt").read_bytes() == b"cert-1" and (d / "tls.key").read_bytes() == b"key-1"
    assert (d / "tls.crt").is_symlink() and (d / "..data").is_symlink()
    assert oct((d / "tls.key").stat().st_mode & 0o777) == "0o600"
    first_dir = (d / "..data").resolve()
    assert write_files(d, {"tls.crt": b"cert-1", "tls.key": b"key-1"}) is False
    assert write_files(d, {"tls.crt": b"cert-2", "tls.key": b"key-2"}) is True
    assert (d / "tls.crt").read_bytes() == b"cert-2" and (d / "tls.key").read_bytes() == b"key-2"
    assert not first_dir.exists(), "the previous generation is removed"
    current = (d / "..data").resolve().name
    assert sorted(p.name for p in d.iterdir()) == sorted(["..data", current, "tls.crt", "tls.key"])


def test_rotator_waits_until_the_next_renewal_at_most_an_hour() -> None:
    tls = first(cert_validity=SHORT)
    rotator = CertRotator.__new__(CertRotator)
    rotator.tls, rotator.clock = tls, lambda: T0
    assert rotator.seconds_to_next_check() == pytest.approx((certs.next_renewal(tls, T0) - T0).total_seconds())
    rotator.tls = first()
    assert rotator.seconds_to_next_check() == 3600.0


# -- the server picks up a renewal --------------------------------------------------------------------------------


async def _serial_seen(url: str, bundle: bytes) -> int:
    """Post a review the way the API server does (trusting only the bundle, checking the name) and return the serial
    of the certificate the server presented."""
    ctx = ssl.create_default_context(cadata=bundle.decode())
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "namespace": "fraud",
            "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "fraud"}},
        },
    }
    parts = urllib.parse.urlsplit(url)

    def post() -> bytes:
        conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, context=ctx, timeout=10)
        try:
            conn.request("POST", parts.path, body=json.dumps(review), headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            assert r.status == 200
            assert json.loads(r.read())["response"]["uid"] == "u-1"
            assert conn.sock is not None
            der = conn.sock.getpeercert(binary_form=True)
            assert der is not None
            return der
        finally:
            conn.close()

    der = await asyncio.to_thread(post)
    return x509.load_der_x509_certificate(der).serial_number


class Admit:
    async def review(self, webhook: str, review: dict[str, object]) -> dict[str, object]:
        return respond(review, Answer())


async def test_the_server_serves_a_renewed_certificate_without_a_restart(tmp_path: Path) -> None:
    hosts = ("localhost",)
    now = datetime.datetime.now(datetime.UTC)  # the TLS client checks validity against the real clock
    decided = plan(None, hosts, now, cert_validity=SHORT)
    assert decided is not None
    tls = decided[0]
    d = tmp_path / "tls"
    write_files(d, {"tls.crt": tls.serving.cert, "tls.key": tls.serving.key})
    port = free_port()  # a fixed port, as the webhook's: the API server's clientConfig names it
    app = App(Admit(), Metrics(), ready=lambda: True)  # type: ignore[arg-type]
    async with serving(app, d / "tls.crt", d / "tls.key", port=port, check_interval=0.05) as base:
        url = base.replace("127.0.0.1", "localhost") + "/rollouts.aigate.dev"
        assert await _serial_seen(url, tls.bundle) == cert(tls.serving.cert).serial_number
        decided = plan(tls, hosts, certs.next_renewal(tls, now), cert_validity=SHORT)
        assert decided is not None
        renewed = decided[0]
        write_files(d, {"tls.crt": renewed.serving.cert, "tls.key": renewed.serving.key})
        # the server starts a worker with the new files on the same socket, then stops the old one (which, for that
        # half second, may still take a connection): same address, and from then on only the new certificate
        want = cert(renewed.serving.cert).serial_number
        seen: list[int] = []
        for _ in range(400):
            seen.append(await _serial_seen(url, renewed.bundle))
            if seen[-5:] == [want] * 5:
                break
            await asyncio.sleep(0.05)
        assert seen[-5:] == [want] * 5, f"{len(seen)} handshakes, the last 5 not all the renewed certificate"
        assert renewed.bundle == tls.bundle, "verified with the caBundle the API server already has"
