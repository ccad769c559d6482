"""The admission webhook configurations aigate installs, and the envelope checks of the reviews they send.

The rollout webhook selects Deployments and kin by the `aigate.dev/workload` label, excludes kube-system and the
operator's own namespace (a broken operator must not block its own repair), and fails closed. Each webhook's path is
its name. `aigate webhook` (aigate.webhook.server) serves them: it answers every malformed request with an
AdmissionReview refusal or a plain 4xx (`parse_review`, `review_problem`), never a 500 or a hang.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping
from typing import Any

from aigate.api.models import API_GROUP, API_VERSION, PLURAL, WORKLOAD_LABEL

logger = logging.getLogger(__name__)

ROLLOUTS_WEBHOOK = "rollouts.aigate.dev"
"""Validating: Deployments and kin labelled aigate.dev/workload."""
ACCEPTANCES_WEBHOOK = "acceptances.aigate.dev"
"""Mutating: records the authenticated user as acceptedBy of new or changed risk acceptances."""
AIWORKLOADS_WEBHOOK = "aiworkloads.aigate.dev"
"""Validating: AIWorkloads as they will be stored (acceptedBy as the mutation wrote it)."""
WEBHOOK_IDS: tuple[str, ...] = (ROLLOUTS_WEBHOOK, ACCEPTANCES_WEBHOOK, AIWORKLOADS_WEBHOOK)

ROLLOUT_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("", "v1", ("pods",)),
    ("apps", "v1", ("deployments", "statefulsets", "daemonsets")),
    ("batch", "v1", ("jobs", "cronjobs")),
    ("argoproj.io", "v1alpha1", ("rollouts",)),
)
"""(group, version, plural resources) the rollout webhook sees; subresources (scale, status) are not rollouts."""

TIMEOUT_SECONDS = 5
MAX_BODY_BYTES = 8 * 1024 * 1024
"""An UPDATE review carries the object and the old object, each up to etcd's 1.5 MiB: 8 MiB is ample."""
READ_TIMEOUT_SECONDS = 10.0


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
    """The rollout webhook (labelled Deployments and kin) and the AIWorkload validation webhook."""
    rollouts = _webhook(
        ROLLOUTS_WEBHOOK,
        client_config,
        [_rule(g, v, r) for g, v, r in ROLLOUT_RULES],
        objectSelector={"matchExpressions": [{"key": WORKLOAD_LABEL, "operator": "Exists"}]},
        namespaceSelector=_excluded_namespaces(operator_namespace, gate_namespace, watch_namespaces),
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
        "webhooks": [rollouts, aiworkloads],
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


# --- the server ------------------------------------------------------------------------------------------------


class BadReview(Exception):
    """The request body is not an AdmissionReview; answered with an HTTP 4xx (there is no uid to answer to)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def parse_review(body: bytes) -> dict[str, Any]:
    """The AdmissionReview in `body`, checked for what the server indexes without looking (BadReview otherwise)."""
    if not body:
        raise BadReview("empty request body; expected an AdmissionReview")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as e:
        raise BadReview(f"request body is not JSON: {str(e)[:200]}") from None
    if not isinstance(doc, dict):
        raise BadReview("request body is not an AdmissionReview (a JSON object)")
    if doc.get("kind") != "AdmissionReview" or not str(doc.get("apiVersion", "")).startswith("admission.k8s.io/"):
        raise BadReview(f"not an AdmissionReview (kind {doc.get('kind')!r}, apiVersion {doc.get('apiVersion')!r})")
    request = doc.get("request")
    if not isinstance(request, dict):
        raise BadReview("AdmissionReview has no request")
    if not isinstance(request.get("uid"), str) or not request["uid"]:
        raise BadReview("AdmissionReview request has no uid")
    return doc


def review_problem(review: Mapping[str, Any]) -> str | None:
    """What a decision needs in a request with a uid; answered as a refusal, since the API server can read one."""
    request = review["request"]
    resource = request.get("resource")
    if not isinstance(resource, dict) or not all(isinstance(resource.get(k), str) for k in ("group", "version")):
        return "AdmissionReview request has no resource (group, version, resource)"
    if not isinstance(resource.get("resource"), str):
        return "AdmissionReview request has no resource (group, version, resource)"
    if not isinstance(request.get("userInfo"), dict):
        return "AdmissionReview request has no userInfo"
    if not isinstance(request.get("object"), dict) and not isinstance(request.get("oldObject"), dict):
        return "AdmissionReview request has neither object nor oldObject"
    return None


def refusal(review: Mapping[str, Any], message: str, code: int) -> dict[str, Any]:
    """A well-formed AdmissionReview answer that refuses the request with `message`."""
    return {
        "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
        "kind": "AdmissionReview",
        "response": {
            "uid": review["request"]["uid"],
            "allowed": False,
            "status": {"code": code, "message": message},
        },
    }
