"""What the admission benches serve and send: `aigate webhook`'s real ASGI app (aigate.webhook.server.App, the real
Reviewer over an Index holding the remediated example, its ConfigMap and passing signed evidence), and the
AdmissionReview of a labelled Deployment it admits (~1.5 KB). bench/admission.py and bench/webhook_server.py both
use them."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from admission_support import NAME, NS, PUB, World  # noqa: E402
from aigate.kube import names  # noqa: E402
from aigate.kube.metrics import Metrics  # noqa: E402
from aigate.policy.governance import PlatformDefault  # noqa: E402
from aigate.webhook.admission import VerifyCache  # noqa: E402
from aigate.webhook.index import Index  # noqa: E402
from aigate.webhook.review import Reviewer  # noqa: E402
from aigate.webhook.server import App  # noqa: E402


def build_app() -> Any:
    world = World()
    world.workload["metadata"].update(uid="u-1", resourceVersion="1")
    for i, cm in enumerate(world.configmaps.values()):
        cm["metadata"].update(uid=f"c-{i}", resourceVersion="1", namespace=world.workload["metadata"]["namespace"])
    index = Index(
        operator_namespace="aigate-system",
        public_key=PUB,
        verify_cache=VerifyCache(),
        platform_default=PlatformDefault(),
    )
    index.apply_workload("ADDED", world.workload)
    for cm in world.configmaps.values():
        index.apply_configmap("ADDED", cm)
    assert world.evidence is not None
    evidence = {
        "metadata": {
            "name": names.trusted_evidence("u-1"),
            "namespace": "aigate-system",
            "uid": "e-1",
            "resourceVersion": "1",
            "labels": {names.WORKLOAD_UID_LABEL: "u-1"},
        },
        "data": world.evidence["data"],
    }
    index.apply_evidence("ADDED", evidence)
    metrics = Metrics()
    reviewer = Reviewer(
        index=index,
        public_key=PUB,
        metrics=metrics,
        ready=lambda: True,
        acceptor_groups=frozenset(),
        watch_namespaces=frozenset(),
        may=lambda *_: True,
    )
    return App(reviewer, metrics, ready=lambda: True)


def review_body(deny: bool = False) -> bytes:
    labels = {"app": "fraud", names.WORKLOAD_LABEL: "nope" if deny else NAME}
    container = {"name": "app", "image": "registry.example/fraud-assistant:1.4.2", "ports": [{"containerPort": 8080}]}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "fraud-assistant", "namespace": NS, "labels": labels},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "fraud"}},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "requestKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "requestResource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": "fraud-assistant",
            "namespace": NS,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:argocd:argocd-application-controller", "groups": []},
            "object": deployment,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }
    return json.dumps(review).encode()
