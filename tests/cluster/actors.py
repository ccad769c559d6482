"""Who acts in the cluster tests besides the admin running them: a team member bound to the built-in `edit`
ClusterRole in their own namespace (and nowhere else), acting through `kubectl --as`, and the AIGatePolicy a platform
admin puts a namespace under. Shared by test_trust.py, test_operator.py and the chart's tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from localcluster.testing import Cluster

EDITOR, EDITOR_GROUP = "mallory", "team-fraud"


def bind_editor(cluster: Cluster, namespace: str, user: str = EDITOR) -> None:
    """`user` gets the built-in `edit` ClusterRole in `namespace`, and waits until it holds the AIWorkload rules
    `edit` aggregates (the chart's, or a test's own aggregated ClusterRole)."""
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "editors", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(binding))

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
