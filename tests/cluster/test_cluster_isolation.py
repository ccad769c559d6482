"""One real node per machine, any number of control planes without one: a second `make cluster` while a node runs
says so and exits; a control plane alone starts beside it on loopback and stops leaving no process; and stopping the
cluster puts the machine back as it was (processes, cni0 and its veths, mounts, nft tables, kubepods cgroups,
sysctls, containerd's and the CNI's directories), after which it starts again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from localcluster import host
from localcluster.controlplane import ControlPlane
from localcluster.node import shim_processes
from localcluster.procs import start_time
from localcluster.testing import Cluster, cluster_image

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


@pytest.fixture
def local(cluster: Cluster) -> ControlPlane:
    if cluster.control_plane is None:
        pytest.skip("checks this machine's local cluster")
    return cluster.control_plane


def test_a_second_cluster_with_a_node_is_refused_while_one_runs(local: ControlPlane, tmp_path: Path) -> None:
    refused = cli("start", "--state-dir", str(tmp_path / "second"))
    assert refused.returncode == 1
    assert "a real node already runs on this machine" in refused.stderr
    assert str(local.state_dir) in refused.stderr
    assert refused.stdout == ""
    assert processes_mentioning(str(tmp_path / "second")) == []
    assert local.running()


def test_control_plane_alone_beside_the_cluster_and_clean_stop(
    local: ControlPlane, cluster: Cluster, tmp_path: Path
) -> None:
    state = tmp_path / "second"
    started = cli("start", "--no-node", "--state-dir", str(state))
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == f"export KUBECONFIG={state / 'kubeconfig'}"
    try:
        second = ControlPlane(state)
        assert second.running()
        assert second.server.startswith("https://127.0.0.1:")
        assert set(second.state["ports"].values()).isdisjoint(local.state["ports"].values())
        kc2 = state / "kubeconfig"
        cluster.kubectl("create", "namespace", "only-in-second", kubeconfig=kc2)
        assert cluster.kubectl("get", "namespace", "only-in-second", check=False).returncode != 0
        status = cli("status", "--state-dir", str(state))
        names = {p["name"] for p in json.loads(status.stdout)["processes"] if p["running"]}
        assert names == {"etcd", "kube-apiserver", "kube-controller-manager"}
        assert processes_mentioning(str(state))
    finally:
        stopped = cli("stop", "--state-dir", str(state))
    assert stopped.returncode == 0, stopped.stderr
    assert processes_mentioning(str(state)) == []
    assert cli("status", "--state-dir", str(state)).returncode == 3
    assert local.running()


def test_stop_puts_the_machine_back_and_the_cluster_starts_again(local: ControlPlane, cluster: Cluster) -> None:
    before = host.HostSnapshot.from_json(local.state["node"]["host_before"])
    # something running in a pod, with a Secret volume (a tmpfs mount) and a veth, when the stop comes
    ns = cluster.create_namespace("stop")
    cluster.kubectl("create", "secret", "generic", "s", "-n", ns, "--from-literal=k=v")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "busy", "namespace": ns},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": cluster_image(),
                    "command": ["sleep", "3600"],
                    "volumeMounts": [{"name": "s", "mountPath": "/s"}],
                }
            ],
            "volumes": [{"name": "s", "secret": {"secretName": "s"}}],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))
    cluster.kubectl("wait", "--for=condition=Ready", "pod/busy", "-n", ns, "--timeout=120s")
    assert host.veths_on_bridge()
    assert host.mounts_under(local.state_dir)
    assert host.kubepods_cgroups()

    local.stop()

    assert processes_mentioning(str(local.state_dir)) == []
    assert shim_processes() == []
    assert not host.link_exists(host.BRIDGE)
    assert host.mounts_under(host.CONTAINERD_STATE, local.state_dir) == []
    assert sorted(host.nft_tables()) == sorted(before.nft_tables)
    assert {n: host.read_sysctl(n) for n in before.sysctls} == before.sysctls
    assert host.kubepods_cgroups() == []
    assert [d for d in host.GLOBAL_DIRS if d.exists() and str(d) not in before.dirs] == []
    assert before.leftovers((local.state_dir,)) == []
    assert host.current_claim() is None or host.current_claim()["state_dir"] != str(local.state_dir)

    local.start(node=True, by="pytest (restart)")
    assert local.running()
    nodes = cluster.get_json("nodes")["items"]
    assert [n["metadata"]["name"] for n in nodes] == ["aigate-node"]
