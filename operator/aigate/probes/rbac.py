"""RBAC probe: what can the workload's ServiceAccount really do, on the verbs that turn an agent into an attacker?

Asked of the API server with SubjectAccessReview, as the ServiceAccount itself would be authorized (user and the
groups every ServiceAccount token carries), so that every binding counts: RoleBindings, ClusterRoleBindings, and
bindings to the ServiceAccount groups, whatever authorizer the cluster runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aigate.measurements import RbacCheck, RbacProbe

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

log = logging.getLogger(__name__)

RBAC_GROUP = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class Sensitive:
    verb: str
    resource: str
    group: str = ""
    subresource: str = ""
    cluster_scoped: bool = False
    """Checked with no namespace: a cluster-scoped resource, or a grant over every namespace."""


SENSITIVE: tuple[Sensitive, ...] = (
    # read every credential in the namespace
    Sensitive("get", "secrets"),
    Sensitive("list", "secrets"),
    # run arbitrary code, with any ServiceAccount of the namespace, or inside a running pod
    Sensitive("create", "pods"),
    Sensitive("create", "pods", subresource="exec"),
    # grant itself (or anyone) more
    Sensitive("create", "roles", RBAC_GROUP),
    Sensitive("patch", "roles", RBAC_GROUP),
    Sensitive("create", "rolebindings", RBAC_GROUP),
    Sensitive("patch", "rolebindings", RBAC_GROUP),
    Sensitive("create", "clusterroles", RBAC_GROUP, cluster_scoped=True),
    Sensitive("patch", "clusterroles", RBAC_GROUP, cluster_scoped=True),
    Sensitive("create", "clusterrolebindings", RBAC_GROUP, cluster_scoped=True),
    Sensitive("patch", "clusterrolebindings", RBAC_GROUP, cluster_scoped=True),
    # act as someone else
    Sensitive("impersonate", "users", cluster_scoped=True),
    Sensitive("impersonate", "groups", cluster_scoped=True),
    Sensitive("impersonate", "serviceaccounts"),
    # everything, in its namespace and everywhere
    Sensitive("*", "*", "*"),
    Sensitive("*", "*", "*", cluster_scoped=True),
)


def probe_service_account(
    api_client: ApiClient, namespace: str, service_account: str, *, timeout_s: float = 10
) -> RbacProbe:
    """One SubjectAccessReview per sensitive check. The caller needs `create subjectaccessreviews`.

    Never raises for an API problem: a refused or failed review is recorded as `error`, which the gate treats
    as unknown rather than clean.
    """
    from kubernetes.client import (  # here, not at the top: the gate process imports this module but never probes
        AuthorizationV1Api,
        V1ResourceAttributes,
        V1SubjectAccessReview,
        V1SubjectAccessReviewSpec,
    )

    api = AuthorizationV1Api(api_client)
    user = f"system:serviceaccount:{namespace}:{service_account}"
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"]
    checks: list[RbacCheck] = []
    for s in SENSITIVE:
        ns = None if s.cluster_scoped else namespace
        review = V1SubjectAccessReview(
            api_version="authorization.k8s.io/v1",
            kind="SubjectAccessReview",
            spec=V1SubjectAccessReviewSpec(
                user=user,
                groups=groups,
                resource_attributes=V1ResourceAttributes(
                    namespace=ns, verb=s.verb, group=s.group, resource=s.resource, subresource=s.subresource or None
                ),
            ),
        )
        try:
            answer = api.create_subject_access_review(review, _request_timeout=timeout_s)
        except Exception as e:  # the API server's refusal is a measurement, not a crash of the gate run
            error = f"SubjectAccessReview for {user} failed: {_describe(e)}"
            log.info("%s", error)
            return RbacProbe(service_account=service_account, namespace=namespace, checks=checks, error=error)
        status = answer.status
        checks.append(
            RbacCheck(
                verb=s.verb,
                resource=s.resource,
                group=s.group,
                subresource=s.subresource,
                namespace=ns,
                allowed=bool(status and status.allowed),
                reason=" ".join(((status.reason or "") if status else "").split()),
            )
        )
    return RbacProbe(service_account=service_account, namespace=namespace, checks=checks)


def rbac_skipped(reason: str, *, namespace: str = "", service_account: str = "") -> RbacProbe:
    """A probe that was not made (e.g. no cluster): the gate reports the permissions as not checked."""
    return RbacProbe(service_account=service_account, namespace=namespace, skipped_reason=reason)


def _describe(e: Exception) -> str:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import MaxRetryError

    if isinstance(e, ApiException):
        return f"HTTP {e.status} {e.reason or ''}".rstrip()
    if isinstance(e, MaxRetryError) and e.reason is not None:
        e = e.reason  # the connection error the retries ended on, not the retry bookkeeping
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}"[:300] if text else type(e).__name__
