"""The admission webhook configurations aigate installs, and the HTTPS server that answers them.

The configurations are rendered here rather than left to kopf's auto-managed ones: the rollout webhook selects
Deployments and kin by the `aigate.dev/workload` label, excludes kube-system and the operator's own namespace (a
broken operator must not block its own repair), and fails closed; kopf's generated configuration can express none of
that. kopf routes a request to the handler whose id is the last path segment, so each webhook's path is its id.

`AdmissionServer` is kopf's `WebhookServer` (same TLS handling, certificate reload every `file_check_interval`)
with a stricter front door: a bounded body read with a deadline, and an AdmissionReview answer (or a plain 4xx)
for every malformed request, where kopf answers some with an HTTP 500 or, for an unknown path, admits.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Collection, Mapping
from typing import Any

import aiohttp.web
import kopf
from kopf._cogs.structs import reviews
from kopf._core.engines import admission as kopf_admission

from aigate.api.models import API_GROUP, API_VERSION, PLURAL, WORKLOAD_LABEL

logger = logging.getLogger(__name__)

ROLLOUTS_WEBHOOK = "rollouts.aigate.dev"
"""Validating: Deployments and kin labelled aigate.dev/workload."""
ACCEPTANCES_WEBHOOK = "acceptances.aigate.dev"
"""Mutating: records the authenticated user as acceptedBy of new or changed risk acceptances."""
AIWORKLOADS_WEBHOOK = "aiworkloads.aigate.dev"
"""Validating: AIWorkloads as they will be stored (acceptedBy as the mutation wrote it)."""
WEBHOOK_IDS: tuple[str, ...] = (ROLLOUTS_WEBHOOK, ACCEPTANCES_WEBHOOK, AIWORKLOADS_WEBHOOK)
ROLLOUTS_ID, ACCEPTANCES_ID, AIWORKLOADS_ID = ROLLOUTS_WEBHOOK, ACCEPTANCES_WEBHOOK, AIWORKLOADS_WEBHOOK
"""The same ids under the names controller/handlers.py imports."""

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


async def read_body(request: aiohttp.web.Request, *, limit: int, timeout: float) -> bytes:
    """The body, at most `limit` bytes, within `timeout` seconds (a client that stalls mid-body is cut off)."""
    if request.content_length is not None and request.content_length > limit:
        raise BadReview(f"request body of {request.content_length} bytes is above the {limit}-byte limit", 413)
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            while chunk := await request.content.read(64 * 1024):
                body += chunk
                if len(body) > limit:
                    raise BadReview(f"request body is above the {limit}-byte limit", 413)
    except TimeoutError:
        raise BadReview(f"request body not received within {timeout:g}s", 408) from None
    return bytes(body)


def parse_review(body: bytes) -> dict[str, Any]:
    """The AdmissionReview in `body`, checked for what kopf indexes without looking (BadReview otherwise)."""
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


def _review_problem(review: Mapping[str, Any]) -> str | None:
    """What kopf needs in a request with a uid; answered as a refusal, since the API server can read one."""
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


class AdmissionServer(kopf.WebhookServer):
    """kopf's webhook server with a front door that never answers a malformed request with a 500 or a hang.

    `webhook_ids` lists the paths served; kopf itself runs every handler (and so admits, when none matches) for
    a path it does not know."""

    def __init__(
        self,
        *,
        webhook_ids: Collection[str] = WEBHOOK_IDS,
        max_body_bytes: int = MAX_BODY_BYTES,
        read_timeout: float = READ_TIMEOUT_SECONDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.webhook_ids = frozenset(webhook_ids)
        self.max_body_bytes = max_body_bytes
        self.read_timeout = read_timeout

    async def _serve(  # type: ignore[override]
        self, fn: reviews.WebhookFn, request: aiohttp.web.Request
    ) -> aiohttp.web.Response:
        webhook = request.match_info.get("id")
        if webhook not in self.webhook_ids:
            return aiohttp.web.json_response({"error": f"no webhook at /{webhook}"}, status=404)
        try:
            review = parse_review(await read_body(request, limit=self.max_body_bytes, timeout=self.read_timeout))
        except BadReview as e:
            return aiohttp.web.json_response({"error": str(e)}, status=e.status)
        problem = _review_problem(review)
        if problem is not None:
            return aiohttp.web.json_response(refusal(review, problem, 400))
        headers = dict(request.headers)
        sslpeer = request.transport.get_extra_info("peercert") if request.transport else None
        try:
            response = await fn(review, webhook=webhook, sslpeer=sslpeer, headers=headers)  # type: ignore[arg-type]
        except kopf_admission.UnknownResourceError:
            resource = review["request"]["resource"]
            what = f"{resource['group'] or 'core'}/{resource['version']}/{resource['resource']}"
            return aiohttp.web.json_response(refusal(review, f"aigate has no admission handler for {what}", 400))
        except kopf_admission.WebhookError as e:
            return aiohttp.web.json_response(refusal(review, f"aigate cannot judge this request: {e}", 400))
        except Exception:
            logger.exception("admission request %s failed", review["request"]["uid"])
            return aiohttp.web.json_response(refusal(review, "aigate admission webhook internal error", 500))
        return aiohttp.web.json_response(response)
