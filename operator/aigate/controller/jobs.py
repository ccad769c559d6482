"""The objects the operator creates for one gate run, as plain dicts in the shape the Kubernetes API takes.

Pure builders, no I/O: the operator creates them, the tests read them. The gate Job gets the least it needs:
read its own AIWorkload and the ConfigMaps that workload references, write its one result ConfigMap. API keys
reach it as env through `secretKeyRef` (resolved by the kubelet, so the pod needs no `get secrets`); the
evidence signing key never leaves the operator.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from aigate.api.models import AIWorkload, Credentials, SecretKeyRef
from aigate.controller import names

GATE_JOB_ROLE = "gate-job"
GATE_RESULT_ROLE = "gate-result"
CONTAINER_NAME = "gate"
DEFAULT_COMMAND = ("aigate",)
TMP_VOLUME = "tmp"
JOB_NAME_ENV = "AIGATE_JOB_NAME"
"""Set from the pod's `job-name` label (the Job controller writes it), so the result names its Job."""

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

Obj = dict[str, Any]


def owner_reference(workload: AIWorkload) -> Obj:
    """The AIWorkload as controller owner: deleting it garbage-collects everything built here."""
    uid = workload.metadata.uid
    if not uid:
        raise ValueError(f"AIWorkload {workload.metadata.name!r} has no metadata.uid (read it from the API server)")
    return {
        "apiVersion": workload.api_version,
        "kind": workload.kind,
        "name": workload.metadata.name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def secret_refs(workload: AIWorkload) -> list[SecretKeyRef]:
    """Every distinct Secret key the gate run needs (models, MCP servers, human route), in a stable order."""
    spec = workload.spec
    creds: list[Credentials | None] = [m.credentials for m in spec.models]
    creds += [s.credentials for s in spec.mcp_servers]
    if spec.fallback.human_route is not None:
        creds.append(spec.fallback.human_route.credentials)
    seen: dict[tuple[str, str], SecretKeyRef] = {}
    for c in creds:
        if c is not None and c.secret_ref is not None:
            seen.setdefault((c.secret_ref.name, c.secret_ref.key), c.secret_ref)
    return [seen[k] for k in sorted(seen)]


def _meta(workload: AIWorkload, name: str, role: str | None, owner_ref: Obj) -> Obj:
    labels = {names.GATE_FOR_LABEL: workload.metadata.name}
    if role is not None:
        labels[names.ROLE_LABEL] = role
    return {
        "name": name,
        "namespace": workload.metadata.namespace,
        "labels": labels,
        "ownerReferences": [dict(owner_ref)],
    }


def gate_rbac(workload: AIWorkload, referenced_configmaps: list[str], owner_ref: Obj) -> list[Obj]:
    """ServiceAccount, Role and RoleBinding of the gate Job, in creation order.

    Every rule names its objects: an empty `resourceNames` would mean *all* names, so a workload that references
    no ConfigMap gets no rule for them at all. No rule on Secrets.
    """
    wl = workload.metadata.name
    sa = names.gate_service_account(wl)
    result_cm = names.result_configmap(wl)
    rules: list[Obj] = [
        {"apiGroups": [names.API_GROUP], "resources": [names.PLURAL], "resourceNames": [wl], "verbs": ["get"]},
    ]
    readable = sorted(set(referenced_configmaps))
    if readable:
        rules.append({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": readable, "verbs": ["get"]})
    rules.append(
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [result_cm],
            "verbs": ["get", "update", "patch"],
        }
    )
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(workload, sa, None, owner_ref),
            "automountServiceAccountToken": True,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(workload, sa, None, owner_ref),
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta(workload, sa, None, owner_ref),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": sa},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": workload.metadata.namespace}],
        },
    ]


def result_configmap(workload: AIWorkload, owner_ref: Obj) -> Obj:
    """Created empty by the operator before the Job, so that the Job's Role can name it (no `create` needed)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(workload, names.result_configmap(workload.metadata.name), GATE_RESULT_ROLE, owner_ref),
        "data": {},
    }


DEFAULT_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "500m", "memory": "256Mi"},
    "limits": {"memory": "1Gi"},
}


def gate_job(
    workload: AIWorkload,
    spec_digest: str,
    run_id: str,
    owner_ref: Obj,
    *,
    image: str,
    active_deadline_s: int,
    ttl_after_finished_s: int,
    backoff_limit: int,
    command: list[str] | None = None,
    resources: Obj | None = None,
) -> Obj:
    """The batch/v1 Job that runs `aigate run-gates` for one spec digest.

    `resources` defaults to DEFAULT_RESOURCES: a CPU request (a gate run measures latency, and a starved client
    reads as a slow provider) and no CPU limit (CFS throttling would add latency of its own to what is measured).

    RUN_ID is part of the Job name, so it must be a short lowercase DNS label (e.g. 6 hex characters).
    """
    if not _DNS1123_LABEL.match(run_id):
        raise ValueError(f"run id {run_id!r} must be a lowercase DNS label (a-z, 0-9, '-')")
    wl = workload.metadata.name
    ns = workload.metadata.namespace
    job_name = names.gate_job(wl, spec_digest, run_id)
    labels = {names.GATE_FOR_LABEL: wl, names.ROLE_LABEL: GATE_JOB_ROLE}
    annotations = {names.DIGEST_ANNOTATION: spec_digest, names.RUN_ANNOTATION: run_id}
    argv = [*(command or DEFAULT_COMMAND)]
    argv += ["run-gates", "--namespace", ns, "--name", wl, "--spec-digest", spec_digest, "--run-id", run_id]
    env: list[Obj] = [
        {"name": JOB_NAME_ENV, "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['job-name']"}}},
        # a read-only root filesystem: no .pyc files
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
    ]
    env += [
        {
            "name": names.secret_env_name(ref.name, ref.key),
            "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}},
        }
        for ref in secret_refs(workload)
    ]
    container: Obj = {
        "name": CONTAINER_NAME,
        "image": image,
        # a tag other than :latest is not pulled when the node has it (a locally built image, or a pinned release)
        "imagePullPolicy": "IfNotPresent",
        "command": argv,
        "env": env,
        "resources": copy.deepcopy(DEFAULT_RESOURCES if resources is None else resources),
        "securityContext": {
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
        },
        # the root filesystem is read-only: /tmp is the one writable place (the pod's own, size-capped)
        "volumeMounts": [{"name": TMP_VOLUME, "mountPath": "/tmp"}],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {**_meta(workload, job_name, GATE_JOB_ROLE, owner_ref), "annotations": annotations},
        "spec": {
            "backoffLimit": backoff_limit,
            "activeDeadlineSeconds": active_deadline_s,
            "ttlSecondsAfterFinished": ttl_after_finished_s,
            "template": {
                "metadata": {"labels": dict(labels), "annotations": dict(annotations)},
                "spec": {
                    "serviceAccountName": names.gate_service_account(wl),
                    "automountServiceAccountToken": True,
                    "restartPolicy": "Never",
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        # numeric, so the kubelet can check runAsNonRoot whatever USER the image names
                        "runAsUser": 65532,
                        "runAsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [{"name": TMP_VOLUME, "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    }
