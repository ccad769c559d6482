"""The RBAC probe against a real API server: what a ServiceAccount may do is what the RBAC authorizer says, as
bindings are added, and the toolControl judge turns it into findings."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client

from aigate.gates.toolcontrol_rbac import check_label, judge_rbac
from aigate.measurements import RbacProbe
from aigate.probes.rbac import SENSITIVE, probe_service_account
from localcluster.testing import Cluster

pytestmark = pytest.mark.cluster

SA = "fraud-assistant"


@pytest.fixture
def api(cluster: Cluster) -> Iterator[client.ApiClient]:
    with cluster.api_client() as api:
        yield api


@pytest.fixture
def service_account(cluster: Cluster, namespace: str) -> str:
    cluster.kubectl("create", "serviceaccount", SA, "-n", namespace)
    return SA


def allowed(probe: RbacProbe) -> set[str]:
    return {check_label(c) for c in probe.checks if c.allowed}


def probe_once_granted(cluster: Cluster, api: client.ApiClient, namespace: str, what: str) -> RbacProbe:
    """The authorizer sees new bindings through its informers: wait for the state reached, not for a time."""

    def granted() -> RbacProbe | None:
        p = probe_service_account(api, namespace, SA)
        return p if allowed(p) else None

    return cluster.wait_for(granted, what=f"the {what} to reach the RBAC authorizer")


def test_a_new_service_account_can_do_nothing_sensitive(
    cluster: Cluster, api: client.ApiClient, namespace: str, service_account: str
) -> None:
    probe = probe_service_account(api, namespace, service_account)
    assert probe.error is None
    assert probe.skipped_reason is None
    assert len(probe.checks) == len(SENSITIVE)
    assert allowed(probe) == set()
    problems, notes = judge_rbac(probe)
    assert problems == []
    assert notes == [f"service account {namespace}/{SA} can do none of {len(SENSITIVE)} sensitive actions checked"]


def test_a_role_allowing_exec_is_reported(
    cluster: Cluster, api: client.ApiClient, namespace: str, service_account: str
) -> None:
    cluster.kubectl("create", "role", "exec", "--verb=create", "--resource=pods/exec", "-n", namespace)
    cluster.kubectl(
        "create", "rolebinding", "exec", "--role=exec", f"--serviceaccount={namespace}:{SA}", "-n", namespace
    )
    probe = probe_once_granted(cluster, api, namespace, "RoleBinding")
    assert allowed(probe) == {"create pods/exec"}
    exec_check = next(c for c in probe.checks if c.allowed)
    assert (exec_check.namespace, exec_check.subresource) == (namespace, "exec")
    assert f'RoleBinding "exec/{namespace}"' in exec_check.reason
    problems, _ = judge_rbac(probe)
    assert len(problems) == 1
    assert problems[0].startswith(f"service account {namespace}/{SA} can create pods/exec (not declared; RBAC: ")


def test_cluster_admin_is_one_finding(
    cluster: Cluster, api: client.ApiClient, namespace: str, service_account: str
) -> None:
    name = f"aigate-test-{uuid.uuid4().hex[:8]}"
    cluster.kubectl(
        "create", "clusterrolebinding", name, "--clusterrole=cluster-admin", f"--serviceaccount={namespace}:{SA}"
    )
    try:
        probe = probe_once_granted(cluster, api, namespace, "ClusterRoleBinding")
        assert allowed(probe) == {check_label(c) for c in probe.checks}, "cluster-admin can do every check"
        problems, _ = judge_rbac(probe)
        assert len(problems) == 1
        assert problems[0].startswith(f"service account {namespace}/{SA} can do anything cluster-wide (* on *)")
    finally:
        cluster.kubectl("delete", "clusterrolebinding", name, "--ignore-not-found", check=False)


def test_a_caller_refused_subjectaccessreviews_gets_an_error_not_a_clean_result(
    cluster: Cluster, api: client.ApiClient, namespace: str, service_account: str
) -> None:
    token = cluster.kubectl("create", "token", SA, "-n", namespace).stdout.strip()
    admin = api.configuration
    cfg = client.Configuration(
        host=admin.host,
        api_key={"BearerToken": token},
        api_key_prefix={"BearerToken": "Bearer"},
        ssl_ca_cert=admin.ssl_ca_cert,
    )
    with client.ApiClient(cfg) as as_sa:
        probe = probe_service_account(as_sa, namespace, service_account)
    assert probe.error is not None
    assert "HTTP 403" in probe.error
    assert token not in probe.model_dump_json()
    problems, _ = judge_rbac(probe)
    assert problems == [f"service account {namespace}/{SA}: permissions could not be checked: {probe.error}"]
