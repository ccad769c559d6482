"""`kubectl aigate why|evidence|report` against the real local control plane: AIWorkloads whose status and evidence
ConfigMap are what the operator writes (signed here with a test key, published as the operator publishes its own),
asked through kubectl's plugin mechanism with kubectl's flags, including --verify refusing tampered, re-signed and
stale evidence, with the key from the cluster as a user who holds only the built-in view role."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from clusterkit import kubectl_aigate  # noqa: E402

from aigate.api.digest import spec_digest  # noqa: E402
from aigate.controller.signingkey import publish_public_key  # noqa: E402
from aigate.evidence.keys import key_id, load_private_key, write_keypair  # noqa: E402
from aigate.pipeline import judge, sign_predicate  # noqa: E402
from aigate.policy.conditions import gate_conditions, ready_condition  # noqa: E402
from aigate.times import rfc3339, utcnow  # noqa: E402
from factories import all_valid_faults, example_doc, measurements, model, resolved_from, run  # noqa: E402
from localcluster.aigate_operator import OPERATOR_NAMESPACE, grant_public_key_readers, install_crd  # noqa: E402
from localcluster.testing import Cluster  # noqa: E402

CASES = [f"c{i}" for i in range(10)]


def healthy() -> Any:
    return measurements(
        {
            # six repeats of the ten cases: a p95 is judged only on 59 samples or more
            "primary": model(
                "primary", [run(c, "primary", repeat=r) for r in range(6) for c in CASES], provider="anthropic"
            ),
            "fallback": model("fallback", [run(c, "fallback", repeat=r) for r in range(6) for c in CASES]),
        },
        all_valid_faults(CASES),
    )


class Gated:
    """AIWorkloads in one namespace, each with the status and evidence ConfigMap the operator would write."""

    def __init__(self, cluster: Cluster, namespace: str, keys: Path) -> None:
        self.cluster, self.ns = cluster, namespace
        self.key = load_private_key(keys / "aigate.key")
        self.pub = keys / "aigate.pub"

    def create(self, name: str, **spec: Any) -> dict[str, Any]:
        doc = example_doc()
        doc["metadata"] = {"name": name, "namespace": self.ns}
        doc["spec"]["prompts"] = [{"inline": "You review fraud cases."}]
        doc["spec"].update(spec)
        self.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
        body = self.cluster.get_json("aiworkload", name, "-n", self.ns)
        resolved = resolved_from(doc)
        now = utcnow()
        gates, predicate, digest = judge(resolved, healthy(), now=now, key_id=key_id(self.key.public_key()))
        assert digest == spec_digest(resolved)
        envelope = sign_predicate(resolved, digest, predicate, self.key)
        cm = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{name}-aigate-evidence", "namespace": self.ns},
            "data": {"evidence.json": json.dumps(envelope)},
        }
        self.cluster.kubectl("apply", "-f", "-", input=json.dumps(cm))
        generation = body["metadata"]["generation"]
        status = {
            "status": {
                "observedGeneration": generation,
                "specDigest": digest,
                "phase": "Passed" if predicate.decision == "PASS" else "Failed",
                "decision": predicate.decision,
                "conditions": [
                    *gate_conditions(gates, generation, now),
                    ready_condition(gates, predicate.decision or "FAIL", predicate.expires_at, generation, now),
                ],
                "evidence": {
                    "configMap": f"{name}-aigate-evidence",
                    "digest": digest,
                    "keyId": key_id(self.key.public_key()),
                    "issuedAt": rfc3339(now),
                    "expiresAt": rfc3339(predicate.expires_at),
                },
            }
        }
        self.cluster.kubectl(
            "patch", "aiworkload", name, "-n", self.ns, "--subresource=status", "--type=merge", "-p", json.dumps(status)
        )
        return envelope


@pytest.fixture(scope="module")
def gated(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gated]:
    install_crd(cluster.kubectl)
    ns = cluster.create_namespace("plugin")
    keys = tmp_path_factory.mktemp("keys")
    write_keypair(keys, "ecdsa-p256")
    g = Gated(cluster, ns, keys)
    # what the operator does at start-up (the operator's own test checks it does), and the chart's RBAC for it
    cluster.ensure_namespace(OPERATOR_NAMESPACE)
    grant_public_key_readers(cluster.kubectl)
    with cluster.api_client() as api:
        publish_public_key(api, OPERATOR_NAMESPACE, g.key.public_key())
    g.create("ready")
    g.create("over-budget", budget={"monthlyUSD": 1000, "maxCostPerRequestUSD": 0.05, "gateRunMaxUSD": 5})
    yield g
    cluster.delete_namespace(ns)


def test_why_a_passing_workload(cluster: Cluster, gated: Gated) -> None:
    r = kubectl_aigate(cluster, "why", "ready", "-n", gated.ns)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"AIWorkload {gated.ns}/ready: decision PASS (phase Passed)"
    assert "Every gate passes." in lines
    assert lines[-1].startswith(f"Evidence: {gated.ns}/ready-aigate-evidence, expires ")
    assert "(in 30 days)" in lines[-1] or "(in 29 days)" in lines[-1]


def test_why_names_the_failed_gate_and_what_to_change(cluster: Cluster, gated: Gated) -> None:
    r = kubectl_aigate(cluster, "why", "over-budget", "--namespace", gated.ns)
    assert r.returncode == 1, r.stderr
    out = r.stdout
    assert f"AIWorkload {gated.ns}/over-budget: decision FAIL (phase Failed)" in out
    assert "\nFailed gates:\n  Cost: Projected monthly cost: $6,000 = 6.0x target $1,000\n" in out
    assert "    change: a cheaper model, fewer tokens" in out
    assert "Reliability:" not in out.split("Failed gates:")[1].split("Evidence:")[0]
    assert r.stderr == ""


def test_evidence_verify_with_the_operators_key(cluster: Cluster, gated: Gated) -> None:
    r = kubectl_aigate(cluster, "evidence", "ready", "-n", gated.ns, "--verify", "--key", str(gated.pub))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith(f"evidence in {gated.ns}/ready-aigate-evidence verified: {gated.ns}/ready decision PASS")
    assert r.stdout.rstrip().endswith("; for the current spec")
    # the same key from a Secret holding aigate.pub, as an installation keeps its key pair
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "signing", "namespace": gated.ns},
        "data": {"aigate.pub": base64.b64encode(gated.pub.read_bytes()).decode()},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(secret))
    r = kubectl_aigate(cluster, "evidence", "ready", "-n", gated.ns, "--verify", "--key-secret", f"{gated.ns}/signing")
    assert r.returncode == 0, r.stdout + r.stderr
    # without --verify: the envelope, for aigate verify or cosign
    r = kubectl_aigate(cluster, "evidence", "ready", "-n", gated.ns)
    assert json.loads(r.stdout)["payloadType"] == "application/vnd.in-toto+json"


def test_verify_refuses_tampered_evidence(cluster: Cluster, gated: Gated) -> None:
    envelope = gated.create("tampered", budget={"monthlyUSD": 1000, "maxCostPerRequestUSD": 0.05, "gateRunMaxUSD": 5})
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["decision"] = "PASS"
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    patch = {"data": {"evidence.json": json.dumps(envelope)}}
    cluster.kubectl("patch", "configmap", "tampered-aigate-evidence", "-n", gated.ns, "-p", json.dumps(patch))
    r = kubectl_aigate(cluster, "evidence", "tampered", "-n", gated.ns, "--verify", "--key", str(gated.pub))
    assert r.returncode == 1
    assert r.stderr.startswith(
        f"evidence in {gated.ns}/tampered-aigate-evidence rejected: signature does not verify with key aigate.pub"
    )
    # the report refuses it too, rather than render what was forged
    out = gated.pub.parent / "tampered.html"
    r = kubectl_aigate(cluster, "report", "tampered", "-n", gated.ns, "--key", str(gated.pub), "-o", str(out))
    assert (r.returncode, out.exists()) == (1, False)


def test_verify_refuses_another_key_and_a_changed_spec(cluster: Cluster, gated: Gated, tmp_path: Path) -> None:
    other = tmp_path / "other"
    write_keypair(other, "ecdsa-p256")
    r = kubectl_aigate(cluster, "evidence", "ready", "-n", gated.ns, "--verify", "--key", str(other / "aigate.pub"))
    assert r.returncode == 1
    assert "rejected: signature does not verify with key aigate.pub" in r.stderr
    gated.create("edited")
    patch = {"spec": {"slo": {"p95LatencyMs": 3000, "timeoutMs": 5000, "maxErrorRate": 0.01, "minPassRate": 0.95}}}
    cluster.kubectl("patch", "aiworkload", "edited", "-n", gated.ns, "--type=merge", "-p", json.dumps(patch))
    r = kubectl_aigate(cluster, "evidence", "edited", "-n", gated.ns, "--verify", "--key", str(gated.pub))
    assert r.returncode == 1
    assert "(spec changed after signing)" in r.stderr


def test_report_from_the_clusters_evidence_and_the_contexts_namespace(
    cluster: Cluster, gated: Gated, tmp_path: Path
) -> None:
    # a kubeconfig whose context names the namespace: no -n needed, as with kubectl
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["contexts"][0]["context"]["namespace"] = gated.ns
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    out = tmp_path / "report.html"
    context = config["contexts"][0]["name"]
    r = kubectl_aigate(
        cluster, "report", "over-budget", "--context", context, "--key", str(gated.pub), "-o", str(out),
        kubeconfig=kubeconfig,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == f"report of {gated.ns}/over-budget written to {out}: evidence verified"
    page = out.read_text()
    assert f"AI Production Readiness: FAIL · {gated.ns}/over-budget" in page
    assert f"rendered from signed evidence ConfigMap {gated.ns}/over-budget-aigate-evidence" in page
    assert "Signature verified with key" in page
    r = kubectl_aigate(cluster, "report", "ready", "-o", str(out), kubeconfig=kubeconfig)
    assert r.returncode == 0 and "evidence NOT verified" in r.stderr


def test_errors_are_one_line_and_exit_2(cluster: Cluster, gated: Gated, tmp_path: Path) -> None:
    r = kubectl_aigate(cluster, "why", "nope", "-n", gated.ns)
    assert (r.returncode, r.stderr.strip()) == (
        2,
        f'error: aiworkloads.aigate.dev "nope" not found in namespace {gated.ns}',
    )
    r = kubectl_aigate(cluster, "why", "ready", "-n", gated.ns, "--context", "elsewhere")
    assert r.returncode == 2 and "error: --context elsewhere: no such context" in r.stderr
    r = kubectl_aigate(cluster, "evidence", "ready", "-n", gated.ns, "--verify", "--operator-namespace", "nowhere")
    assert (r.returncode, r.stderr.strip()) == (
        2,
        "error: --verify needs the operator's public key: ConfigMap nowhere/aigate-public-key not found "
        "(--operator-namespace NAMESPACE if the operator runs elsewhere, or --key FILE or --key-secret NAMESPACE/NAME)",
    )
    r = kubectl_aigate(cluster, "report", "ready", "-n", gated.ns)
    assert r.returncode == 2 and "the following arguments are required: -o/--output" in r.stderr
    for res in (r,):
        assert "Traceback" not in res.stderr


def test_evidence_in_another_namespace(cluster: Cluster, gated: Gated) -> None:
    """status.evidence.namespace (the trusted copy moving to the operator's namespace) is where the plugin looks."""
    from aigate.kubectl_plugin import connect, stored_evidence

    other = cluster.create_namespace("trusted")
    try:
        cm = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "copy", "namespace": other},
            "data": {"evidence.json": '{"payload": "x"}'},
        }
        cluster.kubectl("apply", "-f", "-", input=json.dumps(cm))
        c = connect(str(cluster.kubeconfig), None, gated.ns)
        w = {"metadata": {"name": "ready"}, "status": {"evidence": {"configMap": "copy", "namespace": other}}}
        got = stored_evidence(c, w)
        assert (got.where, got.raw) == (f"{other}/copy", '{"payload": "x"}')
    finally:
        cluster.delete_namespace(other)


AIWORKLOADS_VIEW = {
    # what the chart aggregates into the built-in view role (rbac.aggregateToDefaultRoles)
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {"name": "test-aiworkloads-view", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
    "rules": [{"apiGroups": ["aigate.dev"], "resources": ["aiworkloads"], "verbs": ["get", "list", "watch"]}],
}


def viewer_kubeconfig(cluster: Cluster, ns: str, out: Path) -> Path:
    """A kubeconfig for ServiceAccount NS/viewer, bound to the built-in view role in NS and nothing else."""
    cluster.kubectl("apply", "-f", "-", input=json.dumps(AIWORKLOADS_VIEW))
    cluster.kubectl("create", "serviceaccount", "viewer", "-n", ns)
    cluster.kubectl("create", "rolebinding", "viewer", "--clusterrole=view", f"--serviceaccount={ns}:viewer", "-n", ns)
    user = f"system:serviceaccount:{ns}:viewer"
    cluster.wait_for(
        lambda: (
            cluster.kubectl("auth", "can-i", "get", "aiworkloads", "-n", ns, f"--as={user}", check=False).stdout.strip()
            == "yes"
        ),
        what="the view role aggregating AIWorkloads",
    )
    token = cluster.kubectl("create", "token", "viewer", "-n", ns).stdout.strip()
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"] = [{"name": "viewer", "user": {"token": token}}]
    for c in config["contexts"]:
        c["context"]["user"] = "viewer"
    out.write_text(yaml.safe_dump(config))
    return out


def test_verify_with_the_key_the_operator_published_as_a_viewer(cluster: Cluster, gated: Gated, tmp_path: Path) -> None:
    kubeconfig = viewer_kubeconfig(cluster, gated.ns, tmp_path / "viewer")
    user = f"system:serviceaccount:{gated.ns}:viewer"
    for forbidden in (("get", "secrets", "-n", gated.ns), ("get", "configmaps", "-n", OPERATOR_NAMESPACE)):
        assert cluster.kubectl("auth", "can-i", *forbidden, f"--as={user}", check=False).stdout.strip() == "no"
    r = kubectl_aigate(cluster, "evidence", "ready", "-n", gated.ns, "--verify", kubeconfig=kubeconfig)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith(f"evidence in {gated.ns}/ready-aigate-evidence verified: {gated.ns}/ready decision PASS")
    envelope = gated.create("forged", budget={"monthlyUSD": 1000, "maxCostPerRequestUSD": 0.05, "gateRunMaxUSD": 5})
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["predicate"]["decision"] == "FAIL"
    statement["predicate"]["decision"] = "PASS"
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    patch = {"data": {"evidence.json": json.dumps(envelope)}}
    cluster.kubectl("patch", "configmap", "forged-aigate-evidence", "-n", gated.ns, "-p", json.dumps(patch))
    r = kubectl_aigate(cluster, "evidence", "forged", "-n", gated.ns, "--verify", kubeconfig=kubeconfig)
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.startswith(
        f"evidence in {gated.ns}/forged-aigate-evidence rejected: signature does not verify with key "
        f"ConfigMap {OPERATOR_NAMESPACE}/aigate-public-key"
    ), r.stderr
    # evidence signed with another key than the one published is refused too
    other = tmp_path / "other"
    write_keypair(other, "ecdsa-p256")
    with cluster.api_client() as api:
        publish_public_key(api, OPERATOR_NAMESPACE, load_private_key(other / "aigate.key").public_key())
    try:
        r = kubectl_aigate(cluster, "evidence", "ready", "-n", gated.ns, "--verify", kubeconfig=kubeconfig)
        assert r.returncode == 1 and "rejected: signature does not verify" in r.stderr, r.stdout + r.stderr
    finally:
        with cluster.api_client() as api:
            assert publish_public_key(api, OPERATOR_NAMESPACE, gated.key.public_key()) == "replaced"
