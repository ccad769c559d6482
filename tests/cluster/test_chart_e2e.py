"""The chart installed as a person installs it (`helm upgrade --install --wait`, then `helm test`) on the real node:
the operator and the webhook's two replicas run in-cluster as containers from the image `make image` built, with no
harness around them. Against that install: a failing workload's labelled Deployment is refused by the API server
naming the failed gate; after the fix a gate Job runs as a container from the same image in the gate namespace and
the same Deployment is admitted; a namespace editor (the built-in `edit` role, no AIGatePolicy installed) who
patches their failing workload to `enforcement: audit`, or writes a labelled ReplicaSet, ReplicationController or a
Pod "owned" by a ConfigMap instead of a Deployment, is refused all the same; with the upstream CRDs of the custom
gated kinds installed (KServe, LeaderWorkerSet, Knative, ToolHive, Argo Rollouts; no controller), an object of each
labelled for the failing workload is refused, for the passing one admitted, unlabelled untouched, as the admin and
as the editor, and `kubectl aigate why -f` explains each refusal; a passing workload that declares an MCP server
(a real one its gate Job's pod lists the tools of) has a labelled MCPServer running the declared image admitted, and
one running another image refused naming both; an unlabelled Rollout whose spec.workloadRef names a Deployment
admitted while its workload passed is admitted, and refused once that workload fails; a `helm upgrade` to changed
values (the webhook pods roll) keeps refusing and admitting throughout; the serving certificate the
operator issues (a short validity here) is renewed and served by every webhook pod without a restart; after launch,
canaries (every 15 s here) notice a primary answering under a new model identity or failing a case that passed,
refuse rollouts until the re-gate passes, stop at their daily cap and tell an unreachable endpoint from a drift;
`helm uninstall` leaves no webhook configuration, gate Job or per-run Secret, and keeps the CRDs and AIWorkloads
(`crds.keep`).

One install for the module (the tests run in order and share it). The workloads and the simulator are those of
test_operator.py (flows.py, conftest.py), where the operator runs as a process on this machine."""

from __future__ import annotations

import base64
import functools
import json
import socket
import ssl
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flows
import pytest
import release
import yaml
from clusterkit import bind_editor, editor, kubectl_aigate
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from release import CRDS, GATES, KINDS, NS, RELEASE, helm, helm_args, pods

import upstreamcrds
from aigate.policy.kinds import GatedKind
from gatedexamples import CUSTOM, MCP_IMAGE, gated_object
from localcluster.testing import Cluster, cluster_image
from mcp_servers.casetools import serve_casetools

CERT_VALIDITY_S = 120
"""Renewed with a third left (80 s in): the old one stays valid 40 s more, ample for the kubelet (syncFrequency
10 s on the local node) to bring the webhook pods' Secret volume up to date."""

VALUES = {
    "crds": {"install": True, "keep": True},
    "webhook": {"tls": {"certValiditySeconds": CERT_VALIDITY_S}},
}
UPGRADED = {
    **VALUES,
    "webhook": {
        **VALUES["webhook"],
        "timeoutSeconds": 7,
        # the webhook pods roll (one new pod ready before an old one goes) while rollouts are probed
        "resources": {"requests": {"cpu": "50m", "memory": "96Mi"}, "limits": {"memory": "256Mi"}},
        "matchConditions": [
            {"name": "not-the-release-bot", "expression": "request.userInfo.username != 'system:serviceaccount:ci:bot'"}
        ],
    },
}


@dataclass
class Install:
    helm: Path
    first_cert: bytes
    """The serving certificate (DER) in the webhook's Secret right after the install."""


def operator_pod(cluster: Cluster) -> dict[str, Any]:
    [pod] = pods(cluster, "operator")
    return pod


def restarts(pod: dict[str, Any]) -> int:
    return sum(c["restartCount"] for c in pod["status"]["containerStatuses"])


def ca_bundle(cluster: Cluster) -> bytes:
    [hook, *_] = cluster.get_json("validatingwebhookconfiguration", RELEASE)["webhooks"]
    return base64.b64decode(hook["clientConfig"]["caBundle"])


def served_cert(cluster: Cluster, pod: dict[str, Any] | None = None) -> bytes:
    """The certificate the webhook presents, verified as the API server verifies it (the injected caBundle, the
    Service's DNS name) and reached as the API server reaches it, the Service's ClusterIP from this machine; or
    that one pod's, on its own address."""
    ctx = ssl.create_default_context(cadata=ca_bundle(cluster).decode())
    service = f"{RELEASE}-webhook"
    if pod is None:
        address = (cluster.get_json("service", service, "-n", NS)["spec"]["clusterIP"], 443)
    else:
        [port] = [p["containerPort"] for c in pod["spec"]["containers"] for p in c["ports"] if p["name"] == "webhook"]
        address = (pod["status"]["podIP"], port)
    host = f"{service}.{NS}.svc"
    with socket.create_connection(address, timeout=10) as raw, ctx.wrap_socket(raw, server_hostname=host) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der
    return der


def secret_cert(cluster: Cluster) -> bytes:
    data = cluster.get_json("secret", f"{RELEASE}-webhook-tls", "-n", NS)["data"]
    return x509.load_pem_x509_certificate(base64.b64decode(data["tls.crt"])).public_bytes(Encoding.DER)


@pytest.fixture(scope="module")
def installed(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Install]:
    values = tmp_path_factory.mktemp("values") / "e2e-values.yaml"
    values.write_text(yaml.safe_dump(VALUES))
    with release.installed(cluster, values) as tool:
        # the Secret's certificate, not the served one: reaching the webhook here would hide an install that
        # returns before admission works (test_right_after_the_install_...)
        yield Install(tool, secret_cert(cluster))


@pytest.fixture(scope="module")
def team(cluster: Cluster) -> Iterator[str]:
    """The team's namespace, for the whole module (its AIWorkloads outlive the uninstall)."""
    ns = cluster.create_namespace("team")
    yield ns
    release.delete_team_namespace(cluster, ns)


EDITED = "edited-by-the-team"
"""The failing AIWorkload the namespace editor wrote and then tries to get past the gate."""


@pytest.fixture(scope="module")
def editors(cluster: Cluster, installed: Install, simulator: Any) -> Iterator[str]:
    """A namespace whose team member holds the built-in `edit` ClusterRole there and nowhere else (the chart
    aggregates the AIWorkload rights into it), with a failing AIWorkload they wrote themselves. No AIGatePolicy is
    installed: the platform default is the policy."""
    ns = cluster.create_namespace("editors")
    bind_editor(cluster, ns)
    flows.setup_namespace(cluster, ns, EDITED)
    made = editor(cluster, "apply", "-f", "-", input=json.dumps(flows.workload(ns, EDITED, simulator, approval=False)))
    assert made.returncode == 0, made.stderr
    flows.wait_decision(cluster, ns, EDITED, "FAIL")
    yield ns
    release.delete_team_namespace(cluster, ns)


def as_editor(cluster: Cluster, doc: dict[str, Any]) -> Any:
    """The editor's `kubectl create --dry-run=server`: through the webhook, nothing persisted."""
    return editor(cluster, "create", "--dry-run=server", "-f", "-", input=json.dumps(doc))


def labelled(kind: str, ns: str, name: str, owners: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A ReplicaSet or a Pod labelled for the editor's failing workload, as a person writes one by hand."""
    labels = {"app": name, "aigate.dev/workload": EDITED}
    meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": labels}
    if owners:
        meta["ownerReferences"] = owners
    pod = {"containers": [{"name": "app", "image": "registry.example/fraud-app:1.0"}]}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod}
    template = {"metadata": {"labels": labels}, "spec": pod}
    spec = {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": template}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec}


NOT_CLEARED = f"AIWorkload {{ns}}/{EDITED} is not cleared for rollout"
RAISED = "spec.enforcement audit is raised to enforce, the floor set by the platform default"


def probe(cluster: Cluster, ns: str, wl: str, app: str) -> Any:
    """A labelled rollout through the API server (and so through the webhook), not persisted."""
    doc = flows.deployment(ns, app, wl)
    return cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(doc), check=False)


def test_right_after_the_install_an_aiworkload_and_a_labelled_deployment_are_judged(
    cluster: Cluster, installed: Install, team: str, simulator: Any
) -> None:
    """`helm upgrade --install --wait` has just returned (the fixture) and nothing has waited since: the chart's
    install-check hook held it until admission worked. Both AIWorkload webhooks fail closed, so the apply succeeding
    means both answered; the Deployment is refused in aigate's words (no evidence yet). No retry."""
    flows.setup_namespace(cluster, team, "first-apply")
    applied = flows.apply(cluster, flows.workload(team, "first-apply", simulator), check=False)
    assert applied.returncode == 0, applied.stderr
    refused = flows.apply(cluster, flows.deployment(team, "first-app", "first-apply"), check=False)
    assert refused.returncode != 0
    assert 'admission webhook "rollouts.aigate.dev" denied the request' in refused.stderr, refused.stderr
    assert f"AIWorkload {team}/first-apply" in refused.stderr, refused.stderr
    # the hook ran, succeeded and was removed (hook-succeeded), leaving no Job, ServiceAccount or RBAC behind
    hook = f"{RELEASE}-install-check"
    for kind, where in (("job", ["-n", NS]), ("serviceaccount", ["-n", NS]), ("clusterrole", []), ("role", ["-n", NS])):
        assert cluster.kubectl("get", kind, hook, *where, check=False).returncode != 0, f"{kind} {hook} left behind"
    gone = cluster.kubectl("delete", "aiworkload", "first-apply", "-n", team, "--wait", "--timeout=60s", check=False)
    assert gone.returncode == 0, gone.stderr


def test_kubectl_aigate_check_install_says_admission_works(cluster: Cluster, installed: Install) -> None:
    done = kubectl_aigate(cluster, "check-install", "--operator-namespace", NS, "--wait", "30s")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("admission works (")
    assert f"a dry-run AIWorkload in {NS} was admitted by acceptances.aigate.dev, aiworkloads.aigate.dev" in done.stdout
    # in a namespace the webhooks do not judge, a dry-run would prove nothing: said, not passed
    done = kubectl_aigate(cluster, "check-install", "--operator-namespace", NS, "-n", "kube-system")
    assert done.returncode == 1
    assert "do not select namespace kube-system" in done.stderr, done.stderr


def test_helm_test_passes_on_the_install(cluster: Cluster, installed: Install) -> None:
    # the operator and the webhook's two replicas, containers from the image `make image` built
    running = [operator_pod(cluster), *pods(cluster, "webhook")]
    assert len(running) == 3
    assert {c["image"] for p in running for c in p["spec"]["containers"]} == {cluster_image()}
    assert all(c["ready"] for p in running for c in p["status"]["containerStatuses"])
    out = helm(installed.helm, cluster, "test", RELEASE, "-n", NS, "--logs")
    assert "Phase:          Succeeded" in out and "webhook answered over TLS and refused" in out, out


def test_failing_workload_is_refused_then_the_fix_runs_a_gate_job_and_is_admitted(
    cluster: Cluster, installed: Install, team: str, simulator: Any
) -> None:
    ns = team
    for name in ("fraud-review", "still-failing"):
        flows.setup_namespace(cluster, ns, name)
        flows.apply(cluster, flows.workload(ns, name, simulator, approval=False))
    wl = flows.wait_decision(cluster, ns, "fraud-review", "FAIL")
    assert flows.conditions(wl)["ToolControlGate"]["status"] == "False"
    first_job = wl["status"]["lastRun"]["job"]

    refused = flows.apply(cluster, flows.deployment(ns, "fraud-app", "fraud-review"), check=False)
    assert refused.returncode != 0
    assert "denied the request" in refused.stderr
    assert f"AIWorkload {ns}/fraud-review" in refused.stderr and "toolControl" in refused.stderr, refused.stderr

    flows.apply(cluster, flows.workload(ns, "fraud-review", simulator, approval=True))
    wl = flows.wait_decision(cluster, ns, "fraud-review", "PASS", after_job=first_job)
    job = wl["status"]["lastRun"]["job"]
    assert job != first_job and flows.conditions(wl)["Ready"]["status"] == "True"
    # the run was a container from the chart's image, in the gate namespace, not the team's
    assert job in {j["metadata"]["name"] for j in flows.gate_jobs(cluster, ns, "fraud-review")}
    pods = cluster.get_json("pods", "-n", GATES, "-l", f"job-name={job}")["items"]
    assert pods and all(p["metadata"]["namespace"] == GATES for p in pods)
    assert {c["image"] for p in pods for c in p["spec"]["containers"]} == {cluster_image()}
    assert "Succeeded" in {p["status"]["phase"] for p in pods}, "a retried Job has a pod per attempt"
    assert cluster.get_json("jobs", "-n", ns)["items"] == []

    admitted = flows.apply(cluster, flows.deployment(ns, "fraud-app", "fraud-review"), check=False)
    assert admitted.returncode == 0, admitted.stderr
    flows.wait_decision(cluster, ns, "still-failing", "FAIL")


def test_an_editor_cannot_switch_their_failing_workloads_gate_off(
    cluster: Cluster, installed: Install, editors: str
) -> None:
    """Out of the box (no AIGatePolicy), the namespace editor patches their own failing workload to `enforcement:
    audit`. The patch is theirs to make and is stored, with a warning that the platform default's floor applies;
    their labelled Deployment is still refused, before and after the new gate run, naming the platform default; and
    the evidence and status record `platform-default`."""
    ns = editors
    first_job = flows.get_workload(cluster, ns, EDITED)["status"]["lastRun"]["job"]
    audit = json.dumps({"spec": {"enforcement": "audit"}})
    patched = editor(cluster, "patch", "aiworkload", EDITED, "-n", ns, "--type=merge", "-p", audit)
    assert patched.returncode == 0, patched.stderr
    assert f"Warning: {RAISED}: its rollouts are judged under enforce" in patched.stderr, patched.stderr
    assert flows.get_workload(cluster, ns, EDITED)["spec"]["enforcement"] == "audit"

    deployment = flows.deployment(ns, "audited-app", EDITED)

    def refused_naming_the_default() -> str | None:
        """Every try is refused (while the new spec is judged too); once the webhook's index holds the patch, the
        refusal says the platform default decided."""
        refused = as_editor(cluster, deployment)
        assert refused.returncode != 0, f"admitted under enforcement: audit: {refused.stdout}"
        return refused.stderr if f"({RAISED})" in refused.stderr else None

    said = cluster.wait_for(refused_naming_the_default, timeout=30, what="the refusal naming the platform default")
    assert NOT_CLEARED.format(ns=ns) in said, said

    wl = flows.wait_decision(cluster, ns, EDITED, "FAIL", after_job=first_job)
    assert wl["status"]["policy"]["names"] == ["platform-default"]
    assert (wl["status"]["policy"]["enforcement"], wl["status"]["policy"]["maxValidFor"]) == ("enforce", "720h")
    copy = cluster.get_json("configmap", f"{EDITED}-aigate-evidence", "-n", ns)
    envelope = json.loads(copy["data"]["evidence.json"])
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["predicate"]["policy"]["names"] == ["platform-default"]
    # for real this time: refused, nothing created
    refused = editor(cluster, "apply", "-f", "-", input=json.dumps(deployment))
    assert refused.returncode != 0, "a failing workload's Deployment was admitted under enforcement: audit"
    assert "toolControl" in refused.stderr and f"({RAISED})" in refused.stderr, refused.stderr
    assert cluster.kubectl("get", "deployment", "audited-app", "-n", ns, check=False).returncode != 0


def test_a_labelled_replicaset_of_a_failing_workload_is_refused(
    cluster: Cluster, installed: Install, editors: str
) -> None:
    """Writing the ReplicaSet (or the ReplicationController) a Deployment would have written is judged the same."""
    ns = editors
    for kind in ("ReplicaSet", "ReplicationController"):
        doc = labelled(kind, ns, f"by-hand-{kind.lower()}")
        if kind == "ReplicationController":
            doc["apiVersion"], doc["spec"]["selector"] = "v1", {"app": doc["metadata"]["name"]}
        refused = as_editor(cluster, doc)
        assert refused.returncode != 0, f"a labelled {kind} of a failing workload was admitted"
        assert NOT_CLEARED.format(ns=ns) in refused.stderr, refused.stderr


def test_a_pod_owned_by_a_configmap_is_judged_like_a_bare_one(
    cluster: Cluster, installed: Install, editors: str
) -> None:
    """An ownerReference lets an object through only when it names a gated kind that makes it. A labelled Pod
    "owned" by the team's own ConfigMap (its real uid: the garbage collector would keep it) is refused. One naming a
    ReplicaSet is let through on the kind alone, never looked up (docs/trust-model.md: the garbage collector deletes
    it when no such ReplicaSet exists)."""
    ns = editors
    cm = cluster.get_json("configmap", f"{EDITED}-prompts", "-n", ns)["metadata"]
    by_configmap = [{"apiVersion": "v1", "kind": "ConfigMap", "name": cm["name"], "uid": cm["uid"]}]
    refused = as_editor(cluster, labelled("Pod", ns, "owned-by-a-configmap", by_configmap))
    assert refused.returncode != 0, "a Pod owned by a ConfigMap was let through unjudged"
    assert NOT_CLEARED.format(ns=ns) in refused.stderr, refused.stderr
    assert as_editor(cluster, labelled("Pod", ns, "bare")).returncode != 0
    forged = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "nowhere", "uid": str(uuid.uuid4())}]
    let_through = as_editor(cluster, labelled("Pod", ns, "owned-by-a-forged-replicaset", forged))
    assert let_through.returncode == 0, let_through.stderr


GATED_EDIT = "aigate-test-gated-kinds-edit"


@pytest.fixture(scope="module")
def upstream_crds(cluster: Cluster, installed: Install, team: str, editors: str) -> Iterator[Path]:
    """The custom gated kinds' own CRDs at their pinned releases (hack/build-upstream-crds.sh), no controller: the
    install's webhook already has their rules. Server-side applied (some are a megabyte, too big for kubectl's
    last-applied annotation); the ones this module added are deleted after it, with every object of theirs. The
    namespace editor is bound in the team's namespace too, where the passing workload is."""
    directory = upstreamcrds.crd_dir()
    names = [f"{k.resource}.{k.group}" for k in CUSTOM]
    had = {n for n in names if cluster.kubectl("get", "crd", n, check=False).returncode == 0}
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(directory))
    # polled: `kubectl wait` errors on a CRD whose status has no conditions yet, as right after the apply
    for n in names:
        cluster.wait_for(lambda n=n: established(cluster, n), timeout=120, what=f"CRD {n} Established")
    # what each project's own install aggregates into `edit`: its kinds, for the namespace editor
    editing = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": GATED_EDIT, "labels": {"rbac.authorization.k8s.io/aggregate-to-edit": "true"}},
        "rules": [
            {"apiGroups": [k.group], "resources": [k.resource], "verbs": ["get", "list", "create", "update", "patch"]}
            for k in CUSTOM
        ],
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(editing))
    bind_editor(cluster, team)

    def may_edit_them() -> bool:
        return all(
            editor(cluster, "auth", "can-i", "create", f"{k.resource}.{k.group}", "-n", ns).returncode == 0
            for k in CUSTOM
            for ns in (team, editors)
        )

    cluster.wait_for(may_edit_them, timeout=60, what="the edit ClusterRole aggregating the gated kinds")
    yield directory
    cluster.kubectl("delete", "clusterrole", GATED_EDIT, "--ignore-not-found", check=False)
    for name in names:
        if name not in had:
            cluster.kubectl("delete", "crd", name, "--ignore-not-found", "--wait=false", check=False)


def established(cluster: Cluster, crd: str) -> bool:
    conditions = cluster.get_json("crd", crd).get("status", {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


DENIED = 'admission webhook "rollouts.aigate.dev" denied the request'


def as_admin(cluster: Cluster, doc: dict[str, Any]) -> Any:
    """The admin's `kubectl create --dry-run=server`: through the webhook, nothing persisted."""
    return cluster.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(doc), check=False)


@pytest.mark.parametrize("kind", CUSTOM, ids=lambda k: k.kind)
def test_each_custom_kind_is_judged_at_its_top_level_object(
    cluster: Cluster, installed: Install, team: str, editors: str, upstream_crds: Path, kind: GatedKind
) -> None:
    """Through the API server, as the admin and as the namespace editor (server-side dry-runs: no controller runs,
    nothing is kept): labelled for a failing workload, refused in aigate's usual words; unlabelled, admitted
    untouched; labelled for the passing one, admitted (an MCPServer only when the workload declares it: refused,
    naming both, here, where fraud-review declares none)."""
    for create in (functools.partial(as_admin, cluster), functools.partial(as_editor, cluster)):
        refused = create(gated_object(kind, editors, "gk-failing", EDITED))
        assert refused.returncode != 0, f"a labelled {kind.kind} of a failing workload was admitted"
        assert DENIED in refused.stderr and NOT_CLEARED.format(ns=editors) in refused.stderr, refused.stderr

        plain = create(gated_object(kind, editors, "gk-unlabelled", None))
        assert plain.returncode == 0, plain.stderr

    for create in (functools.partial(as_admin, cluster), functools.partial(as_editor, cluster)):
        passing = create(gated_object(kind, team, "casetools", "fraud-review"))
        if kind.mcp is None:
            assert passing.returncode == 0, passing.stderr
            continue
        assert passing.returncode != 0, "an MCPServer the workload does not declare was admitted"
        said = passing.stderr
        assert f"AIWorkload {team}/fraud-review is not cleared for rollout: MCPServer {team}/casetools" in said, said
        assert "is not one of the MCP servers the workload declares in spec.mcpServers (none)" in said, said


MCP_DECLARING = "mcp-declaring"
"""A passing workload of the team's that declares the casetools MCP server, with the image its MCPServer runs."""
OTHER_MCP_IMAGE = "ghcr.io/example/shell-tools:6"


def declaring_casetools(ns: str, name: str, sim: Any, url: str) -> dict[str, Any]:
    """The flows' passing workload declaring the casetools MCP server at `url` (its image MCP_IMAGE) and every tool
    that server exposes, with the access its annotations state (a write or destructive one needing approval): the
    toolControl gate lists them there and passes."""
    doc = flows.workload(ns, name, sim, approval=True)
    doc["spec"]["tools"] += [
        {"name": "delete_case", "access": "destructive", "approval": "required"},
        {"name": "export_cases", "access": "write", "approval": "required"},
        {"name": "get_case", "access": "read"},
    ]
    doc["spec"]["mcpServers"] = [{"name": "casetools", "url": url, "image": MCP_IMAGE}]
    return doc


def test_an_mcpserver_running_the_image_its_passing_workload_declares_is_admitted(
    cluster: Cluster, installed: Install, team: str, upstream_crds: Path, simulator: Any
) -> None:
    """The other side of the MCPServer case above: a workload declaring the casetools MCP server (a real one, served
    from this machine on the pod bridge's gateway, where its gate Job's pod lists the server's tools) passes; an
    MCPServer labelled for it and running the declared image is admitted, one running another image refused naming
    both images, as the admin and as the namespace editor (server-side dry-runs, nothing kept)."""
    if cluster.host_address is None:
        pytest.skip("serves the MCP server from this machine to the gate Job's pods")
    [kind] = [k for k in CUSTOM if k.mcp is not None]
    ns = team
    flows.setup_namespace(cluster, ns, MCP_DECLARING)
    try:
        with serve_casetools(host=cluster.host_address) as casetools:
            flows.apply(cluster, declaring_casetools(ns, MCP_DECLARING, simulator, casetools.url))

            def finished() -> dict[str, Any] | None:
                wl = flows.get_workload(cluster, ns, MCP_DECLARING)
                st = wl.get("status") or {}
                ended = st.get("phase") == "Error" or (st.get("lastRun") or {}).get("finishedAt")
                return wl if ended and st.get("phase") in ("Passed", "Failed", "Error") else None

            wl = cluster.wait_for(finished, timeout=240, what=f"{ns}/{MCP_DECLARING} gate run finished")
            assert wl["status"].get("decision") == "PASS", json.dumps(wl["status"])[:3000]
            assert flows.conditions(wl)["ToolControlGate"]["status"] == "True"
            assert casetools.authorizations, "the gate run never reached the declared MCP server"

        served = f"served at http://mcp-casetools-proxy.{ns}.svc.cluster.local:8080"
        # the webhook learns the new evidence from its watch, a moment after the status says PASS
        cluster.wait_for(
            lambda: as_admin(cluster, gated_object(kind, ns, "casetools", MCP_DECLARING)).returncode == 0,
            timeout=30,
            what="the webhook admitting the declared MCPServer once the evidence is indexed",
        )
        for create in (functools.partial(as_admin, cluster), functools.partial(as_editor, cluster)):
            declared = create(gated_object(kind, ns, "casetools", MCP_DECLARING))
            assert declared.returncode == 0, declared.stderr

            other = create(gated_object(kind, ns, "casetools", MCP_DECLARING, image=OTHER_MCP_IMAGE))
            assert other.returncode != 0, "an MCPServer running an image its workload does not declare was admitted"
            said = other.stderr
            assert DENIED in said, said
            assert (
                f"AIWorkload {ns}/{MCP_DECLARING} is not cleared for rollout: MCPServer {ns}/casetools (image "
                f"{OTHER_MCP_IMAGE}, {served}) runs image {OTHER_MCP_IMAGE}, not {MCP_IMAGE}, the image the workload "
                "declares for MCP server casetools"
            ) in said, said
    finally:
        # gone before the uninstall test, which finds only fraud-review and still-failing in the team's namespace
        gone = cluster.kubectl("delete", "aiworkload", MCP_DECLARING, "-n", ns, "--wait", "--timeout=60s", check=False)
    assert gone.returncode == 0, gone.stderr


REF_TARGET, REF_APP = "ref-target", "ref-app"
"""The workload whose Deployment is admitted while it passes and outlives its passing, and that Deployment."""
REF_DENIED = 'admission webhook "workloadrefs.aigate.dev" denied the request'


def ref_rollout(ns: str, name: str, deployment: str) -> dict[str, Any]:
    """An unlabelled Argo Rollout with no template, running the named Deployment's through spec.workloadRef."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": deployment}},
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
            "strategy": {"canary": {"steps": [{"setWeight": 20}]}},
        },
    }


def test_an_unlabelled_rollout_is_judged_by_the_label_of_the_deployment_its_workload_ref_names(
    cluster: Cluster, installed: Install, editors: str, upstream_crds: Path, simulator: Any
) -> None:
    """Issue 25's bypass: label only the Deployment, and let an unlabelled Rollout run its template (Argo scales the
    Deployment to zero and runs the template in ReplicaSets the Rollout owns).

    A labelled Deployment of a failing workload cannot be stored (it is refused; so is labelling one afterwards, an
    UPDATE the rollout webhook judges), so the real way to hold one is a Deployment admitted while its workload
    passed, whose workload failed since. The cheapest such path: a workload of its own here (two gate runs, PASS
    then FAIL, against the module's simulator; fraud-review and the editors' workload are left as the later tests
    expect them), its Deployment created for real (replicas 0) while it passes, then its spec changed so that it
    fails. The Rollouts are server-side dry-runs, as the admin and as the namespace editor (no Argo controller)."""
    ns = editors
    flows.setup_namespace(cluster, ns, REF_TARGET)
    flows.apply(cluster, flows.workload(ns, REF_TARGET, simulator, approval=True))
    first_job = flows.wait_decision(cluster, ns, REF_TARGET, "PASS")["status"]["lastRun"]["job"]
    stored = flows.apply(cluster, flows.deployment(ns, REF_APP, REF_TARGET), check=False)
    assert stored.returncode == 0, stored.stderr
    try:
        for create in (functools.partial(as_admin, cluster), functools.partial(as_editor, cluster)):
            # (a) the Deployment is labelled for a passing workload: the Rollout is admitted
            passing = create(ref_rollout(ns, "ref-rollout", REF_APP))
            assert passing.returncode == 0, passing.stderr
            # no such Deployment (yet): nothing to judge it by; it is judged when written labelled
            absent = create(ref_rollout(ns, "ref-rollout-absent", "no-such-deployment"))
            assert absent.returncode == 0, absent.stderr

        flows.apply(cluster, flows.workload(ns, REF_TARGET, simulator, approval=False))
        flows.wait_decision(cluster, ns, REF_TARGET, "FAIL", after_job=first_job)
        assert cluster.get_json("deployment", REF_APP, "-n", ns)["metadata"]["labels"]["aigate.dev/workload"] == (
            REF_TARGET
        ), "the Deployment admitted while its workload passed is still stored"
        for create in (functools.partial(as_admin, cluster), functools.partial(as_editor, cluster)):
            # (b) the same unlabelled Rollout, its Deployment's workload failing now: refused, in the usual words,
            # saying where the label came from
            refused = create(ref_rollout(ns, "ref-rollout", REF_APP))
            assert refused.returncode != 0, "an unlabelled Rollout ran a failing workload's Deployment template"
            said = refused.stderr
            assert REF_DENIED in said, said
            assert f"AIWorkload {ns}/{REF_TARGET} is not cleared for rollout: decision FAIL" in said, said
            assert (
                f"(the aigate.dev/workload label came from Deployment {ns}/{REF_APP}, which this Rollout's "
                "spec.workloadRef names)"
            ) in said, said
            # labelled itself for the same failing workload: the rollout webhook's usual refusal
            own = ref_rollout(ns, "ref-rollout-labelled", REF_APP)
            own["metadata"]["labels"]["aigate.dev/workload"] = REF_TARGET
            labelled_too = create(own)
            assert labelled_too.returncode != 0 and DENIED in labelled_too.stderr, labelled_too.stderr
            # an unlabelled Rollout with a template of its own is not aigate's: admitted untouched
            plain = ref_rollout(ns, "ref-rollout-templated", REF_APP)
            del plain["spec"]["workloadRef"]
            pod = {"containers": [{"name": "app", "image": "registry.example/fraud-app:1.0"}]}
            plain["spec"]["template"] = {"metadata": {"labels": {"app": REF_APP}}, "spec": pod}
            admitted = create(plain)
            assert admitted.returncode == 0, admitted.stderr
    finally:
        cluster.kubectl("delete", "deployment", REF_APP, "-n", ns, "--ignore-not-found", check=False)
        cluster.kubectl("delete", "aiworkload", REF_TARGET, "-n", ns, "--ignore-not-found", check=False)


@pytest.mark.parametrize("kind", CUSTOM, ids=lambda k: k.kind)
def test_kubectl_aigate_why_explains_a_refused_object_of_each_custom_kind(
    cluster: Cluster, installed: Install, editors: str, upstream_crds: Path, kind: GatedKind, tmp_path: Path
) -> None:
    """The refused object is not stored: `why -f` reads the manifest the team tried, and explains the workload its
    label names, failed gates and all."""
    doc = gated_object(kind, editors, "gk-failing", EDITED)
    manifest = tmp_path / "refused.yaml"
    manifest.write_text(yaml.safe_dump(doc))
    assert as_editor(cluster, doc).returncode != 0
    why = kubectl_aigate(cluster, "why", "-f", str(manifest))
    assert why.returncode == 1, why.stderr
    lines = why.stdout.splitlines()
    assert lines[0].startswith(f"{kind.kind} {editors}/gk-failing")
    assert lines[0].endswith(f"is labelled for AIWorkload {editors}/{EDITED}"), lines[0]
    assert f"AIWorkload {editors}/{EDITED}: decision FAIL (phase Failed)" in lines, why.stdout
    assert "Failed gates:" in lines and any("Tool control" in line or "toolControl" in line for line in lines)


# ---- after launch: the canary (issue 23) ----------------------------------------------------------------------------

ORIGINAL, UPDATED = "sim-claude-20250929", "sim-claude-20260301"
"""The identity the primary answers under at the gate run, and after the provider's silent update."""
MODEL_CHANGED, ANSWERS_CHANGED, CAPPED = "canary-model", "canary-answers", "canary-cap"
TINY_CAP = 0.0001
"""budget.canaryMaxUSDPerDay below one request's worst case (prompt and maxTokens at $2/M output tokens)."""


@dataclass
class Canaried:
    ns: str
    sims: dict[str, Any]
    """Each workload's own simulator (the module's shared one is left as the other tests expect it)."""


@pytest.fixture(scope="module")
def canaried(cluster: Cluster, installed: Install, team: str) -> Iterator[Canaried]:
    """Three workloads with a canary every flows.CANARY_EVERY, applied together so their gate runs overlap: one whose
    primary's model changes, one whose answers change, one with a tiny canary cap."""

    with ExitStack() as stack:
        sims = {
            name: stack.enter_context(flows.pods_simulator(cluster, flows.served_profile(ORIGINAL)))
            for name in (MODEL_CHANGED, ANSWERS_CHANGED, CAPPED)
        }
        for name, sim in sims.items():
            flows.setup_namespace(cluster, team, name)
            cases = 2 if name == ANSWERS_CHANGED else 1  # every canary sends both cases: the failing one is seen
            cap = TINY_CAP if name == CAPPED else None
            flows.apply(cluster, flows.canaried(team, name, sim, cases=cases, cap_usd=cap))
        yield Canaried(team, sims)


def reload(sim: Any, profile: dict[str, Any]) -> None:
    from aigate.simulator.profile import SimProfile

    sim.reload(SimProfile.model_validate(profile))


def judged(cluster: Cluster, doc: dict[str, Any]) -> Any:
    """The rollout webhook's answer for `doc`, through the API server, nothing stored."""
    return cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(doc), check=False)


def until_judged(cluster: Cluster, doc: dict[str, Any], *, admitted: bool) -> Any:
    """Until the webhook (its index follows the operator's writes by a watch) admits or refuses `doc`."""

    def probe() -> Any:
        done = judged(cluster, doc)
        return done if (done.returncode == 0) == admitted else None

    return cluster.wait_for(
        probe, timeout=60, what=f"{doc['metadata']['name']} {'admitted' if admitted else 'refused'}"
    )


def app_pods(cluster: Cluster, ns: str, app: str) -> list[dict[str, Any]]:
    found = cluster.get_json("pods", "-n", ns, "-l", f"app={app}")["items"]
    return [p for p in found if not p["metadata"].get("deletionTimestamp")]


def operator_metric(cluster: Cluster, name: str, **labels: str) -> float:
    """A metric of the chart's operator, read from its pod as Prometheus would."""
    import urllib.request

    pod = operator_pod(cluster)
    [port] = [p["containerPort"] for c in pod["spec"]["containers"] for p in c["ports"] if p["name"] == "metrics"]
    with urllib.request.urlopen(f"http://{pod['status']['podIP']}:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@contextmanager
def played(cluster: Cluster, canaried: Canaried, name: str) -> Iterator[tuple[str, str, Any]]:
    """One canaried workload's flow (namespace, name, simulator); the workload is deleted once it is played, pass or
    fail: no canary runs for the rest of the module, and the uninstall test finds the team's namespace as the other
    tests left it."""
    try:
        yield canaried.ns, name, canaried.sims[name]
    finally:
        cluster.kubectl("delete", "deployment", "-l", f"aigate.dev/workload={name}", "-n", canaried.ns, check=False)
        cluster.kubectl("delete", "aiworkload", name, "-n", canaried.ns, "--wait", "--timeout=120s", check=False)


def events(cluster: Cluster, ns: str, name: str, reason: str) -> list[dict[str, Any]]:
    selector = f"involvedObject.name={name},reason={reason}"
    return cluster.get_json("events", "-n", ns, "--field-selector", selector)["items"]  # type: ignore[no-any-return]


def test_a_changed_model_is_drift_rollouts_wait_for_the_regate_and_the_running_pod_keeps_running(
    cluster: Cluster, canaried: Canaried
) -> None:
    """Done when, first point: the primary's servedModel changes under a passing workload; within a canary interval
    Drift=True ModelChanged names both identities, a re-gate runs, the Deployment's new ReplicaSet is refused
    meanwhile and the running pod keeps running; after the re-gate passes, Drift=False and the rollout is admitted.
    Then the endpoint goes away: CanaryError, neither a drift nor a refusal."""
    with played(cluster, canaried, MODEL_CHANGED) as (ns, name, sim):
        passed = flows.wait_decision(cluster, ns, name, "PASS")["status"]["lastRun"]["runId"]
        calm = flows.wait_drift(cluster, ns, name, "False", "NoDrift")
        assert calm["status"]["canary"]["every"] == "15s" and calm["status"]["canary"]["history"]
        uid = flows.uid_of(cluster, ns, name)
        canary_jobs = cluster.get_json(
            "jobs", "-n", GATES, "-l", f"aigate.dev/workload-uid={uid},aigate.dev/role=canary-job"
        )["items"]
        assert canary_jobs, "the canary ran as a gate Job in the gate namespace"
        [container] = canary_jobs[0]["spec"]["template"]["spec"]["containers"]
        assert container["image"] == cluster_image() and "--canary" in container["command"]

        app = flows.running_deployment(ns, "canary-app", name, cluster_image(), "1")
        assert flows.apply(cluster, app, check=False).returncode == 0
        cluster.kubectl("rollout", "status", "deployment/canary-app", "-n", ns, "--timeout=180s")
        [running] = app_pods(cluster, ns, "canary-app")

        reload(sim, flows.served_profile(UPDATED))  # the provider moves the alias to a new snapshot
        wl = flows.wait_drift(cluster, ns, name, "True", "ModelChanged")
        drift = flows.drift(wl)
        assert drift is not None
        assert f"path primary answered as {UPDATED}, the evidence records {ORIGINAL}" in drift["message"]
        # the re-gate the drift started takes a pod start and a full run: what follows checks the refusal meanwhile
        new_version = flows.running_deployment(ns, "canary-app", name, cluster_image(), "2")
        said = until_judged(cluster, new_version, admitted=False).stderr
        assert f"AIWorkload {ns}/{name} is not cleared for rollout: drift ModelChanged since" in said, said
        assert UPDATED in said and ORIGINAL in said
        refused = flows.apply(cluster, new_version, check=False)  # for real: no new ReplicaSet
        assert refused.returncode != 0, "a rollout was admitted while the drift stood"
        sets = cluster.get_json("replicasets", "-n", ns, "-l", "app=canary-app")["items"]
        assert len(sets) == 1
        assert events(cluster, ns, name, "ModelChanged"), "an Event goes with the drift"
        assert operator_metric(cluster, "aigate_drift", namespace=ns, workload=name, reason="ModelChanged") == 1.0

        wl = flows.wait_decision(cluster, ns, name, "PASS", after_run=passed)  # the re-gate the drift started
        # kubectl aigate why explains a drift (tests/test_kubectl_plugin_cli.py); here it says the drift is over
        why = kubectl_aigate(cluster, "why", name, "-n", ns)
        assert why.returncode == 0 and "Canary: NoDrift: gate run passed at" in why.stdout, why.stdout
        drift = flows.drift(wl)
        assert drift is not None and (drift["status"], drift["reason"]) == ("False", "NoDrift")
        copy = cluster.get_json("configmap", f"{name}-aigate-evidence", "-n", ns)
        statement = json.loads(base64.b64decode(json.loads(copy["data"]["evidence.json"])["payload"]))
        [primary] = [r for r in statement["predicate"]["modelIdentities"] if r["path"] == "primary"]
        assert {a["model"] for a in primary["answered"]} == {UPDATED}
        [still] = app_pods(cluster, ns, "canary-app")  # never touched, drift or not
        assert still["metadata"]["uid"] == running["metadata"]["uid"] and still["status"]["phase"] == "Running"
        assert sum(c["restartCount"] for c in still["status"]["containerStatuses"]) == 0
        until_judged(cluster, new_version, admitted=True)
        assert flows.apply(cluster, new_version, check=False).returncode == 0

        regated = wl["status"]["lastRun"]["runId"]
        sim.stop()  # the endpoint goes away: the canary cannot measure, which says nothing of the model
        wl = flows.wait_drift(cluster, ns, name, "False", "CanaryError")
        drift = flows.drift(wl)
        assert drift is not None and "could not measure" in drift["message"]
        assert wl["status"]["lastRun"]["runId"] == regated, "a canary error started a re-gate"
        newer = flows.running_deployment(ns, "canary-app", name, cluster_image(), "3")
        assert judged(cluster, newer).returncode == 0, "a canary error refused a rollout"


def test_answers_that_fail_a_case_are_drift_the_regate_fails_and_rollouts_stay_refused(
    cluster: Cluster, canaried: Canaried
) -> None:
    """Done when, second point: the primary's answers change so the suite's `review` case fails; Drift=True
    CanaryFailing names the case; the re-gate FAILs; rollouts stay refused."""
    with played(cluster, canaried, ANSWERS_CHANGED) as (ns, name, sim):
        answers_change_and_the_regate_fails(cluster, ns, name, sim)


def answers_change_and_the_regate_fails(cluster: Cluster, ns: str, name: str, sim: Any) -> None:
    passed = flows.wait_decision(cluster, ns, name, "PASS")["status"]["lastRun"]["runId"]
    flows.wait_drift(cluster, ns, name, "False", "NoDrift")
    reload(sim, flows.served_profile(ORIGINAL, answer="I cannot help with that."))  # same model, other answers
    wl = flows.wait_drift(cluster, ns, name, "True", "CanaryFailing")
    drift = flows.drift(wl)
    assert drift is not None and "now fail: review on primary" in drift["message"], drift
    app = flows.deployment(ns, "answers-app", name)
    said = until_judged(cluster, app, admitted=False).stderr
    assert "drift CanaryFailing since" in said or "decision FAIL" in said, said

    wl = flows.wait_decision(cluster, ns, name, "FAIL", after_run=passed)
    drift = flows.drift(wl)
    assert drift is not None and (drift["status"], drift["reason"]) == ("True", "CanaryFailing")
    refused = flows.apply(cluster, app, check=False)
    assert refused.returncode != 0 and f"AIWorkload {ns}/{name} is not cleared for rollout" in refused.stderr
    assert "reliability" in refused.stderr, refused.stderr


def test_the_canary_stops_at_its_daily_cap_and_says_so(cluster: Cluster, canaried: Canaried) -> None:
    """Done when, third point: with budget.canaryMaxUSDPerDay below one request, the canary sends nothing, says so
    (Drift=False CanaryBudgetSpent), closes the day, and refuses nothing."""
    with played(cluster, canaried, CAPPED) as (ns, name, sim):
        the_cap_stops_the_canary(cluster, ns, name, sim)


def the_cap_stops_the_canary(cluster: Cluster, ns: str, name: str, sim: Any) -> None:
    flows.wait_decision(cluster, ns, name, "PASS")
    before = sim.stats()["models"]["sim-claude"]["requests"]
    wl = flows.wait_drift(cluster, ns, name, "False", "CanaryBudgetSpent")
    drift = flows.drift(wl)
    assert drift is not None and f"budget.canaryMaxUSDPerDay ${TINY_CAP:g} today covers no request" in drift["message"]
    assert sim.stats()["models"]["sim-claude"]["requests"] == before, "the capped canary sent a request"
    canary = wl["status"]["canary"]
    assert canary["spentUSD"] == TINY_CAP and canary["history"][-1]["outcome"] == "CanaryBudgetSpent"
    assert judged(cluster, flows.deployment(ns, "capped-app", name)).returncode == 0


def test_helm_upgrade_keeps_refusing_and_admitting_throughout(
    cluster: Cluster, installed: Install, team: str, tmp_path: Path
) -> None:
    ns = team
    before = operator_pod(cluster)
    old_webhooks = {p["metadata"]["uid"] for p in pods(cluster, "webhook")}
    results: list[tuple[bool, bool]] = []

    def check() -> tuple[bool, bool]:
        """(the failing workload's rollout refused, the passing one's admitted)"""
        failing = probe(cluster, ns, "still-failing", "other-app")
        passing = probe(cluster, ns, "fraud-review", "fraud-app-2")
        ok_fail = failing.returncode != 0 and "toolControl" in failing.stderr
        return ok_fail, passing.returncode == 0

    assert check() == (True, True), "before the upgrade"
    upgraded = tmp_path / "upgraded-values.yaml"
    upgraded.write_text(yaml.safe_dump(UPGRADED))
    done = threading.Event()

    def during() -> None:
        while not done.is_set():
            results.append(check())

    prober = threading.Thread(target=during)
    prober.start()
    try:
        helm(installed.helm, cluster, *helm_args(upgraded))
    finally:
        done.set()
        prober.join()
    assert results and set(results) == {(True, True)}, results
    assert check() == (True, True), "after the upgrade"

    hooks = [w for k in KINDS for w in cluster.get_json(k, RELEASE)["webhooks"]]
    assert {w["timeoutSeconds"] for w in hooks} == {7}
    [rollouts] = [w for w in hooks if w["name"] == "rollouts.aigate.dev"]
    assert [c["name"] for c in rollouts["matchConditions"]] == ["not-the-release-bot"]
    assert all(w["clientConfig"].get("caBundle") for w in hooks), "the upgrade kept the injected caBundle"
    # the webhook pods were replaced (new resources) while answering; the operator was left alone
    new = pods(cluster, "webhook")
    assert len(new) == 2 and not {p["metadata"]["uid"] for p in new} & old_webhooks
    assert {c["resources"]["requests"]["cpu"] for p in new for c in p["spec"]["containers"]} == {"50m"}
    after = operator_pod(cluster)
    assert after["metadata"]["uid"] == before["metadata"]["uid"] and restarts(after) == 0


def test_the_serving_certificate_is_renewed_and_served_without_a_restart(
    cluster: Cluster, installed: Install, team: str
) -> None:
    webhooks = pods(cluster, "webhook")
    first = x509.load_der_x509_certificate(installed.first_cert)
    # the operator renews it into the Secret; each webhook pod serves the renewed one from its volume
    cluster.wait_for(
        lambda: secret_cert(cluster) != installed.first_cert,
        timeout=3 * CERT_VALIDITY_S,
        what="the operator to renew the serving certificate",
    )
    for pod in webhooks:
        renewed = cluster.wait_for(
            lambda pod=pod: (c := served_cert(cluster, pod)) != installed.first_cert and c,
            timeout=3 * CERT_VALIDITY_S,
            what=f"{pod['metadata']['name']} to serve the renewed certificate",
        )
        cert = x509.load_der_x509_certificate(renewed)
        assert cert.serial_number != first.serial_number
        assert cert.not_valid_after_utc > first.not_valid_after_utc
    # still answering through the API server, by the same containers
    refused = probe(cluster, team, "still-failing", "third-app")
    assert refused.returncode != 0 and "toolControl" in refused.stderr, refused.stderr
    assert probe(cluster, team, "fraud-review", "third-app").returncode == 0
    now = {p["metadata"]["uid"]: restarts(p) for p in pods(cluster, "webhook")}
    assert now == {p["metadata"]["uid"]: 0 for p in webhooks}


def test_helm_uninstall_leaves_no_webhook_job_or_run_secret_and_keeps_crds_and_workloads(
    cluster: Cluster, installed: Install, team: str
) -> None:
    uids = [flows.uid_of(cluster, team, n) for n in ("fraud-review", "still-failing")]
    helm(installed.helm, cluster, "uninstall", RELEASE, "-n", NS, "--wait")
    for kind in KINDS:
        assert cluster.kubectl("get", kind, RELEASE, check=False).returncode != 0, f"{kind} {RELEASE} left behind"
    # the gate namespace was the chart's: its Jobs, pods and per-run Secrets go with it
    cluster.wait_for(
        lambda: cluster.kubectl("get", "namespace", GATES, check=False).returncode != 0,
        timeout=180,
        what=f"namespace {GATES} deleted",
    )
    assert cluster.get_json("jobs", "-A", "-l", "aigate.dev/workload-uid")["items"] == []
    for uid in uids:
        found = cluster.get_json("secrets", "-A", "-l", f"aigate.dev/workload-uid={uid}")["items"]
        assert found == [], [s["metadata"]["name"] for s in found]
    # the rollout webhook is gone: a labelled Deployment is no longer refused
    assert probe(cluster, team, "still-failing", "after-uninstall").returncode == 0
    for crd in CRDS:
        assert cluster.kubectl("get", "crd", crd, check=False).returncode == 0, f"CRD {crd} removed"
    kept = cluster.get_json("aiworkloads", "-n", team)["items"]
    assert {w["metadata"]["name"] for w in kept} == {"fraud-review", "still-failing"}
    # the post-delete hook released them from the operator's finalizer: with the operator gone, nothing would honour it
    assert [w["metadata"].get("finalizers") for w in kept] == [None, None]
    done = cluster.kubectl("delete", "aiworkload", "still-failing", "-n", team, "--wait", "--timeout=30s", check=False)
    assert done.returncode == 0, done.stderr
