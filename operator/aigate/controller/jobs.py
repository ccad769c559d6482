"""The objects the operator creates for one gate run, as plain dicts in the shape the Kubernetes API takes.

Pure builders, no I/O: the operator creates them, the tests read them. Every object of a run lives in the gate
namespace (`AIGATE_GATE_NAMESPACE`), which the operator owns and tenants have no rights in: a team member who may
edit everything in their own namespace can neither see the run's Secret, nor exec into its pod, nor run a pod
under its ServiceAccount, nor write its result.

Everything the run needs travels there from the operator: the resolved spec (`input`: the workload and the
referenced ConfigMap keys, so the Job reads nothing in the workload's namespace), and the credential keys the
workload names, copied into a per-run Secret that the operator deletes when the run ends. The gate pod keeps a
ServiceAccount token, with a Role that allows reading its input and writing its result and nothing else: the
result must reach the operator through the API (a pod log is not a channel every node offers the same way), and
a result written by anyone else is refused anyway (the operator takes a result only from the Job whose uid it
recorded). Every object carries the run's and the workload's labels: cleanup deletes by label, since an owner
reference cannot point across namespaces. The evidence signing key never leaves the operator.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aigate.api.models import AIWorkload, Credentials, SecretKeyRef
from aigate.kube import names
from aigate.kube.config import DEFAULT_RESOURCES

CONTAINER_NAME = "gate"
DEFAULT_COMMAND = ("aigate",)
TMP_VOLUME = "tmp"

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

Obj = dict[str, Any]


@dataclass(frozen=True)
class GateRun:
    """One gate run: which workload, which spec, where."""

    gate_namespace: str
    workload_namespace: str
    workload_name: str
    workload_uid: str
    digest: str
    run_id: str

    def __post_init__(self) -> None:
        if not _DNS1123_LABEL.match(self.run_id):
            raise ValueError(f"run id {self.run_id!r} must be a lowercase DNS label (a-z, 0-9, '-')")
        if not self.workload_uid:
            raise ValueError(f"AIWorkload {self.workload_name!r} has no metadata.uid (read it from the API server)")

    @staticmethod
    def of(workload: AIWorkload, gate_namespace: str, digest: str, run_id: str) -> GateRun:
        return GateRun(
            gate_namespace=gate_namespace,
            workload_namespace=workload.metadata.namespace,
            workload_name=workload.metadata.name,
            workload_uid=workload.metadata.uid or "",
            digest=digest,
            run_id=run_id,
        )

    @property
    def job(self) -> str:
        return names.gate_job(self.workload_name, self.digest, self.run_id)

    @property
    def selector(self) -> str:
        """Every object of this run."""
        return f"{names.RUN_LABEL}={self.run_id},{names.WORKLOAD_UID_LABEL}={self.workload_uid}"

    def labels(self, role: str | None) -> dict[str, str]:
        out = {names.RUN_LABEL: self.run_id, names.WORKLOAD_UID_LABEL: self.workload_uid}
        if role is not None:
            out[names.ROLE_LABEL] = role
        return out

    def annotations(self) -> dict[str, str]:
        return {
            names.FOR_NAMESPACE_ANNOTATION: self.workload_namespace,
            names.FOR_NAME_ANNOTATION: self.workload_name,
            names.DIGEST_ANNOTATION: self.digest,
            names.RUN_ANNOTATION: self.run_id,
        }

    def meta(self, name: str, role: str | None) -> Obj:
        return {
            "name": name,
            "namespace": self.gate_namespace,
            "labels": self.labels(role),
            "annotations": self.annotations(),
        }


def owner_reference(workload: AIWorkload) -> Obj:
    """The AIWorkload as controller owner of what stays in its namespace (the read-only evidence copy)."""
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


def workload_selector(workload_uid: str) -> str:
    """Every object the operator keeps for a workload outside its namespace (runs, trusted evidence)."""
    return f"{names.WORKLOAD_UID_LABEL}={workload_uid}"


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


def run_rbac(run: GateRun) -> list[Obj]:
    """ServiceAccount, Role and RoleBinding of one run, in creation order: read its input, write its result.

    Every rule names its objects (an empty `resourceNames` would mean *all* names). No rule on Secrets: the
    kubelet resolves the credentials' `secretKeyRef`s, the pod needs no `get secrets`."""
    name = run.job
    rules: list[Obj] = [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [names.run_input(name)], "verbs": ["get"]},
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [names.run_result(name)],
            "verbs": ["get", "update", "patch"],
        },
    ]
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": run.meta(name, None),
            "automountServiceAccountToken": True,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": run.meta(name, None),
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": run.meta(name, None),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": run.gate_namespace}],
        },
    ]


def run_input(workload: AIWorkload, configmaps: Mapping[str, Mapping[str, str]]) -> str:
    """The resolved spec as the Job reads it: the workload (identity and spec) and the referenced ConfigMap keys."""
    doc = {
        "workload": workload.model_dump(mode="json", by_alias=True, exclude_none=True),
        "configMaps": {name: dict(data) for name, data in sorted(configmaps.items())},
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def input_configmap(run: GateRun, payload: str, canary: str | None = None) -> Obj:
    """`canary`: a canary's cases and spend (`canary_input`), beside the resolved spec."""
    data = {names.INPUT_KEY: payload}
    if canary is not None:
        data[names.CANARY_KEY] = canary
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": run.meta(names.run_input(run.job), names.GATE_INPUT_ROLE),
        "data": data,
        "immutable": True,
    }


def canary_input(cases: Sequence[str], max_usd: float) -> str:
    """What a canary sends (these suite cases, once per model path) and may spend (the day's cap less what the
    day's canaries spent): the gate process's `--canary` mode reads it."""
    return json.dumps({"cases": list(cases), "maxUSD": max_usd}, separators=(",", ":"))


def result_configmap(run: GateRun) -> Obj:
    """Created empty by the operator before the Job, so that the Job's Role can name it (no `create` needed)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": run.meta(names.run_result(run.job), names.GATE_RESULT_ROLE),
        "data": {},
    }


def credentials_secret(run: GateRun, values: Mapping[tuple[str, str], str]) -> Obj:
    """The keys the workload names ((Secret, key) -> value), under the env names the Job reads them as; deleted
    when the run ends."""
    data = {
        names.secret_env_name(secret, key): base64.b64encode(value.encode()).decode()
        for (secret, key), value in values.items()
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": run.meta(names.run_credentials(run.job), names.GATE_CREDENTIALS_ROLE),
        "data": data,
    }


def gate_job(
    run: GateRun,
    workload: AIWorkload,
    *,
    image: str,
    active_deadline_s: int,
    ttl_after_finished_s: int,
    backoff_limit: int,
    command: list[str] | None = None,
    resources: Obj | None = None,
    canary: bool = False,
) -> Obj:
    """The batch/v1 Job that runs `aigate run-gates` for one run, in the gate namespace. `canary`: a canary after
    launch (`--canary`, a Job of its own role), the same image, trust and credentials path as any run.

    `resources` defaults to DEFAULT_RESOURCES: a CPU request (a gate run measures latency, and a starved client
    reads as a slow provider) and no CPU limit (CFS throttling would add latency of its own to what is measured).
    """
    job_name = run.job
    argv = [*(command or DEFAULT_COMMAND)]
    argv += [
        "run-gates",
        "--namespace",
        run.gate_namespace,
        "--input",
        names.run_input(job_name),
        "--result",
        names.run_result(job_name),
        "--spec-digest",
        run.digest,
        "--run-id",
        run.run_id,
        *(["--canary"] if canary else []),
    ]
    env: list[Obj] = [
        {"name": names.JOB_NAME_ENV, "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['job-name']"}}},
        # a read-only root filesystem: no .pyc files
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
    ]
    env += [
        {
            "name": names.secret_env_name(ref.name, ref.key),
            "valueFrom": {
                "secretKeyRef": {
                    "name": names.run_credentials(job_name),
                    "key": names.secret_env_name(ref.name, ref.key),
                }
            },
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
    role = names.CANARY_JOB_ROLE if canary else names.GATE_JOB_ROLE
    labels = run.labels(role)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": run.meta(job_name, role),
        "spec": {
            "backoffLimit": backoff_limit,
            "activeDeadlineSeconds": active_deadline_s,
            "ttlSecondsAfterFinished": ttl_after_finished_s,
            "template": {
                "metadata": {"labels": dict(labels), "annotations": run.annotations()},
                "spec": {
                    "serviceAccountName": job_name,
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


def same_template(job: Obj, expected: Obj) -> bool:
    """Whether a Job runs what the operator created: the same service account and containers (name, image,
    command, args, and each env variable's value or source). The API server fills in defaults (imagePullPolicy,
    fieldRef.apiVersion, ...), so only these fields are compared."""

    def source(e: Obj) -> Any:
        ref = e.get("valueFrom") or {}
        secret, field, cm = ref.get("secretKeyRef"), ref.get("fieldRef"), ref.get("configMapKeyRef")
        return (
            e.get("name"),
            e.get("value"),
            (secret.get("name"), secret.get("key")) if secret else None,
            field.get("fieldPath") if field else None,
            (cm.get("name"), cm.get("key")) if cm else None,
            sorted(k for k in ref if k not in ("secretKeyRef", "fieldRef", "configMapKeyRef")),
        )

    def essence(j: Obj) -> Any:
        spec = ((j.get("spec") or {}).get("template") or {}).get("spec") or {}
        containers = [
            (
                c.get("name"),
                c.get("image"),
                c.get("command") or [],
                c.get("args") or [],
                [source(e) for e in c.get("env") or []],
                c.get("envFrom") or [],
            )
            for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
        ]
        return (spec.get("serviceAccountName"), containers)

    return bool(essence(job) == essence(expected))


def evidence_configmap(
    namespace: str,
    name: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    envelope: str,
    drift: str | None = None,
) -> Obj:
    """`drift`: the record of a drift found against this envelope (trusted copy only)."""
    data = {names.EVIDENCE_KEY: envelope}
    if drift is not None:
        data[names.DRIFT_KEY] = drift
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels), "annotations": dict(annotations)},
        "data": data,
    }
