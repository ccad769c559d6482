"""The admission webhook configurations aigate installs: which requests the API server sends to `aigate webhook`.

The rollout webhook selects Deployments and kin by the `aigate.dev/workload` label, excludes kube-system and the
operator's own namespace (a broken operator must not block its own repair), and fails closed. The workloadRef
webhook selects the unlabelled Argo Rollouts that carry spec.workloadRef (a CEL matchCondition), the same way
otherwise. Each webhook's path is its name. The chart installs the same webhooks (tests/test_chart.py compares all
but clientConfig and the namespaces); hack/ and the benches install these. `aigate webhook` (aigate.webhook.server)
serves them, and webhook/envelope.py checks what they send.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any

from aigate.api.models import API_GROUP, API_VERSION, PLURAL, WORKLOAD_LABEL
from aigate.kube.names import ACCEPTANCES_WEBHOOK, AIWORKLOADS_WEBHOOK, ROLLOUTS_WEBHOOK, WORKLOADREFS_WEBHOOK
from aigate.policy.kinds import GATED_KINDS

logger = logging.getLogger(__name__)

ROLLOUT_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = tuple(
    (group, version, tuple(k.resource for k in GATED_KINDS if (k.group, k.version) == (group, version)))
    for group, version in dict.fromkeys((k.group, k.version) for k in GATED_KINDS)
)
"""(group, version, plural resources) the rollout webhook sees, from policy.kinds.GATED_KINDS; subresources
(scale, status) are not rollouts."""

WORKLOADREF_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = tuple(
    (k.group, k.version, (k.resource,)) for k in GATED_KINDS if k.workload_ref is not None
)
"""(group, version, plural resources) the workloadRef webhook sees: the kinds that name a Deployment to run."""

WORKLOADREF_CONDITIONS: list[dict[str, str]] = [
    {"name": "has-workload-ref", "expression": "has(object.spec) && has(object.spec.workloadRef)"}
]
"""Only the objects that carry a workloadRef reach the workloadRef webhook (CEL, Kubernetes 1.30+, the chart's
floor); an unlabelled Rollout with a template of its own is not aigate's."""

TIMEOUT_SECONDS = 5


def client_config_for(client_config: Mapping[str, Any], webhook_id: str) -> dict[str, Any]:
    """`client_config` with the path of `webhook_id` appended (to `url`, or to `service.path`)."""
    out = dict(client_config)
    if "url" in out:
        out["url"] = str(out["url"]).rstrip("/") + "/" + webhook_id
    elif "service" in out:
        service = dict(out["service"])
        service["path"] = str(service.get("path") or "").rstrip("/") + "/" + webhook_id
        out["service"] = service
    else:
        raise ValueError("client_config needs a url or a service")
    return out


def _webhook(
    webhook_id: str, client_config: Mapping[str, Any], rules: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    return {
        "name": webhook_id,
        "clientConfig": client_config_for(client_config, webhook_id),
        "rules": rules,
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "sideEffects": "None",
        "timeoutSeconds": TIMEOUT_SECONDS,
        "admissionReviewVersions": ["v1"],
        **extra,
    }


def _rule(group: str, version: str, resources: Collection[str]) -> dict[str, Any]:
    return {
        "apiGroups": [group],
        "apiVersions": [version],
        "operations": ["CREATE", "UPDATE"],
        "resources": list(resources),
        "scope": "Namespaced",
    }


def _excluded_namespaces(
    operator_namespace: str, gate_namespace: str = "aigate-gates", watch_namespaces: Collection[str] = ()
) -> dict[str, Any]:
    """Not aigate's own namespaces nor kube-system (the operator does not gate AIWorkloads there either:
    `policy.lifecycle.excluded_because`); with a watch list, only the watched namespaces, so that a rollout where
    the operator does not look is not refused as "AIWorkload not found"."""
    excluded = sorted({"kube-system", operator_namespace, gate_namespace})
    key = "kubernetes.io/metadata.name"
    expressions: list[dict[str, Any]] = [{"key": key, "operator": "NotIn", "values": excluded}]
    if watch_namespaces:
        expressions.append({"key": key, "operator": "In", "values": sorted(set(watch_namespaces))})
    return {"matchExpressions": expressions}


def validating_configuration(
    client_config: Mapping[str, Any],
    *,
    operator_namespace: str,
    name: str = "aigate",
    gate_namespace: str = "aigate-gates",
    watch_namespaces: Collection[str] = (),
) -> dict[str, Any]:
    """The rollout webhook (labelled Deployments and kin), the workloadRef webhook (unlabelled Rollouts naming a
    Deployment) and the AIWorkload validation webhook."""
    rollouts = _webhook(
        ROLLOUTS_WEBHOOK,
        client_config,
        [_rule(g, v, r) for g, v, r in ROLLOUT_RULES],
        objectSelector={"matchExpressions": [{"key": WORKLOAD_LABEL, "operator": "Exists"}]},
        namespaceSelector=_excluded_namespaces(operator_namespace, gate_namespace, watch_namespaces),
    )
    # unlabelled objects naming a Deployment to run (an Argo Rollout's spec.workloadRef): judged by that Deployment's
    # label; a labelled one goes to the rollout webhook, which reads the Deployment's label as well
    workloadrefs = _webhook(
        WORKLOADREFS_WEBHOOK,
        client_config,
        [_rule(g, v, r) for g, v, r in WORKLOADREF_RULES],
        objectSelector={"matchExpressions": [{"key": WORKLOAD_LABEL, "operator": "DoesNotExist"}]},
        namespaceSelector=_excluded_namespaces(operator_namespace, gate_namespace, watch_namespaces),
        matchConditions=WORKLOADREF_CONDITIONS,
    )
    aiworkloads = _webhook(
        AIWORKLOADS_WEBHOOK,
        client_config,
        [_rule(API_GROUP, API_VERSION, [PLURAL])],
        namespaceSelector=_excluded_namespaces(operator_namespace, gate_namespace, watch_namespaces),
    )
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "aigate"}},
        "webhooks": [rollouts, workloadrefs, aiworkloads],
    }


def mutating_configuration(
    client_config: Mapping[str, Any],
    *,
    operator_namespace: str,
    name: str = "aigate",
    gate_namespace: str = "aigate-gates",
    watch_namespaces: Collection[str] = (),
) -> dict[str, Any]:
    """The risk-acceptance mutation; re-invoked if a later mutating webhook changes the object (it is idempotent)."""
    acceptances = _webhook(
        ACCEPTANCES_WEBHOOK,
        client_config,
        [_rule(API_GROUP, API_VERSION, [PLURAL])],
        namespaceSelector=_excluded_namespaces(operator_namespace, gate_namespace, watch_namespaces),
        reinvocationPolicy="IfNeeded",
    )
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "aigate"}},
        "webhooks": [acceptances],
    }
