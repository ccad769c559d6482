"""The webhook's index and reviewer as the review tests drive them: a stand-in for the API's reads (the narrow
fetch interface the index takes), a World fed to the index as its watches would, and AdmissionReview builders.
Shared by test_webhook_review.py and the admission properties."""

from __future__ import annotations

import uuid
from typing import Any

from admission_support import NAME, NS, PUB, World
from aigate.kube import names
from aigate.kube.metrics import Metrics
from aigate.policy.governance import PlatformDefault
from aigate.webhook.admission import VerifyCache
from aigate.webhook.index import Index
from aigate.webhook.review import Reviewer

OPERATOR_NS = "aigate-system"
UID = "wl-uid-1"
ACCEPTORS = frozenset({"aigate:risk-acceptors"})
DEFAULT = PlatformDefault()


class Fetches:
    """A stand-in for the API: the ConfigMaps it holds, and how often each was asked for."""

    def __init__(self, held: dict[tuple[str, str], dict[str, Any]] | None = None) -> None:
        self.held = held or {}
        self.asked: list[tuple[str, str]] = []

    def __call__(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.asked.append((namespace, name))
        return self.held.get((namespace, name))


def versioned(world: World) -> World:
    world.workload["metadata"].update(uid=UID, resourceVersion="10")
    for i, cm in enumerate(world.configmaps.values()):
        cm["metadata"].update(uid=f"cm-{i}", resourceVersion=str(20 + i), namespace=NS)
    return world


def trusted_evidence(world: World) -> dict[str, Any]:
    assert world.evidence is not None
    return {
        "metadata": {
            "name": names.trusted_evidence(UID),
            "namespace": OPERATOR_NS,
            "uid": "ev-1",
            "resourceVersion": "30",
            "labels": {names.WORKLOAD_UID_LABEL: UID, names.ROLE_LABEL: "evidence"},
        },
        "data": dict(world.evidence["data"]),
    }


class Setup:
    def __init__(self, *, ready: bool = True, fetch: Fetches | None = None, default: PlatformDefault = DEFAULT) -> None:
        self.world = versioned(World())
        self.fetch = fetch if fetch is not None else Fetches({(NS, n): cm for n, cm in self.world.configmaps.items()})
        self.deployments = Fetches()
        """The API's Deployments: the one GET a Rollout's spec.workloadRef costs (index.api_fetcher in a cluster)."""
        self.index = Index(
            operator_namespace=OPERATOR_NS,
            public_key=PUB,
            verify_cache=VerifyCache(),
            platform_default=default,
            fetch_configmap=self.fetch,
            fetch_deployment=self.deployments,
        )
        self.metrics = Metrics()
        self.is_ready = ready
        self.reviewer = Reviewer(
            index=self.index,
            public_key=PUB,
            metrics=self.metrics,
            ready=lambda: self.is_ready,
            acceptor_groups=ACCEPTORS,
            watch_namespaces=frozenset(),
            may=lambda user, verb, resource, ns, name: name != "forbidden",
        )

    def feed(self) -> None:
        """The watches' first listings, ConfigMaps before the workload (as at start-up), then the list's end."""
        for cm in self.world.configmaps.values():
            self.index.apply_configmap("ADDED", cm)
        self.index.apply_workload("ADDED", self.world.workload)
        self.index.apply_evidence("ADDED", trusted_evidence(self.world))
        self.index.configmaps_listed()


def rollout_review(workload: str = NAME, kind: str = "Deployment", **meta: Any) -> dict[str, Any]:
    obj = {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": "fraud-app", "namespace": NS, "labels": {"app": "fraud", names.WORKLOAD_LABEL: workload}},
    }
    obj["metadata"].update(meta)
    return review("apps", "deployments", obj)


def review(group: str, resource: str, obj: dict[str, Any], **request: Any) -> dict[str, Any]:
    req = {
        "uid": str(uuid.uuid4()),
        "resource": {"group": group, "version": "v1", "resource": resource},
        "namespace": NS,
        "operation": "CREATE",
        "userInfo": {"username": "alice", "groups": ["aigate:risk-acceptors"]},
        "object": obj,
    }
    req.update(request)
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}
