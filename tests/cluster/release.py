"""The chart's release as the cluster tests install it (no test module imports another): `helm upgrade --install
--wait` of charts/aigate with the CI values and a module's own, adopting CRDs an earlier suite applied; its pods;
and what an uninstall leaves for a test to clean up. test_chart_e2e.py and test_chart_failover.py install it."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from localcluster.testing import Cluster

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from helmchart import CHART, find_helm, run_helm  # noqa: E402

RELEASE, NS, GATES = "aigate", "aigate-system", "aigate-gates"
KINDS = ("validatingwebhookconfiguration", "mutatingwebhookconfiguration")
CRDS = ("aiworkloads.aigate.dev", "aigatepolicies.aigate.dev")


def helm_args(*values: Path) -> list[str]:
    args = ["upgrade", "--install", RELEASE, str(CHART), "--namespace", NS, "--create-namespace"]
    for v in (CHART / "ci" / "local-values.yaml", *values):
        args += ["--values", str(v)]
    return [*args, "--wait", "--timeout", "5m"]


def helm(tool: Path, cluster: Cluster, *args: str) -> str:
    done = run_helm(tool, *args, kubeconfig=cluster.kubeconfig, timeout=360)
    assert done.returncode == 0, f"helm {' '.join(args[:2])}: {done.stderr}"
    return done.stdout


def pods(cluster: Cluster, component: str) -> list[dict[str, Any]]:
    """The release's running pods of one component (operator, webhook), terminating ones left out."""
    found = cluster.get_json("pods", "-n", NS, "-l", f"app.kubernetes.io/component={component}")["items"]
    return [p for p in found if not p["metadata"].get("deletionTimestamp")]


def adopt_existing_crds(cluster: Cluster) -> list[str]:
    """CRDs another suite applied from crds/ before this one: `--take-ownership` lets the release adopt them, as an
    admin who applied crds/ by hand does when moving to the chart."""
    names = {n.rsplit("/", 1)[-1] for n in cluster.kubectl("get", "crd", "-o", "name").stdout.split()}
    return ["--take-ownership"] if names & set(CRDS) else []


def release_namespace_gone(cluster: Cluster) -> None:
    """An earlier module's release namespace may still be terminating: Helm cannot write its release into it."""
    cluster.wait_for(
        lambda: cluster.kubectl("get", "namespace", NS, check=False).returncode != 0,
        timeout=180,
        what=f"namespace {NS} of an earlier install deleted",
    )


@contextmanager
def installed(cluster: Cluster, values: Path) -> Iterator[Path]:
    """The release installed with `values` over the CI values (once an earlier one's namespace is gone); yields the
    helm binary. Uninstalled, and its namespace deleted, on the way out."""
    tool = find_helm()
    release_namespace_gone(cluster)
    helm(tool, cluster, *helm_args(values), *adopt_existing_crds(cluster))
    try:
        yield tool
    finally:
        run_helm(tool, "uninstall", RELEASE, "-n", NS, "--wait", kubeconfig=cluster.kubeconfig, timeout=300)
        cluster.delete_namespace(NS)


def free_workloads(cluster: Cluster, ns: str) -> None:
    """Take the operator's finalizer off the AIWorkloads of `ns`: should the chart's post-delete hook not have run (a
    test failed before the uninstall), with no operator left it would hold them (and the namespace) for ever."""
    for wl in cluster.get_json("aiworkloads", "-n", ns)["items"]:
        patch = json.dumps({"metadata": {"finalizers": None}})
        cluster.kubectl("patch", "aiworkload", wl["metadata"]["name"], "-n", ns, "--type=merge", "-p", patch)


def delete_team_namespace(cluster: Cluster, ns: str) -> None:
    """Delete a namespace whose AIWorkloads outlived the uninstall (free_workloads first)."""
    free_workloads(cluster, ns)
    cluster.delete_namespace(ns)
