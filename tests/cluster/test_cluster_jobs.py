"""The Job controller and the node: completions, failures after backoffLimit, and a pod's process that sees its
Secret-sourced env and has exactly its ServiceAccount's RBAC."""

from __future__ import annotations

import json
from typing import Any

import pytest

from localcluster.testing import Cluster, cluster_image

TRACKING = "batch.kubernetes.io/job-tracking"


def job(name: str, command: list[str], *, backoff_limit: int = 0, pod_spec: dict[str, Any] | None = None) -> str:
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [{"name": "main", "image": cluster_image(), "command": command}],
    }
    spec.update(pod_spec or {})
    return json.dumps(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name},
            "spec": {"backoffLimit": backoff_limit, "template": {"spec": spec}},
        }
    )


def job_pods(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    pods: list[dict[str, Any]] = cluster.get_json("pods", "-n", namespace, "-l", f"job-name={name}")["items"]
    return pods


def test_job_whose_command_exits_0_completes(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=job("ok", ["python", "-c", "print('done')"]))
    done = cluster.wait_for_condition("job", "ok", namespace, "Complete")
    assert done["status"]["succeeded"] == 1
    assert done["status"].get("failed", 0) == 0

    [pod] = job_pods(cluster, namespace, "ok")
    assert pod["status"]["phase"] == "Succeeded"
    [cs] = pod["status"]["containerStatuses"]
    assert cs["state"]["terminated"]["exitCode"] == 0
    assert cs["image"].endswith(cluster_image())  # the runtime names it in full (docker.io/library/...)
    # the Job controller (not the node) removed its tracking finalizer once it counted the pod
    cluster.wait_for(
        lambda: TRACKING not in (job_pods(cluster, namespace, "ok")[0]["metadata"].get("finalizers") or []),
        what="the job-tracking finalizer to be removed",
    )
    assert cluster.pod_log(namespace, pod["metadata"]["name"]) == "done\n"


def test_job_whose_command_exits_1_fails_after_backoff_limit(cluster: Cluster, namespace: str) -> None:
    cmd = ["python", "-c", "import sys; print('broken'); sys.exit(1)"]
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=job("bad", cmd, backoff_limit=1))
    failed = cluster.wait_for_condition("job", "bad", namespace, "Failed", timeout=300)
    [cond] = [c for c in failed["status"]["conditions"] if c["type"] == "Failed"]
    assert cond["reason"] == "BackoffLimitExceeded"
    assert failed["status"]["failed"] == 2  # the first try plus backoffLimit=1 retry
    assert failed["status"].get("succeeded", 0) == 0

    pods = job_pods(cluster, namespace, "bad")
    assert len(pods) == 2
    for pod in pods:
        assert pod["status"]["phase"] == "Failed"
        term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        assert (term["exitCode"], term["reason"]) == (1, "Error")


POD_SCRIPT = r"""
import json, os
from kubernetes import client, config

config.load_incluster_config()  # the kubelet's mounted token, kubernetes.default
ns = os.environ["POD_NAMESPACE"]
core = client.CoreV1Api()

def attempt(call):
    try:
        return {"ok": True, "value": call()}
    except client.ApiException as e:
        return {"ok": False, "status": e.status, "message": json.loads(e.body)["message"]}

review = client.AuthenticationV1Api().create_self_subject_review(client.V1SelfSubjectReview())
print(json.dumps({
    "password_matches": os.environ.get("PASSWORD") == "s3cret-value",  # compared, never printed
    "mode": os.environ.get("MODE"),
    "pod_name": os.environ.get("POD_NAME"),
    "greeting": os.environ.get("GREETING"),
    "whoami": review.status.user_info.username,
    "get_settings": attempt(lambda: core.read_namespaced_config_map("settings", ns).data["mode"]),
    "list_secrets": attempt(lambda: len(core.list_namespaced_secret(ns).items)),
    "delete_settings": attempt(lambda: core.delete_namespaced_config_map("settings", ns) and None),
}))
"""


@pytest.fixture
def reader_sa(cluster: Cluster, namespace: str) -> str:
    """ServiceAccount `reader` may get the ConfigMap `settings` and nothing else."""
    cluster.kubectl("create", "secret", "generic", "creds", "-n", namespace, "--from-literal=password=s3cret-value")
    cluster.kubectl("create", "configmap", "settings", "-n", namespace, "--from-literal=mode=strict")
    cluster.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    cluster.kubectl(
        "create", "role", "read-settings", "-n", namespace, "--verb=get", "--resource=configmaps",
        "--resource-name=settings",
    )  # fmt: skip
    sa = f"--serviceaccount={namespace}:reader"
    cluster.kubectl("create", "rolebinding", "reader", "-n", namespace, "--role=read-settings", sa)
    return "reader"


def test_pod_process_sees_secret_env_and_has_exactly_its_serviceaccount_rbac(
    cluster: Cluster, namespace: str, reader_sa: str
) -> None:
    env = [
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "GREETING", "value": "mode=$(MODE)"},
    ]
    pod_spec = {
        "serviceAccountName": reader_sa,
        "containers": [{"name": "main", "image": cluster_image(), "command": ["python", "-c", POD_SCRIPT], "env": env}],
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=job("probe", [], pod_spec=pod_spec))
    cluster.wait_for_condition("job", "probe", namespace, "Complete")
    [pod] = job_pods(cluster, namespace, "probe")
    seen = json.loads(cluster.pod_log(namespace, pod["metadata"]["name"]))

    assert seen["password_matches"] is True
    assert (seen["mode"], seen["pod_name"], seen["greeting"]) == ("strict", pod["metadata"]["name"], "mode=strict")
    assert seen["whoami"] == f"system:serviceaccount:{namespace}:reader"
    assert seen["get_settings"] == {"ok": True, "value": "strict"}
    sa_user = f'User "system:serviceaccount:{namespace}:reader"'
    assert (seen["list_secrets"]["ok"], seen["list_secrets"]["status"]) == (False, 403)
    assert f'{sa_user} cannot list resource "secrets"' in seen["list_secrets"]["message"]
    assert (seen["delete_settings"]["ok"], seen["delete_settings"]["status"]) == (False, 403)
    assert f'{sa_user} cannot delete resource "configmaps"' in seen["delete_settings"]["message"]


def test_missing_secret_holds_the_pod_until_it_exists(cluster: Cluster, namespace: str) -> None:
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "later", "key": "token"}}}]
    script = "import os, sys; sys.exit(0 if os.environ['TOKEN'] == 'abc' else 3)"
    container = {"name": "main", "image": cluster_image(), "command": ["python", "-c", script], "env": env}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=job("waits", [], pod_spec={"containers": [container]}))

    def waiting() -> dict[str, Any] | None:
        pods = job_pods(cluster, namespace, "waits")
        statuses = pods[0].get("status", {}).get("containerStatuses") or [] if pods else []
        w = statuses[0]["state"].get("waiting") if statuses else None
        return w if w and w.get("reason") == "CreateContainerConfigError" else None

    w = cluster.wait_for(waiting, what="CreateContainerConfigError")
    assert w["message"] == 'secret "later" not found'
    cluster.kubectl("create", "secret", "generic", "later", "-n", namespace, "--from-literal=token=abc")
    done = cluster.wait_for_condition("job", "waits", namespace, "Complete")
    assert done["status"]["succeeded"] == 1
