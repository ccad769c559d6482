"""The rendered webhook configurations: what each webhook selects, how it fails, and that paths are handler ids."""

from __future__ import annotations

from typing import Any

import pytest

from aigate.kube.names import ACCEPTANCES_WEBHOOK, AIWORKLOADS_WEBHOOK, ROLLOUTS_WEBHOOK, WORKLOADREFS_WEBHOOK
from aigate.webhook.configurations import client_config_for, mutating_configuration, validating_configuration

LOCAL = {"url": "https://127.0.0.1:9443/", "caBundle": "Q0E="}
SERVICE = {"service": {"name": "aigate-webhook", "namespace": "aigate-system", "port": 443}, "caBundle": "Q0E="}


def by_name(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["name"]: w for w in config["webhooks"]}


def test_rollout_webhook() -> None:
    config = validating_configuration(LOCAL, operator_namespace="aigate-system")
    assert config["kind"] == "ValidatingWebhookConfiguration" and config["metadata"]["name"] == "aigate"
    hook = by_name(config)[ROLLOUTS_WEBHOOK]
    assert hook["clientConfig"] == {"url": "https://127.0.0.1:9443/rollouts.aigate.dev", "caBundle": "Q0E="}
    assert {(g, v, r) for rule in hook["rules"] for g in rule["apiGroups"] for v in rule["apiVersions"]
            for r in rule["resources"]} == {
        ("", "v1", "pods"),
        ("", "v1", "replicationcontrollers"),
        ("apps", "v1", "deployments"),
        ("apps", "v1", "replicasets"),
        ("apps", "v1", "statefulsets"),
        ("apps", "v1", "daemonsets"),
        ("batch", "v1", "jobs"),
        ("batch", "v1", "cronjobs"),
        ("argoproj.io", "v1alpha1", "rollouts"),
        ("serving.kserve.io", "v1beta1", "inferenceservices"),
        ("serving.kserve.io", "v1alpha1", "llminferenceservices"),
        ("leaderworkerset.x-k8s.io", "v1", "leaderworkersets"),
        ("serving.knative.dev", "v1", "services"),
        ("toolhive.stacklok.dev", "v1beta1", "mcpservers"),
    }  # fmt: skip
    assert all(rule["operations"] == ["CREATE", "UPDATE"] for rule in hook["rules"])
    assert hook["objectSelector"] == {"matchExpressions": [{"key": "aigate.dev/workload", "operator": "Exists"}]}
    assert hook["namespaceSelector"] == {
        "matchExpressions": [
            {
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": ["aigate-gates", "aigate-system", "kube-system"],
            }
        ]
    }
    # with a watch list, only the watched namespaces: a rollout elsewhere is not refused as "AIWorkload not found"
    watched = validating_configuration(LOCAL, operator_namespace="aigate-system", watch_namespaces=["b", "a"])
    assert by_name(watched)[ROLLOUTS_WEBHOOK]["namespaceSelector"]["matchExpressions"][1] == {
        "key": "kubernetes.io/metadata.name",
        "operator": "In",
        "values": ["a", "b"],
    }
    assert (hook["failurePolicy"], hook["timeoutSeconds"], hook["sideEffects"]) == ("Fail", 5, "None")
    assert (hook["admissionReviewVersions"], hook["matchPolicy"]) == (["v1"], "Equivalent")


def test_workload_ref_webhook() -> None:
    """Unlabelled Argo Rollouts that carry spec.workloadRef (a CEL condition: the label cannot select them), in the
    rollout webhook's namespaces, failing closed like it; labelled ones are the rollout webhook's."""
    config = validating_configuration(LOCAL, operator_namespace="aigate-system", watch_namespaces=["a"])
    hooks = by_name(config)
    assert [w["name"] for w in config["webhooks"]] == [ROLLOUTS_WEBHOOK, WORKLOADREFS_WEBHOOK, AIWORKLOADS_WEBHOOK]
    hook = hooks[WORKLOADREFS_WEBHOOK]
    assert hook["clientConfig"]["url"] == "https://127.0.0.1:9443/workloadrefs.aigate.dev"
    assert hook["rules"] == [
        {
            "apiGroups": ["argoproj.io"],
            "apiVersions": ["v1alpha1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["rollouts"],
            "scope": "Namespaced",
        }
    ]
    assert hook["objectSelector"] == {"matchExpressions": [{"key": "aigate.dev/workload", "operator": "DoesNotExist"}]}
    assert hook["matchConditions"] == [
        {"name": "has-workload-ref", "expression": "has(object.spec) && has(object.spec.workloadRef)"}
    ]
    assert hook["namespaceSelector"] == hooks[ROLLOUTS_WEBHOOK]["namespaceSelector"]
    assert (hook["failurePolicy"], hook["timeoutSeconds"]) == ("Fail", 5)


def test_aiworkload_webhooks() -> None:
    validating = by_name(validating_configuration(SERVICE, operator_namespace="aigate-system", name="x"))
    mutating = mutating_configuration(SERVICE, operator_namespace="aigate-system")
    assert mutating["kind"] == "MutatingWebhookConfiguration"
    hooks = [(validating[AIWORKLOADS_WEBHOOK], AIWORKLOADS_WEBHOOK)]
    hooks.append((by_name(mutating)[ACCEPTANCES_WEBHOOK], ACCEPTANCES_WEBHOOK))
    for hook, hook_id in hooks:
        assert hook["rules"] == [
            {
                "apiGroups": ["aigate.dev"],
                "apiVersions": ["v1alpha1"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["aiworkloads"],
                "scope": "Namespaced",
            }
        ]
        assert hook["clientConfig"]["service"] == {
            "name": "aigate-webhook",
            "namespace": "aigate-system",
            "port": 443,
            "path": f"/{hook_id}",
        }
        assert hook["failurePolicy"] == "Fail" and "objectSelector" not in hook
    assert by_name(mutating)[ACCEPTANCES_WEBHOOK]["reinvocationPolicy"] == "IfNeeded"


def test_client_config_paths() -> None:
    assert client_config_for({"url": "https://h:1/base"}, "a.b.c") == {"url": "https://h:1/base/a.b.c"}
    svc = client_config_for({"service": {"name": "s", "namespace": "n", "path": "/hooks/"}}, "a.b.c")
    assert svc == {"service": {"name": "s", "namespace": "n", "path": "/hooks/a.b.c"}}
    with pytest.raises(ValueError, match="url or a service"):
        client_config_for({"caBundle": "x"}, "a.b.c")
