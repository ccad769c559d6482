"""Helpers the cluster test modules share (no test module imports another): kubectl's plugin, and who acts in
the cluster besides the admin running the tests: a team member bound to the built-in `edit` ClusterRole in their
own namespace (and nowhere else), acting through `kubectl --as`, and the AIGatePolicy a platform admin puts a
namespace under."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from localcluster.testing import Cluster

BIN = Path(sys.executable).parent
"""The venv's bin: kubectl-aigate is there."""


def kubectl_aigate(cluster: Cluster, *args: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Through kubectl's plugin lookup: `kubectl aigate ...` finds kubectl-aigate on PATH."""
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    argv = [cluster.kubectl_bin, "aigate", *args, f"--kubeconfig={kubeconfig or cluster.kubeconfig}"]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)


EDITOR, EDITOR_GROUP = "mallory", "team-fraud"


def bind(cluster: Cluster, namespace: str, name: str, cluster_role: str, kind: str, subject: str) -> None:
    """A RoleBinding `name` of `cluster_role` in `namespace` to one User or Group."""
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": subject}],
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(binding))


def bind_editor(cluster: Cluster, namespace: str, user: str = EDITOR) -> None:
    """`user` gets the built-in `edit` ClusterRole in `namespace`, and waits until it holds the AIWorkload rules
    `edit` aggregates (the chart's, or a test's own aggregated ClusterRole)."""
    bind(cluster, namespace, "editors", "edit", "User", user)

    def may_edit() -> bool:
        may = cluster.kubectl("auth", "can-i", "create", "aiworkloads", "-n", namespace, as_user=user, check=False)
        return bool(may.returncode == 0)

    cluster.wait_for(may_edit, timeout=60, what="the edit ClusterRole aggregating the AIWorkload rules")


def editor(cluster: Cluster, *args: str, input: str | None = None) -> Any:
    """kubectl as the namespace editor (never raises: the caller looks at what was refused)."""
    return cluster.kubectl(*args, as_user=EDITOR, as_groups=(EDITOR_GROUP,), input=input, check=False)


@contextmanager
def governed(cluster: Cluster, namespace: str, name: str, **spec: Any) -> Iterator[dict[str, Any]]:
    """A cluster-scoped AIGatePolicy `name` selecting `namespace` by a label of its own, as a platform admin writes
    one; deleted on the way out (other tests share the cluster)."""
    cluster.kubectl("label", "namespace", namespace, f"aigate.dev/policy-test={namespace}", "--overwrite")
    policy = {
        "apiVersion": "aigate.dev/v1alpha1",
        "kind": "AIGatePolicy",
        "metadata": {"name": name},
        "spec": {"namespaceSelector": {"matchLabels": {"aigate.dev/policy-test": namespace}}, **spec},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(policy))
    try:
        yield policy
    finally:
        cluster.kubectl("delete", "aigatepolicy", name, "--ignore-not-found", check=False)
