"""Every object the chart renders, for every ci/*-values.yaml, is accepted by the real API server
(`kubectl apply --dry-run=server`): schemas, defaulting, admission plugins and RBAC escalation checks included.

Objects of kinds the test cluster does not serve (the Prometheus Operator's, cert-manager's, and AIGatePolicy until
its CRD exists) cannot be checked there; the test names them, and fails if anything else goes unchecked.
Unlike an install, nothing here persists except the namespaces and ServiceAccounts the dry run needs: the webhook
configurations are never created for real, so other tests on this cluster are not gated by a webhook with no
server behind it."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from localcluster.aigate_operator import install_crd
from localcluster.testing import Cluster

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helmchart import CI_VALUES, ROOT, find_helm, template_text

NOT_SERVED_HERE = {
    ("monitoring.coreos.com", "ServiceMonitor"): "the Prometheus Operator's CRD",
    ("monitoring.coreos.com", "PrometheusRule"): "the Prometheus Operator's CRD",
    ("cert-manager.io", "Issuer"): "cert-manager's CRD",
    ("cert-manager.io", "Certificate"): "cert-manager's CRD",
    ("aigate.dev", "AIGatePolicy"): "aigate's AIGatePolicy CRD (not generated yet)",
}


def _group(obj: dict[str, Any]) -> str:
    api = str(obj["apiVersion"])
    return api.split("/")[0] if "/" in api else ""


@pytest.fixture(scope="module")
def helm() -> Path:
    return find_helm()


@pytest.fixture
def release_namespace(cluster: Cluster) -> Iterator[str]:
    ns = cluster.create_namespace("chart")
    yield ns
    cluster.delete_namespace(ns)
    cluster.delete_namespace(f"{ns}-gates")


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_rendered_object_is_accepted_by_the_api_server(
    cluster: Cluster, helm: Path, release_namespace: str, values: Path
) -> None:
    install_crd(cluster.kubectl)  # the CRD the chart carries is the same (tests/test_chart.py)
    gates = f"{release_namespace}-gates"
    text = template_text(helm, values, sets=(f"gates.namespace={gates}",), namespace=release_namespace)
    objs = [o for o in yaml.safe_load_all(text) if o]
    cluster.ensure_namespace(gates)
    # a Pod's ServiceAccount must exist for admission to accept it, and a dry run creates nothing
    accounts = [o for o in objs if o["kind"] == "ServiceAccount"]
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": accounts}))

    checked = [o for o in objs if (_group(o), o["kind"]) not in NOT_SERVED_HERE]
    unchecked = sorted({f"{o['kind']} ({NOT_SERVED_HERE[(_group(o), o['kind'])]})" for o in objs if o not in checked})
    served = cluster.kubectl("api-resources", "-o", "name").stdout.split()
    for group, kind in NOT_SERVED_HERE:
        plural = {"AIGatePolicy": "aigatepolicies"}.get(kind, kind.lower() + "s")
        assert f"{plural}.{group}" not in served, f"{kind} is served now: check it here instead of skipping it"
    if unchecked:
        warnings.warn(f"{values.name}: not checked by the API server: {', '.join(unchecked)}", stacklevel=1)

    doc = json.dumps({"apiVersion": "v1", "kind": "List", "items": checked})
    done = cluster.kubectl(
        "apply", "--dry-run=server", "--server-side", "--field-manager=helm", "-f", "-", input=doc, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == len(checked), done.stdout
    assert all(line.endswith("(server dry run)") for line in lines), done.stdout


def test_a_gate_job_pod_runs_under_the_gate_namespaces_restricted_pod_security(
    cluster: Cluster, helm: Path, release_namespace: str
) -> None:
    """The chart labels the gate namespace `pod-security.kubernetes.io/enforce: restricted`; the pod of the gate Job
    the operator creates (controller/jobs.py) must pass it, or no gate would ever run there."""
    from aigate.api.load import load_workload_file
    from aigate.controller import jobs

    gates = f"{release_namespace}-gates"
    objs = [o for o in yaml.safe_load_all(template_text(helm, sets=(f"gates.namespace={gates}",))) if o]
    [namespace] = [o for o in objs if o["kind"] == "Namespace"]
    cluster.kubectl("apply", "-f", "-", input=json.dumps(namespace))
    workload = load_workload_file(ROOT / "examples" / "fraud-review-assistant-remediated.yaml").workload
    workload.metadata.uid = "00000000-0000-0000-0000-000000000001"  # as read back from the API server
    job = jobs.gate_job(
        jobs.GateRun.of(workload, gates, "sha256:" + "0" * 64, "r1"),
        workload,
        image="aigate:dev",
        active_deadline_s=600,
        ttl_after_finished_s=60,
        backoff_limit=0,
    )
    template = job["spec"]["template"]
    account = template["spec"].get("serviceAccountName")
    if account:
        cluster.kubectl("create", "serviceaccount", account, "-n", gates, check=False)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "gate", "namespace": gates},
        "spec": template["spec"],
    }
    pod["spec"] = {**pod["spec"], "restartPolicy": "Never"}
    done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False)
    assert done.returncode == 0, done.stderr
    assert "pod/gate created (server dry run)" in done.stdout
    # and the namespace does refuse what the restricted standard forbids
    root = {**pod, "spec": {**pod["spec"], "securityContext": {"runAsNonRoot": False, "runAsUser": 0}}}
    done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(root), check=False)
    assert done.returncode != 0 and 'violates PodSecurity "restricted:latest"' in done.stderr, done.stderr
