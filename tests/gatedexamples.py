"""One small object of each custom gated kind (operator/aigate/policy/kinds.py), valid against its upstream CRD
(hack/build-upstream-crds.sh), as a team writes it: the unit tests review them, tests/cluster/test_chart_e2e.py
sends them through the API server, and docs/gated-kinds.md shows the same shapes."""

from __future__ import annotations

import copy
from typing import Any

from aigate.api.models import WORKLOAD_LABEL
from aigate.policy.kinds import GATED_KINDS, GatedKind

IMAGE = "registry.example/fraud-model:1.0"
MCP_IMAGE = "ghcr.io/example/casetools-mcp:1.2.0"


def _container(image: str) -> dict[str, Any]:
    return {"name": "app", "image": image}


def _spec(kind: str, name: str, image: str) -> dict[str, Any]:
    pod = {"containers": [_container(image)]}
    specs: dict[str, dict[str, Any]] = {
        "Rollout": {
            "selector": {"matchLabels": {"app": name}},
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        },
        "InferenceService": {"predictor": pod},
        "LLMInferenceService": {"model": {"uri": "hf://example/fraud-model"}, "template": pod},
        "LeaderWorkerSet": {
            "replicas": 1,
            "leaderWorkerTemplate": {"size": 2, "workerTemplate": {"metadata": {"labels": {"app": name}}, "spec": pod}},
        },
        "Service": {"template": {"spec": pod}},
        "MCPServer": {"image": image, "transport": "streamable-http", "proxyPort": 8080},
    }
    return copy.deepcopy(specs[kind])


CUSTOM: tuple[GatedKind, ...] = tuple(k for k in GATED_KINDS if k.value is not None)


def gated_object(
    kind: GatedKind, namespace: str, name: str, workload: str | None, image: str | None = None
) -> dict[str, Any]:
    """An object of `kind` named `name`, labelled for `workload` (None: unlabelled), running `image`."""
    labels = {"app": name, **({WORKLOAD_LABEL: workload} if workload is not None else {})}
    default = MCP_IMAGE if kind.mcp is not None else IMAGE
    return {
        "apiVersion": f"{kind.group}/{kind.version}",
        "kind": kind.kind,
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": _spec(kind.kind, name, image or default),
    }
