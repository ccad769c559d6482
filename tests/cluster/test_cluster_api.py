"""Real API server behaviour: structural-schema validation, the status subresource, RBAC with impersonation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from localcluster.testing import Cluster

GROUP, VERSION, PLURAL = "test.aigate.dev", "v1", "widgets"

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "names": {"kind": "Widget", "plural": PLURAL, "singular": "widget", "listKind": "WidgetList"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["owner", "size"],
                                "properties": {
                                    "owner": {"type": "string", "minLength": 1},
                                    "size": {"type": "integer", "minimum": 1, "maximum": 10},
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {"phase": {"type": "string", "enum": ["Pending", "Ready"]}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


def widget(name: str, spec: dict[str, Any]) -> str:
    return json.dumps({"apiVersion": f"{GROUP}/{VERSION}", "kind": "Widget", "metadata": {"name": name}, "spec": spec})


@pytest.fixture(scope="module")
def widget_crd(cluster: Cluster) -> Iterator[None]:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(CRD))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{PLURAL}.{GROUP}", "--timeout=60s")
    yield
    cluster.kubectl("delete", "crd", f"{PLURAL}.{GROUP}", "--wait=false", check=False)


@pytest.mark.usefixtures("widget_crd")
def test_structural_schema_rejects_invalid_object_with_api_server_message(cluster: Cluster, namespace: str) -> None:
    bad = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=widget("bad", {"size": 0}), check=False)
    assert bad.returncode != 0
    assert 'The Widget "bad" is invalid' in bad.stderr
    assert "spec.owner: Required value" in bad.stderr
    assert "spec.size in body should be greater than or equal to 1" in bad.stderr
    assert cluster.kubectl("get", "widgets", "-n", namespace, "-o", "name").stdout.strip() == ""

    good = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=widget("good", {"owner": "me", "size": 3}))
    assert "widget.test.aigate.dev/good created" in good.stdout


@pytest.mark.usefixtures("widget_crd")
def test_status_subresource_and_spec_are_separate(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=widget("w", {"owner": "me", "size": 2}))
    with cluster.api_client() as api:
        objs = client.CustomObjectsApi(api)
        ref = {"group": GROUP, "version": VERSION, "namespace": namespace, "plural": PLURAL, "name": "w"}
        gen = objs.get_namespaced_custom_object(**ref)["metadata"]["generation"]

        # through /status: the status is written, the spec change in the same body is ignored
        objs.patch_namespaced_custom_object_status(**ref, body={"spec": {"size": 9}, "status": {"phase": "Ready"}})
        after = objs.get_namespaced_custom_object(**ref)
        assert after["status"] == {"phase": "Ready"}
        assert after["spec"]["size"] == 2
        assert after["metadata"]["generation"] == gen

        # through the main resource: the spec is written (generation moves), the status change is ignored
        objs.patch_namespaced_custom_object(**ref, body={"spec": {"size": 5}, "status": {"phase": "Pending"}})
        after = objs.get_namespaced_custom_object(**ref)
        assert after["spec"]["size"] == 5
        assert after["status"] == {"phase": "Ready"}
        assert after["metadata"]["generation"] == gen + 1

        # the status is validated by the schema too
        with pytest.raises(client.ApiException) as err:
            objs.patch_namespaced_custom_object_status(**ref, body={"status": {"phase": "Exploded"}})
        assert err.value.status == 422
        assert 'status.phase: Unsupported value: "Exploded"' in json.loads(err.value.body)["message"]


def test_rbac_refuses_impersonated_user_until_rolebinding(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("create", "configmap", "settings", "-n", namespace, "--from-literal=mode=strict")
    refused = cluster.kubectl("get", "configmaps", "-n", namespace, as_user="alice", check=False)
    assert refused.returncode != 0
    assert (
        f'User "alice" cannot list resource "configmaps" in API group "" in the namespace "{namespace}"'
        in refused.stderr
    )

    cluster.kubectl("create", "role", "cm-reader", "-n", namespace, "--verb=get,list", "--resource=configmaps")
    cluster.kubectl("create", "rolebinding", "alice-reads", "-n", namespace, "--role=cm-reader", "--user=alice")

    allowed = cluster.wait_for(
        lambda: (
            (r := cluster.kubectl("get", "configmaps", "-n", namespace, "-o", "name", as_user="alice", check=False))
            and r.returncode == 0
            and r
        ),
        what="alice's RoleBinding to take effect",
    )
    assert "configmap/settings" in allowed.stdout.split()

    # the Role grants reading, nothing more, and only in its namespace
    delete = cluster.kubectl("delete", "configmap", "settings", "-n", namespace, as_user="alice", check=False)
    assert delete.returncode != 0 and 'cannot delete resource "configmaps"' in delete.stderr
    elsewhere = cluster.kubectl("get", "configmaps", "-n", "default", as_user="alice", check=False)
    assert elsewhere.returncode != 0 and 'in the namespace "default"' in elsewhere.stderr
