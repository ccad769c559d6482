"""A ValidatingWebhookConfiguration pointing at an HTTPS server on 127.0.0.1: the API server calls it over TLS and
`kubectl apply` fails with the webhook's message."""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from localcluster.pki import CA
from localcluster.testing import Cluster

DENY_MESSAGE = "aigate-test: configmaps labelled deny=yes are refused"


class Webhook:
    def __init__(self, tmp: Path) -> None:
        ca = CA.create(tmp, "webhook-test-ca")
        pair = ca.issue(tmp, "webhook", "webhook.local", ips=("127.0.0.1",), server=True)
        self.ca_pem = ca.pair.cert.read_bytes()
        self.reviews: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.reviews.append(review)
                req = review["request"]
                labels = (req.get("object") or {}).get("metadata", {}).get("labels") or {}
                response: dict[str, Any] = {"uid": req["uid"], "allowed": labels.get("deny") != "yes"}
                if not response["allowed"]:
                    response["status"] = {"code": 403, "message": DENY_MESSAGE}
                body = json.dumps(
                    {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(pair.cert), str(pair.key))
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/validate"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[Webhook]:
    if cluster.control_plane is None:
        pytest.skip("the webhook server listens on this machine's loopback, which only a local API server reaches")
    hook = Webhook(tmp_path)
    name = f"deny-{namespace}.test.aigate.dev"
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": name,
                "clientConfig": {"url": hook.url, "caBundle": base64.b64encode(hook.ca_pem).decode()},
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["configmaps"],
                    }
                ],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 10,
            }
        ],
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(config))
    yield hook
    cluster.kubectl("delete", "validatingwebhookconfiguration", name, "--ignore-not-found", check=False)
    hook.close()


def configmap(name: str, labels: dict[str, str]) -> str:
    meta = {"name": name, "labels": labels}
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}})


def test_validating_webhook_on_loopback_refuses_apply_with_its_message(
    cluster: Cluster, namespace: str, webhook: Webhook
) -> None:
    # the configuration reaches the API server's webhook manager asynchronously: wait until the webhook is consulted
    def denied() -> str | None:
        r = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=configmap("bad", {"deny": "yes"}), check=False)
        return r.stderr if r.returncode != 0 else None

    stderr = cluster.wait_for(denied, what="the webhook to refuse a ConfigMap")
    assert f"denied the request: {DENY_MESSAGE}" in stderr
    assert f'admission webhook "deny-{namespace}.test.aigate.dev"' in stderr
    assert cluster.kubectl("get", "configmap", "bad", "-n", namespace, check=False).returncode != 0

    ok = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=configmap("good", {"deny": "no"}))
    assert "configmap/good created" in ok.stdout
    seen = [(r["request"]["operation"], r["request"]["name"]) for r in webhook.reviews]
    assert ("CREATE", "bad") in seen and ("CREATE", "good") in seen
    assert all(r["request"]["namespace"] == namespace for r in webhook.reviews)
