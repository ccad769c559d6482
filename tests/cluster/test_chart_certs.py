"""The operator's own key material on the real API server: the webhook certificate rotator (controller/certs.py)
keeps its Secret, the webhook configurations' caBundle and its files in step, and the signing key is generated
once (controller/signingkey.py). Then the whole loop with a running operator: a 60-second certificate is renewed
and the API server keeps reaching the webhook, with no restart."""

from __future__ import annotations

import base64
import datetime
import json
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from kubernetes.client import CoreV1Api

from aigate.controller.certs import CA_CERT, TLS_CERT, CertRotator, RotatorSettings, hosts_for, next_renewal
from aigate.controller.signingkey import SigningKeyError, ensure_signing_key
from aigate.evidence.keys import load_private_key
from aigate.kube.names import WEBHOOK_IDS
from aigate.webhook.configurations import mutating_configuration, validating_configuration
from localcluster.aigate_operator import OperatorProcess, install_crd, prepare_operator
from localcluster.testing import Cluster

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helmchart import find_helm, render

Obj = dict[str, Any]


def configurations(name: str, namespace: str, client: Obj) -> list[Obj]:
    """aigate's two webhook configurations without caBundle, seeing only `namespace` (nothing else on this shared
    cluster is gated by them)."""
    out = []
    for c in (
        validating_configuration(client, operator_namespace="aigate-system", name=name),
        mutating_configuration(client, operator_namespace="aigate-system", name=name),
    ):
        for w in c["webhooks"]:
            w["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
        out.append(c)
    return out


@pytest.fixture
def webhook_configs(cluster: Cluster, namespace: str) -> Iterator[tuple[str, list[Obj]]]:
    name = f"aigate-certs-{namespace}"
    docs = configurations(name, namespace, {"service": {"name": "aigate-webhook", "namespace": namespace}})
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
    yield name, docs
    for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
        cluster.kubectl("delete", kind, name, "--ignore-not-found", check=False)


def bundles(cluster: Cluster, name: str) -> list[str | None]:
    out = []
    for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
        for w in cluster.get_json(kind, name)["webhooks"]:
            out.append(w["clientConfig"].get("caBundle"))
    return out


def secret(cluster: Cluster, namespace: str, name: str) -> Obj:
    return cluster.get_json("secret", name, "-n", namespace)  # type: ignore[no-any-return]


def serial(pem_b64: str) -> int:
    return x509.load_pem_x509_certificate(base64.b64decode(pem_b64)).serial_number


class Clock:
    def __init__(self) -> None:
        self.now = datetime.datetime.now(datetime.UTC)

    def __call__(self) -> datetime.datetime:
        return self.now


def test_rotator_keeps_secret_bundle_and_files_in_step(
    cluster: Cluster, namespace: str, webhook_configs: tuple[str, list[Obj]], tmp_path: Path
) -> None:
    name, docs = webhook_configs
    clock = Clock()
    files = tmp_path / "tls"
    settings = RotatorSettings(
        namespace=namespace,
        secret="aigate-webhook-tls",
        hosts=hosts_for(f"aigate-webhook.{namespace}.svc"),
        cert_file=files / "tls.crt",
        key_file=files / "tls.key",
        validating=(name,),
        mutating=(name,),
        cert_validity=datetime.timedelta(seconds=90),
    )
    with cluster.api_client() as api:
        rotator = CertRotator(api, settings, clock)
        assert bundles(cluster, name) == [None] * len(WEBHOOK_IDS)

        first = rotator.ensure()
        s1 = secret(cluster, namespace, "aigate-webhook-tls")
        bundle = base64.b64encode(first.bundle).decode()
        assert s1["data"][CA_CERT] == bundle
        every = [bundle] * len(WEBHOOK_IDS)
        assert bundles(cluster, name) == every, "caBundle injected into every webhook of both configurations"
        assert (files / "tls.crt").read_bytes() == first.serving.cert
        assert s1["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "aigate-operator"
        versions = [
            cluster.get_json(k, name)["metadata"]["resourceVersion"]
            for k in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration")
        ]

        # nothing due: nothing written
        rotator.ensure()
        assert (
            secret(cluster, namespace, "aigate-webhook-tls")["metadata"]["resourceVersion"]
            == s1["metadata"]["resourceVersion"]
        )
        assert versions == [
            cluster.get_json(k, name)["metadata"]["resourceVersion"]
            for k in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration")
        ]
        assert rotator.seconds_to_next_check() == pytest.approx(60, abs=1)

        # a short validity renews: a new serving certificate under the same CA, so caBundle does not change
        clock.now = next_renewal(first, clock.now)
        second = rotator.ensure()
        s2 = secret(cluster, namespace, "aigate-webhook-tls")
        assert serial(s2["data"][TLS_CERT]) != serial(s1["data"][TLS_CERT])
        assert serial(s2["data"][TLS_CERT]) == x509.load_pem_x509_certificate(second.serving.cert).serial_number
        assert (files / "tls.crt").read_bytes() == second.serving.cert
        assert bundles(cluster, name) == [bundle] * len(WEBHOOK_IDS)

        # a configuration re-applied without caBundle (as a `kubectl replace` or a fresh install would) is repaired
        cluster.kubectl("replace", "-f", "-", input=json.dumps(docs[0]))
        assert bundles(cluster, name)[:2] == [None, None]
        rotator.ensure()
        assert bundles(cluster, name) == [bundle] * len(WEBHOOK_IDS)

        # a deleted Secret: a new CA, injected
        cluster.kubectl("delete", "secret", "aigate-webhook-tls", "-n", namespace)
        third = rotator.ensure()
        assert third.ca != first.ca
        assert bundles(cluster, name) == [base64.b64encode(third.bundle).decode()] * len(WEBHOOK_IDS)


def test_signing_key_is_generated_once_and_never_replaced(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    with cluster.api_client() as api:
        assert ensure_signing_key(api, namespace, "aigate-signing-key", tmp_path / "a" / "aigate.key") is True
        stored = secret(cluster, namespace, "aigate-signing-key")
        key = load_private_key(tmp_path / "a" / "aigate.key")
        assert oct((tmp_path / "a" / "aigate.key").stat().st_mode & 0o777) == "0o600"
        # a restart reads the same key
        assert ensure_signing_key(api, namespace, "aigate-signing-key", tmp_path / "b" / "aigate.key") is False
        assert (tmp_path / "b" / "aigate.key").read_bytes() == (tmp_path / "a" / "aigate.key").read_bytes()
        assert (
            secret(cluster, namespace, "aigate-signing-key")["metadata"]["resourceVersion"]
            == stored["metadata"]["resourceVersion"]
        )
        assert base64.b64decode(stored["data"]["aigate.pub"]).startswith(b"-----BEGIN PUBLIC KEY-----")
        del key
        # a Secret without the key is refused by name, not overwritten
        CoreV1Api(api).create_namespaced_secret(
            namespace,
            {"metadata": {"name": "not-a-key"}, "stringData": {"other": "x"}},  # type: ignore[arg-type]
        )
        with pytest.raises(SigningKeyError, match=rf"Secret {namespace}/not-a-key has no key 'aigate.key'"):
            ensure_signing_key(api, namespace, "not-a-key", tmp_path / "c" / "aigate.key")
        assert "other" in secret(cluster, namespace, "not-a-key")["data"]


# -- the running operator ---------------------------------------------------------------------------------------------


def served_serial(port: int, bundle_pem: bytes) -> int:
    ctx = ssl.create_default_context(cadata=bundle_pem.decode())
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: assistant, namespace: {ns}, labels: {{aigate.dev/workload: no-such-workload}}}}
spec:
  selector: {{matchLabels: {{app: assistant}}}}
  template:
    metadata: {{labels: {{app: assistant}}}}
    spec: {{containers: [{{name: c, image: aigate:dev}}]}}
"""


def refused_by_aigate(cluster: Cluster, namespace: str) -> str:
    done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=DEPLOYMENT.format(ns=namespace), check=False)
    assert done.returncode != 0, done.stdout
    return done.stderr


@pytest.fixture
def rotating_operator(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[tuple[OperatorProcess, str]]:
    install_crd(cluster.kubectl)
    name = f"aigate-rot-{namespace}"
    tls = tmp_path / "rotated"
    op = prepare_operator(
        tmp_path / "operator",
        cluster.kubeconfig,
        extra_env={
            "AIGATE_OPERATOR_NAMESPACE": namespace,
            "AIGATE_WEBHOOK_TLS_SECRET": "aigate-webhook-tls",
            "AIGATE_WEBHOOK_CONFIGURATION": name,
            "AIGATE_WEBHOOK_CERT_VALIDITY_SECONDS": "60",
            "AIGATE_WEBHOOK_CERT": str(tls / "tls.crt"),
            "AIGATE_WEBHOOK_KEY": str(tls / "tls.key"),
        },
    )
    docs = configurations(name, namespace, {"url": f"https://127.0.0.1:{op.webhook_port}"})
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
    try:
        op.start()
        op.wait_ready()
        yield op, name
    finally:
        op.stop()
        for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
            cluster.kubectl("delete", kind, name, "--ignore-not-found", check=False)


def test_operator_renews_its_certificate_and_keeps_answering_without_a_restart(
    cluster: Cluster, namespace: str, rotating_operator: tuple[OperatorProcess, str]
) -> None:
    op, name = rotating_operator
    assert op.proc is not None
    pid = op.proc.pid
    stored = secret(cluster, namespace, "aigate-webhook-tls")
    bundle = stored["data"][CA_CERT]
    assert bundles(cluster, name) == [bundle] * len(WEBHOOK_IDS), "the operator injected its CA at start-up"
    first = serial(stored["data"][TLS_CERT])
    assert served_serial(op.webhook_port, base64.b64decode(bundle)) == first

    message = refused_by_aigate(cluster, namespace)
    assert 'admission webhook "rollouts.aigate.dev" denied the request' in message
    assert "AIWorkload" in message and "no-such-workload" in message and "not found" in message

    # renewed with a third of 60 s left; the bound only stops a hung wait
    renewed = cluster.wait_for(
        lambda: (s := serial(secret(cluster, namespace, "aigate-webhook-tls")["data"][TLS_CERT])) != first and s,
        timeout=150,
        interval=2,
        what="the operator to renew its 60-second webhook certificate",
    )
    cluster.wait_for(
        lambda: served_serial(op.webhook_port, base64.b64decode(bundle)) == renewed,
        timeout=60,
        interval=1,
        what="the webhook server to serve the renewed certificate",
    )
    assert secret(cluster, namespace, "aigate-webhook-tls")["data"][CA_CERT] == bundle, "same CA, same caBundle"
    message = refused_by_aigate(cluster, namespace)
    assert 'admission webhook "rollouts.aigate.dev" denied the request' in message, "the API server still reaches it"
    assert "not found" in message
    assert op.alive() and op.proc is not None and op.proc.pid == pid and op.restarts == 0
    assert "webhook certificate renewed" in op.log.read_text()


def chart_script(kind: str, name: str, fullname: str) -> str:
    """The Python a chart hook runs (`helm test` pod, pre-delete Job), as rendered for release `fullname`."""
    [obj] = [
        o
        for o in render(find_helm(), sets=(f"fullnameOverride={fullname}",))
        if o["kind"] == kind and o["metadata"]["name"] == name
    ]
    spec = obj["spec"] if kind == "Pod" else obj["spec"]["template"]["spec"]
    [container] = spec["containers"]
    assert container["command"] == ["python3", "-c"]
    return str(container["args"][0])


def run_outside_the_cluster(cluster: Cluster, script: str, **replace: str) -> subprocess.CompletedProcess[str]:
    """Run a hook's script here instead of in its pod: the admin kubeconfig instead of the pod's ServiceAccount."""
    script = script.replace("config.load_incluster_config()", "config.load_kube_config()")
    for old, new in replace.items():
        assert old in script, old
        script = script.replace(old, new)
    return subprocess.run([sys.executable, "-c", script], env=cluster.env(), capture_output=True, text=True, timeout=60)


def test_helm_test_and_pre_delete_hook_scripts_against_the_running_operator(
    cluster: Cluster, namespace: str, rotating_operator: tuple[OperatorProcess, str]
) -> None:
    """What the chart's `helm test` pod and pre-delete Job run, run here against the operator (their pods need the
    real node): the test posts a review over TLS verified with the injected caBundle and reads the refusal; the hook
    removes exactly the two webhook configurations."""
    op, name = rotating_operator
    test = chart_script("Pod", f"{name}-test", name)
    done = run_outside_the_cluster(
        cluster, test, **{f"https://{name}-webhook.aigate-system.svc/": f"https://127.0.0.1:{op.webhook_port}/"}
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "webhook answered over TLS and refused:" in done.stdout
    assert "AIWorkload default/aigate-helm-test-no-such-workload not found" in done.stdout

    hook = chart_script("Job", f"{name}-uninstall", name)
    done = run_outside_the_cluster(cluster, hook)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"deleted ValidatingWebhookConfiguration {name}",
        f"deleted MutatingWebhookConfiguration {name}",
    ]
    for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
        assert cluster.kubectl("get", kind, name, check=False).returncode != 0
    again = run_outside_the_cluster(cluster, hook)
    assert again.returncode == 0 and "was already gone" in again.stdout, "a second uninstall attempt does not fail"
    # with the configurations gone, nothing refuses the rollout any more
    done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=DEPLOYMENT.format(ns=namespace), check=False)
    assert done.returncode == 0, done.stderr
