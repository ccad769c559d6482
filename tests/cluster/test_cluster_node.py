"""The process node as a kubelet stand-in: restarts per restartPolicy, pod deadlines, graceful deletion."""

from __future__ import annotations

import json
from typing import Any

import pytest

from localcluster.procs import start_time
from localcluster.testing import Cluster


@pytest.fixture(autouse=True)
def _process_node_only(cluster: Cluster) -> None:
    if cluster.control_plane is None:
        pytest.skip("checks the process node, which runs only on the local control plane")


def pod(name: str, script: str, **spec: Any) -> str:
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": "x", "command": ["python", "-c", script]}], **spec},
    }
    return json.dumps(body)


def status(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    st: dict[str, Any] = cluster.get_json("pod", name, "-n", namespace).get("status", {})
    return st


def test_on_failure_restarts_the_container_until_it_succeeds(cluster: Cluster, namespace: str) -> None:
    # fails on its first run, succeeds on the second: HOME is the pod's directory and survives restarts
    script = "import os, sys; f = os.path.join(os.environ['HOME'], 'ran'); first = not os.path.exists(f); "
    script += "open(f, 'a').close(); sys.exit(7 if first else 0)"
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=pod("flaky", script, restartPolicy="OnFailure"))
    st = cluster.wait_for(
        lambda: (s := status(cluster, namespace, "flaky")).get("phase") == "Succeeded" and s, what="flaky to succeed"
    )
    [cs] = st["containerStatuses"]
    assert cs["restartCount"] == 1
    assert cs["lastState"]["terminated"]["exitCode"] == 7
    assert cs["state"]["terminated"]["exitCode"] == 0


def test_active_deadline_fails_the_pod(cluster: Cluster, namespace: str) -> None:
    script = "import time; time.sleep(600)"
    cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=pod("slow", script, restartPolicy="Never", activeDeadlineSeconds=2)
    )
    st = cluster.wait_for(
        lambda: (s := status(cluster, namespace, "slow")).get("phase") == "Failed" and s, what="slow to fail"
    )
    assert st["reason"] == "DeadlineExceeded"
    assert st["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 143  # SIGTERM


def test_deleting_a_running_pod_stops_its_process_and_removes_it(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=pod("sleeper", "import time; time.sleep(600)"))

    def running_pid() -> int | None:
        statuses = status(cluster, namespace, "sleeper").get("containerStatuses") or []
        if statuses and "running" in statuses[0]["state"]:
            return int(statuses[0]["containerID"].removeprefix("process://"))
        return None

    pid = cluster.wait_for(running_pid, what="sleeper to run")
    assert start_time(pid) is not None
    cluster.kubectl("delete", "pod", "sleeper", "-n", namespace, "--timeout=60s")  # waits until the pod is gone
    assert cluster.kubectl("get", "pod", "sleeper", "-n", namespace, check=False).returncode != 0
    assert start_time(pid) is None


def test_container_without_command_is_reported_not_run(cluster: Cluster, namespace: str) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "image-only"},
        "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]},
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body))

    def waiting() -> dict[str, Any] | None:
        statuses = status(cluster, namespace, "image-only").get("containerStatuses") or []
        w = statuses[0]["state"].get("waiting") if statuses else None
        return w if w and w.get("reason") == "CreateContainerConfigError" else None

    w = cluster.wait_for(waiting, what="a CreateContainerConfigError")
    assert "has no command" in w["message"] and "nginx:1.27" in w["message"]
    assert status(cluster, namespace, "image-only")["phase"] == "Pending"
