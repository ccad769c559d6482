"""Two control planes side by side (free ports, separate state dirs), started and stopped through hack/control-plane
as `make cluster` does; stopping one leaves no process behind and the other running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from localcluster.controlplane import ControlPlane
from localcluster.procs import start_time
from localcluster.testing import Cluster

CLI = Path(__file__).resolve().parents[2] / "hack" / "control-plane"


def processes_mentioning(text: str) -> list[int]:
    """PIDs of live processes whose command line or environment mentions TEXT."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            blob = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
        except OSError:
            continue
        if text.encode() in blob and start_time(int(proc.name)) is not None:
            found.append(int(proc.name))
    return found


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, AIGATE_PYTHON=sys.executable)
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, env=env, timeout=300)


def test_second_control_plane_beside_the_first_and_clean_stop(cluster: Cluster, tmp_path: Path) -> None:
    if cluster.control_plane is None:
        pytest.skip("starts a second local control plane beside the one started for the session")
    state = tmp_path / "second"
    started = cli("start", "--state-dir", str(state))
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == f"export KUBECONFIG={state / 'kubeconfig'}"
    try:
        second = ControlPlane(state)
        assert second.running()
        assert second.port != cluster.control_plane.port
        assert set(second.state["ports"].values()).isdisjoint(cluster.control_plane.state["ports"].values())

        kc2 = state / "kubeconfig"
        cluster.kubectl("create", "namespace", "only-in-second", kubeconfig=kc2)
        assert cluster.kubectl("get", "namespace", "only-in-second", check=False).returncode != 0

        # a long-running pod on the second plane's process node: its process must die with the plane
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "sleeper", "namespace": "only-in-second"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {"name": "main", "image": "x", "command": ["python", "-c", "import time; time.sleep(900)"]}
                ],
            },
        }
        cluster.wait_for(
            lambda: (
                cluster.kubectl("get", "sa", "default", "-n", "only-in-second", kubeconfig=kc2, check=False).returncode
                == 0
            ),
            what="the second plane's default ServiceAccount",
        )
        cluster.kubectl("apply", "-f", "-", input=json.dumps(pod), kubeconfig=kc2)

        def container_pid() -> int | None:
            got = cluster.kubectl("get", "pod", "sleeper", "-n", "only-in-second", "-o", "json", kubeconfig=kc2)
            statuses = json.loads(got.stdout).get("status", {}).get("containerStatuses") or []
            if statuses and "running" in statuses[0]["state"]:
                return int(statuses[0]["containerID"].removeprefix("process://"))
            return None

        sleeper = cluster.wait_for(container_pid, what="the sleeper pod to run")
        assert start_time(sleeper) is not None
        status = cli("status", "--state-dir", str(state))
        assert status.returncode == 0
        names = {p["name"] for p in json.loads(status.stdout)["processes"] if p["running"]}
        assert names == {"etcd", "kube-apiserver", "kube-controller-manager", "node/process-node"}
        assert processes_mentioning(str(state))
    finally:
        stopped = cli("stop", "--state-dir", str(state))
    assert stopped.returncode == 0, stopped.stderr
    assert start_time(sleeper) is None
    assert processes_mentioning(str(state)) == []
    assert cli("status", "--state-dir", str(state)).returncode == 3

    # the first plane is untouched
    assert cluster.kubectl("get", "--raw", "/readyz").stdout == "ok"
    assert cluster.control_plane.running()
