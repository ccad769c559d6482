"""The few Kubernetes API calls the operator makes, over the official client (synchronous; the handlers
call these in a worker thread)."""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Callable, Mapping
from typing import Any, cast

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from aigate.api.load import ConfigMapLookup, configmap_lookup
from aigate.api.models import API_GROUP, API_VERSION, PLURAL
from aigate.api.policy import POLICY_PLURAL
from aigate.kube.names import RUN_LABEL
from aigate.times import rfc3339, utcnow

JSON = dict[str, Any]


def load_api_client(environ: Mapping[str, str] | None = None) -> tuple[k8s.ApiClient, str]:
    """The one Kubernetes client loader (operator, webhook, gate Job), and a phrase saying which config it used.

    KUBECONFIG first, when set: nobody sets it by accident, and a process started by hand or by a test (the local
    control plane's tests) must talk to the cluster it names even if it happens to run in a pod. Else the
    in-cluster ServiceAccount, which is how aigate runs when installed. Else ~/.kube/config, as kubectl does."""
    env = os.environ if environ is None else environ
    kubeconfig = env.get("KUBECONFIG")
    if kubeconfig:
        path = kubeconfig.split(os.pathsep)[0]
        api: k8s.ApiClient = k8s_config.new_client_from_config(config_file=path)  # type: ignore[no-untyped-call]
        return api, f"kubeconfig {path} (KUBECONFIG is set)"
    try:
        cfg = k8s.Configuration()
        k8s_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        return k8s.ApiClient(cfg), "in-cluster ServiceAccount (KUBECONFIG is not set)"
    except k8s_config.ConfigException:
        default = os.path.expanduser("~/.kube/config")
        api = k8s_config.new_client_from_config(config_file=default)  # type: ignore[no-untyped-call]
        return api, f"kubeconfig {default} (neither KUBECONFIG nor an in-cluster ServiceAccount)"


class Kube:
    def __init__(self, api: k8s.ApiClient) -> None:
        self.api = api
        self.core = k8s.CoreV1Api(api)
        self.batch = k8s.BatchV1Api(api)
        self.rbac = k8s.RbacAuthorizationV1Api(api)
        self.custom = k8s.CustomObjectsApi(api)

    # ---- reading --------------------------------------------------------------------------------------------------
    def get_workload(self, namespace: str, name: str) -> JSON | None:
        try:
            obj = self.custom.get_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, name)
            return cast(JSON, obj)
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def get_configmap(self, namespace: str, name: str) -> JSON | None:
        try:
            cm = self.core.read_namespaced_config_map(name, namespace)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return self._plain(cm)

    def configmap_lookup(self, namespace: str) -> ConfigMapLookup:
        """A lookup for `aigate.api.load.resolve` that reads ConfigMaps through the API."""

        def read(name: str) -> JSON | None:
            cm = self.get_configmap(namespace, name)
            return None if cm is None else (cm.get("data") or {})

        return configmap_lookup(namespace, read)

    def get_secret_key(self, namespace: str, name: str, key: str) -> str | None:
        """One key of a Secret, decoded; None when the Secret or the key does not exist. Never logged."""
        try:
            secret = self.core.read_namespaced_secret(name, namespace)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        raw = (secret.data or {}).get(key)
        return None if raw is None else base64.b64decode(raw).decode("utf-8")

    def labelled_runs(self, namespace: str, selector: str) -> set[str]:
        """The run ids of the gate-run material matching `selector` (Secrets, ConfigMaps, ServiceAccounts)."""
        found: set[str] = set()
        for items in (
            self.core.list_namespaced_secret(namespace, label_selector=selector).items,
            self.core.list_namespaced_config_map(namespace, label_selector=selector).items,
            self.core.list_namespaced_service_account(namespace, label_selector=selector).items,
        ):
            for obj in items:
                run = ((obj.metadata.labels if obj.metadata else None) or {}).get(RUN_LABEL)
                if run:
                    found.add(run)
        return found

    def may(self, userinfo: Mapping[str, Any], verb: str, resource: str, namespace: str, name: str) -> bool:
        """A SubjectAccessReview: may the user of an admission request `verb` this object?"""
        extra = {k: list(v) for k, v in (userinfo.get("extra") or {}).items()}
        review = k8s.V1SubjectAccessReview(
            spec=k8s.V1SubjectAccessReviewSpec(
                user=userinfo.get("username"),
                groups=list(userinfo.get("groups") or []),
                uid=userinfo.get("uid"),
                extra=extra or None,
                resource_attributes=k8s.V1ResourceAttributes(
                    verb=verb, resource=resource, namespace=namespace, name=name
                ),
            )
        )
        answer = k8s.AuthorizationV1Api(self.api).create_subject_access_review(review)
        return bool(answer.status and answer.status.allowed)

    def policies(self) -> list[JSON]:
        """Every AIGatePolicy (none when the CRD is not installed)."""
        try:
            found = self.custom.list_cluster_custom_object(API_GROUP, API_VERSION, POLICY_PLURAL)
        except ApiException as e:
            if e.status == 404:
                return []
            raise
        return cast(list[JSON], cast(JSON, found).get("items", []))

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        meta = self.core.read_namespace(namespace).metadata
        return dict((meta.labels if meta else None) or {})

    def get_job(self, namespace: str, name: str) -> JSON | None:
        try:
            return self._plain(self.batch.read_namespaced_job(name, namespace))
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def list_jobs(self, namespace: str, selector: str) -> list[JSON]:
        jobs = self.batch.list_namespaced_job(namespace, label_selector=selector)
        return cast(list[JSON], self._plain(jobs).get("items", []))

    def _plain(self, obj: object) -> JSON:
        """The client's typed model as the plain JSON the API sent."""
        return cast(JSON, self.api.sanitize_for_serialization(obj))  # type: ignore[no-untyped-call]

    # ---- writing --------------------------------------------------------------------------------------------------
    def apply(self, obj: JSON) -> None:
        """Create, or replace what exists (our own objects only: ServiceAccount, Role, RoleBinding, ConfigMap,
        Secret)."""
        kind, ns, name = obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"]
        ops: dict[str, tuple[Callable[..., Any], Callable[..., Any] | None]] = {
            "ServiceAccount": (self.core.create_namespaced_service_account, self.core.patch_namespaced_service_account),
            "ConfigMap": (self.core.create_namespaced_config_map, self.core.replace_namespaced_config_map),
            "Secret": (self.core.create_namespaced_secret, self.core.replace_namespaced_secret),
            "Role": (self.rbac.create_namespaced_role, self.rbac.replace_namespaced_role),
            "RoleBinding": (self.rbac.create_namespaced_role_binding, self.rbac.replace_namespaced_role_binding),
            "Job": (self.batch.create_namespaced_job, None),
        }
        create, replace = ops[kind]
        try:
            create(ns, obj)
        except ApiException as e:
            if e.status != 409 or replace is None:
                raise
            replace(name, ns, obj)

    def create(self, obj: JSON) -> JSON:
        """Create a Job and return it as stored (with its uid)."""
        assert obj["kind"] == "Job"
        return self._plain(self.batch.create_namespaced_job(obj["metadata"]["namespace"], cast(Any, obj)))

    def delete_labelled(self, namespace: str, selector: str, *, jobs: bool = True) -> None:
        """Delete every object aigate makes in another namespace matching `selector`: the Secrets first (the
        credentials must not outlive the run), then ConfigMaps, the run's RBAC and (with `jobs`) the Jobs with
        their pods. Without `jobs` a finished Job stays for people to read until its ttlSecondsAfterFinished."""
        deletes = [
            self.core.delete_collection_namespaced_secret,
            self.core.delete_collection_namespaced_config_map,
            self.rbac.delete_collection_namespaced_role_binding,
            self.rbac.delete_collection_namespaced_role,
            self.core.delete_collection_namespaced_service_account,
        ]
        if jobs:
            deletes.append(self.batch.delete_collection_namespaced_job)
        self._delete_collections(namespace, selector, deletes)

    def delete_labelled_configmaps(self, namespace: str, selector: str) -> None:
        """The trusted evidence copies in the operator's own namespace, where ConfigMaps are all aigate writes (and
        all the chart lets it delete: its Secrets there are the signing key and the serving certificate)."""
        self._delete_collections(namespace, selector, [self.core.delete_collection_namespaced_config_map])

    def _delete_collections(self, namespace: str, selector: str, deletes: list[Any]) -> None:
        background = k8s.V1DeleteOptions(propagation_policy="Background")
        for delete in deletes:
            try:
                delete(namespace, label_selector=selector, body=background)
            except ApiException as e:
                if e.status != 404:
                    raise

    def delete_job(self, namespace: str, name: str) -> None:
        try:
            self.batch.delete_namespaced_job(name, namespace, propagation_policy="Background")
        except ApiException as e:
            if e.status != 404:
                raise

    def patch_status(self, namespace: str, name: str, status: JSON) -> None:
        """A merge patch of the status subresource: each list in it (conditions) is replaced whole, so no
        condition is lost to a partial update."""
        try:
            self.custom.patch_namespaced_custom_object_status(
                API_GROUP,
                API_VERSION,
                namespace,
                PLURAL,
                name,
                {"status": status},
                _content_type="application/merge-patch+json",
            )
        except ApiException as e:
            if e.status != 404:  # deleted since it was read: there is no status left to say anything in
                raise

    def event(self, workload: JSON, type_: str, reason: str, message: str) -> None:
        """A core/v1 Event on the AIWorkload, as `kubectl describe` shows them."""
        meta = workload["metadata"]
        now = rfc3339(utcnow())
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": f"{API_GROUP}/{API_VERSION}",
                "kind": "AIWorkload",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "aigate-operator"},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        with contextlib.suppress(ApiException):  # an Event is best effort: never fail a reconcile over it
            self.core.create_namespaced_event(meta["namespace"], cast(Any, body))
