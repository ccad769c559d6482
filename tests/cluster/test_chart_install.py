"""`helm install`, `helm upgrade` and `helm uninstall` of the chart on the real API server, as Argo CD or a person
would run them: the chart's RBAC lets the operator's ServiceAccount keep its key material and no more than it needs,
the built-in edit role gains AIWorkloads but never their status, the caBundle the operator injects survives an
upgrade (Helm renders none, so it never takes it back), and an uninstall leaves no webhook configuration behind.

The operator's pod is not started here (it is held Pending by a nodeSelector, so this release can sit beside others
on the shared cluster); the operator's rotator is run in the test, with the names the chart gives it, as the pod would
run it. test_chart_e2e.py installs the chart with the operator running as a pod.
The CRD stays out of the release (`crds.install=false`): the other cluster tests installed it without Helm."""

from __future__ import annotations

import base64
import datetime
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aigate.controller.certs import CertRotator, RotatorSettings, hosts_for
from aigate.controller.signingkey import ensure_signing_key
from aigate.kube.names import WEBHOOK_IDS
from localcluster.aigate_operator import install_crd
from localcluster.testing import Cluster

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helmchart import CHART, find_helm, run_helm

KINDS = ("validatingwebhookconfiguration", "mutatingwebhookconfiguration")


@pytest.fixture(scope="module")
def helm() -> Path:
    return find_helm()


@pytest.fixture
def release(cluster: Cluster, helm: Path, namespace: str) -> Iterator[tuple[str, list[str]]]:
    name = f"aigate-{namespace}"
    sets = [
        f"fullnameOverride={name}",
        f"gates.namespace={namespace}-gates",
        "crds.install=false",
        "operator.nodeSelector.aigate\\.dev/no-such-node=yes",
    ]
    try:
        yield name, sets
    finally:
        run_helm(helm, "uninstall", "aigate", "-n", namespace, "--no-hooks", kubeconfig=cluster.kubeconfig)
        for kind in KINDS:
            cluster.kubectl("delete", kind, name, "--ignore-not-found", check=False)
        cluster.delete_namespace(f"{namespace}-gates")


def bundles(cluster: Cluster, name: str) -> list[str | None]:
    return [w["clientConfig"].get("caBundle") for k in KINDS for w in cluster.get_json(k, name)["webhooks"]]


def test_install_upgrade_uninstall_keep_the_injected_ca_bundle_and_leave_no_webhook(
    cluster: Cluster, helm: Path, namespace: str, release: tuple[str, list[str]], tmp_path: Path
) -> None:
    name, sets = release
    install_crd(cluster.kubectl)  # outside the release (crds.install=false), as the other cluster tests install it
    args = ["upgrade", "--install", "aigate", str(CHART), "-n", namespace, "--no-hooks"]
    args += [a for s in sets for a in ("--set", s)]
    done = run_helm(helm, *args, kubeconfig=cluster.kubeconfig, timeout=300)
    assert done.returncode == 0, done.stderr
    assert bundles(cluster, name) == [None] * len(WEBHOOK_IDS), "the chart renders no caBundle"

    # what the operator does at start-up with the chart's settings (AIGATE_WEBHOOK_TLS_SECRET, _CONFIGURATION, _HOST)
    env = {
        e["name"]: e.get("value")
        for e in cluster.get_json("deployment", name, "-n", namespace)["spec"]["template"]["spec"]["containers"][0][
            "env"
        ]
    }
    settings = RotatorSettings(
        namespace=namespace,
        secret=str(env["AIGATE_WEBHOOK_TLS_SECRET"]),
        hosts=hosts_for(str(env["AIGATE_WEBHOOK_HOST"])),
        cert_file=tmp_path / "tls" / "tls.crt",
        key_file=tmp_path / "tls" / "tls.key",
        validating=(str(env["AIGATE_WEBHOOK_CONFIGURATION"]),),
        mutating=(str(env["AIGATE_WEBHOOK_CONFIGURATION"]),),
        cert_validity=datetime.timedelta(seconds=int(str(env["AIGATE_WEBHOOK_CERT_VALIDITY_SECONDS"]))),
    )
    assert settings.hosts[0] == f"{name}-webhook.{namespace}.svc"
    # as the operator's own ServiceAccount: the chart's RBAC must be enough for its key material
    account = f"system:serviceaccount:{namespace}:{name}"
    with cluster.api_client() as api:
        api.set_default_header("Impersonate-User", account)
        tls = CertRotator(api, settings).ensure()
        assert ensure_signing_key(api, namespace, str(env["AIGATE_SIGNING_KEY_SECRET"]), tmp_path / "key" / "k")
    injected = base64.b64encode(tls.bundle).decode()
    assert bundles(cluster, name) == [injected] * len(WEBHOOK_IDS)

    def can(verb: str, what: str, ns: str | None = namespace, sub: str = "", user: str = account) -> bool:
        args = ["auth", "can-i", verb, what, *(["-n", ns] if ns else []), *([f"--subresource={sub}"] if sub else [])]
        return cluster.kubectl(*args, as_user=user, check=False).stdout.strip() == "yes"

    assert can("patch", "aiworkloads.aigate.dev", "fraud", "status") and can("watch", "configmaps", "fraud")
    assert can("create", "jobs", f"{namespace}-gates") and can("create", "serviceaccounts", f"{namespace}-gates")
    assert not can("get", "pods", f"{namespace}-gates", "log"), "a run's result comes back through its ConfigMap"
    assert not can("list", "secrets", "fraud"), "the operator reads a Secret by name, never lists them"
    assert not can("create", "deployments", "fraud") and not can("create", "secrets", "fraud")
    assert not can("delete", f"validatingwebhookconfigurations/{name}", None)
    assert not can("update", "validatingwebhookconfigurations/someone-elses", None)

    # a team member with the built-in edit role writes AIWorkloads (aggregated by the chart), never their status
    cluster.kubectl("create", "rolebinding", "alice-edit", "--clusterrole=edit", "--user=alice", "-n", namespace)
    cluster.wait_for(
        lambda: can("create", "aiworkloads.aigate.dev", user="alice"), what="edit to aggregate aigate's AIWorkload rule"
    )
    assert can("delete", "aiworkloads.aigate.dev", user="alice")
    assert not can("patch", "aiworkloads.aigate.dev", sub="status", user="alice")
    assert not can("update", "aiworkloads.aigate.dev", sub="status", user="alice")

    # an upgrade with changed values changes what it should and keeps the injected caBundle
    done = run_helm(helm, *args, "--set", "webhook.timeoutSeconds=7", kubeconfig=cluster.kubeconfig, timeout=300)
    assert done.returncode == 0, done.stderr
    hooks = [w for k in KINDS for w in cluster.get_json(k, name)["webhooks"]]
    assert [w["timeoutSeconds"] for w in hooks] == [7] * len(WEBHOOK_IDS)
    kept = [injected] * len(WEBHOOK_IDS)
    assert bundles(cluster, name) == kept, "helm upgrade must not take the operator's caBundle back"
    history = run_helm(helm, "history", "aigate", "-n", namespace, "-o", "json", kubeconfig=cluster.kubeconfig)
    assert [r["status"] for r in json.loads(history.stdout)] == ["superseded", "deployed"]

    done = run_helm(helm, "uninstall", "aigate", "-n", namespace, "--no-hooks", kubeconfig=cluster.kubeconfig)
    assert done.returncode == 0, done.stderr
    for kind in KINDS:
        assert cluster.kubectl("get", kind, name, check=False).returncode != 0, f"{kind} {name} left behind"
    left = cluster.kubectl("get", "clusterroles,clusterrolebindings", "-o", "name").stdout
    assert name not in left
