"""The trust model played by an attacker: a team member with the built-in `edit` ClusterRole in their own namespace
(plus the aggregated role for AIWorkloads, which `edit` picks up by its aggregation label). Each test plays one
attack with `kubectl --as=<editor>` against the real API server and a running operator, and shows that it fails:
the request is forbidden, or the operator ignores what the editor made, and the workload stays as the gates
judged it."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import flows
import kopf
import pytest
from clusterkit import EDITOR, bind, bind_editor, editor, governed
from flows import ANSWER, GATES, get_workload
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from aigate.simulator.profile import SimProfile
from aigate.simulator.server import SimulatorServer
from aigate.times import rfc3339
from aigate.webhook.configurations import TIMEOUT_SECONDS as WEBHOOK_TIMEOUT_SECONDS
from localcluster.aigate_operator import OPERATOR_NAMESPACE, OperatorProcess, install_crd, install_policy_crd
from localcluster.testing import Cluster, cluster_image

PROFILE = flows.profile(10)
"""This module's simulator answers in 10 ms (conftest's, flows.PROFILE, in 15)."""

AIWORKLOAD_EDIT_ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {
        "name": "aigate-aiworkloads-edit",
        # picked up by the built-in `edit` (and `admin`) ClusterRoles: a namespace editor edits AIWorkloads
        "labels": {
            "rbac.authorization.k8s.io/aggregate-to-edit": "true",
            "rbac.authorization.k8s.io/aggregate-to-admin": "true",
        },
    },
    # not aiworkloads/status: status is the operator's
    "rules": [
        {
            "apiGroups": ["aigate.dev"],
            "resources": ["aiworkloads"],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"],
        }
    ],
}


@pytest.fixture(scope="module")
def simulator(cluster: Cluster) -> Iterator[SimulatorServer]:
    """In place of conftest's: this module's PROFILE, on the pod bridge's gateway (the gate Jobs' pods call it)."""
    with flows.pods_simulator(cluster, PROFILE) as sim:
        yield sim


@pytest.fixture(scope="module")
def operator(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    install_crd(cluster.kubectl)
    for ns in (OPERATOR_NAMESPACE, GATES):
        cluster.ensure_namespace(ns)
    cluster.kubectl("apply", "-f", "-", input=json.dumps(AIWORKLOAD_EDIT_ROLE))
    install_policy_crd(cluster.kubectl)  # before the operator starts: it applies AIGatePolicies only if it is there
    # prepare_operator's defaults: its acceptor group, the gate image aigate:dev
    with flows.running_operator(cluster, tmp_path_factory.mktemp("aigate-operator")) as op:
        yield op


@pytest.fixture
def team(cluster: Cluster, namespace: str) -> str:
    """The namespace, with the editor bound to the built-in `edit` ClusterRole in it (and nowhere else)."""
    bind_editor(cluster, namespace)
    return namespace


def workload(ns: str, name: str, url: str, *, approval: bool) -> dict[str, Any]:
    """flows.workload as these tests have it: enforcement, prompts and evidence left to the defaults, the fallback
    model named `backup`, a looser latency SLO but a stricter error rate, and one case 60 times."""
    doc = flows.workload(ns, name, url, approval=approval)
    spec = doc["spec"]
    del spec["enforcement"], spec["prompts"], spec["evidence"], spec["models"][0]["role"]
    spec["models"][1]["name"] = "backup"
    spec["slo"].update(p95LatencyMs=4000, timeoutMs=2000, maxErrorRate=0.01)
    spec["suite"] = {
        "repeats": 60,  # 60 samples: enough to judge a p95
        "cases": [
            {
                "name": "summarize",
                "messages": [{"role": "user", "content": "summarize case 1"}],
                "expect": {"contains": ["risk"]},
            }
        ],
    }
    return doc


def setup(cluster: Cluster, ns: str) -> None:
    keys = {"anthropic": "sk-ant-trust-1", "openai": "sk-trust-2"}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(flows.llm_keys(ns, keys)))


def wait_decision(cluster: Cluster, ns: str, name: str, decision: str, *, after_run: str | None = None) -> Any:
    """flows.wait_decision, waiting past an errored run (until the timeout) instead of failing at once."""
    return flows.wait_decision(cluster, ns, name, decision, after_run=after_run, fail_on_error=False)


def labelled_deployment(ns: str, wl: str, name: str) -> dict[str, Any]:
    return flows.deployment(ns, name, wl, image="registry.example/app:1")


def rollout(cluster: Cluster, ns: str, wl: str, name: str) -> Any:
    return editor(cluster, "apply", "-f", "-", input=json.dumps(labelled_deployment(ns, wl, name)))


def in_gates(cluster: Cluster, kind: str, uid: str) -> list[str]:
    found = cluster.get_json(kind, "-n", GATES, "-l", f"aigate.dev/workload-uid={uid}")["items"]
    return sorted(o["metadata"]["name"] for o in found)


def passing_result(run_id: str, digest: str, job: str) -> str:
    """A result a forger would write: measured, every case passed (the shape the Job writes)."""
    t = "2026-12-01T00:00:00Z"
    run = {"case": "summarize", "model": "primary", "ok": True, "latencyMs": 10.0, "text": ANSWER}
    return json.dumps(
        {
            "runId": run_id,
            "specDigest": digest,
            "job": job,
            "startedAt": t,
            "finishedAt": t,
            "outcome": "measured",
            "measurements": {
                "started_at": t,
                "finished_at": t,
                "runner_version": "forged",
                "concurrency": 1,
                "models": {
                    "primary": {
                        "model": "primary",
                        "provider": "anthropic",
                        "requested_model": "sim-claude",
                        "runs": [run],
                    }
                },
            },
        }
    )


def test_the_gate_namespace_is_out_of_the_editors_reach(
    cluster: Cluster, team: str, operator: OperatorProcess, simulator: SimulatorServer
) -> None:
    """Forge a result (delete the Job, write a passing result, recreate the Job), run a pod under the gate
    ServiceAccount, exec into a gate pod, read the copied keys: all forbidden by the API server."""
    ns, name = team, "forged-run"
    setup(cluster, ns)
    applied = editor(cluster, "apply", "-f", "-", input=json.dumps(workload(ns, name, simulator.url, approval=False)))
    assert applied.returncode == 0, applied.stderr
    wl = wait_decision(cluster, ns, name, "FAIL")
    job, run_id = wl["status"]["lastRun"]["job"], wl["status"]["lastRun"]["runId"]
    assert wl["status"]["lastRun"]["namespace"] == GATES and wl["status"]["lastRun"]["jobUid"]

    for verb, what in (
        ("delete", f"job/{job}"),
        ("create", "jobs"),
        ("get", "jobs"),
        ("update", "configmaps"),
        ("patch", "configmaps"),
        ("create", "configmaps"),
        ("get", "secrets"),
        ("create", "pods"),
        ("create", "pods/exec"),
        ("get", "pods/log"),
        ("create", "serviceaccounts/token"),
    ):
        answer = editor(cluster, "auth", "can-i", verb, what, "-n", GATES)
        assert answer.stdout.strip() == "no", f"the editor may {verb} {what} in {GATES}"
    deleted = editor(cluster, "delete", "job", job, "-n", GATES)
    assert deleted.returncode != 0 and "forbidden" in deleted.stderr.lower(), deleted.stderr
    written = editor(
        cluster,
        "create",
        "configmap",
        f"{job}-result",
        "-n",
        GATES,
        f"--from-literal=result.json={passing_result(run_id, wl['status']['specDigest'], job)}",
    )
    assert written.returncode != 0 and "forbidden" in written.stderr.lower(), written.stderr
    pod = editor(cluster, "run", "forger", "-n", GATES, "--image=x", "--restart=Never", "--command", "--", "true")
    assert pod.returncode != 0 and "forbidden" in pod.stderr.lower(), pod.stderr
    refused = rollout(cluster, ns, name, "app")
    assert refused.returncode != 0 and "toolControl" in refused.stderr, refused.stderr
    assert get_workload(cluster, ns, name)["status"]["decision"] == "FAIL"


def test_a_gate_job_made_in_the_team_namespace_is_ignored(
    cluster: Cluster, team: str, operator: OperatorProcess, simulator: SimulatorServer
) -> None:
    """The editor makes what used to be accepted: a finished Job labelled as a gate Job, annotated for their
    workload, running `true`, and a passing result beside it. The operator takes results only from the Job whose
    uid it recorded, in the gate namespace: the workload stays FAIL and the rollout stays refused."""
    ns, name = team, "own-job"
    setup(cluster, ns)
    applied = editor(cluster, "apply", "-f", "-", input=json.dumps(workload(ns, name, simulator.url, approval=False)))
    assert applied.returncode == 0, applied.stderr
    wl = wait_decision(cluster, ns, name, "FAIL")
    last, digest = wl["status"]["lastRun"], wl["status"]["specDigest"]
    result = passing_result(last["runId"], digest, last["job"])
    cm = editor(
        cluster, "create", "configmap", f"{last['job']}-result", "-n", ns, f"--from-literal=result.json={result}"
    )
    assert cm.returncode == 0, cm.stderr
    annotations = {
        "aigate.dev/for-namespace": ns,
        "aigate.dev/for-name": name,
        "aigate.dev/spec-digest": digest,
        "aigate.dev/run-id": last["runId"],
    }
    forged_job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": last["job"],
            "namespace": ns,
            "labels": {"aigate.dev/role": "gate-job", "aigate.dev/workload-uid": wl["metadata"]["uid"]},
            "annotations": annotations,
        },
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "gate", "image": cluster_image(), "command": ["true"]}],
                }
            },
        },
    }
    made = editor(cluster, "create", "-f", "-", input=json.dumps(forged_job))
    assert made.returncode == 0, made.stderr
    cluster.wait_for_condition("job", last["job"], ns, "Complete", timeout=120)

    def ignored() -> bool:
        return "not a gate run of aigate's" in operator.log.read_text(errors="replace")

    cluster.wait_for(ignored, timeout=60, what="the operator to see and ignore the forged Job")
    after = get_workload(cluster, ns, name)
    assert after["status"]["decision"] == "FAIL" and after["status"]["lastRun"]["runId"] == last["runId"]
    refused = rollout(cluster, ns, name, "app")
    assert refused.returncode != 0 and "toolControl" in refused.stderr, refused.stderr


def test_an_older_pass_envelope_put_back_admits_nothing(cluster: Cluster, team: str, operator: OperatorProcess) -> None:
    """Spec A passes; the editor keeps its signed envelope; A -> B (failing) -> A again, with the provider now
    down. The editor writes the old PASS envelope for A back into the evidence ConfigMap beside the workload (theirs
    to write): nothing decides from that copy. The rollout is refused, and A is judged anew (FAIL)."""
    ns, name = team, "restored"
    setup(cluster, ns)
    with SimulatorServer(SimProfile.model_validate(PROFILE), host=cluster.host_address or "127.0.0.1") as sim:
        spec_a = workload(ns, name, sim.url, approval=True)
        assert editor(cluster, "apply", "-f", "-", input=json.dumps(spec_a)).returncode == 0
        wl = wait_decision(cluster, ns, name, "PASS")
        digest_a, run_a = wl["status"]["specDigest"], wl["status"]["lastRun"]["runId"]
        copy_name = f"{name}-aigate-evidence"
        envelope_a = editor(cluster, "get", "configmap", copy_name, "-n", ns, "-o", "json")
        assert envelope_a.returncode == 0, envelope_a.stderr
        saved = json.loads(envelope_a.stdout)["data"]["evidence.json"]
        assert rollout(cluster, ns, name, "app-a").returncode == 0

        spec_b = workload(ns, name, sim.url, approval=False)
        assert editor(cluster, "apply", "-f", "-", input=json.dumps(spec_b)).returncode == 0
        wl = wait_decision(cluster, ns, name, "FAIL", after_run=run_a)
        run_b = wl["status"]["lastRun"]["runId"]
    # the provider is gone now: a fresh run of A cannot pass
    assert editor(cluster, "apply", "-f", "-", input=json.dumps(spec_a)).returncode == 0
    restore = {"data": {"evidence.json": saved}}
    patched = editor(cluster, "patch", "configmap", copy_name, "-n", ns, "--type=merge", "-p", json.dumps(restore))
    assert patched.returncode == 0, patched.stderr
    refused = rollout(cluster, ns, name, "app-restored")
    assert refused.returncode != 0, "a restored PASS envelope admitted a rollout"
    wl = wait_decision(cluster, ns, name, "FAIL", after_run=run_b)
    assert wl["status"]["specDigest"] == digest_a
    patched = editor(cluster, "patch", "configmap", copy_name, "-n", ns, "--type=merge", "-p", json.dumps(restore))
    assert patched.returncode == 0, patched.stderr
    refused = rollout(cluster, ns, name, "app-restored")
    assert refused.returncode != 0, "a restored PASS envelope admitted a rollout"
    assert get_workload(cluster, ns, name)["status"]["decision"] == "FAIL"


def test_no_run_secret_outlives_its_run_and_deletion_cleans_up(
    cluster: Cluster, team: str, operator: OperatorProcess, simulator: SimulatorServer
) -> None:
    """Passing and failing runs leave no Secret (nor input, nor ServiceAccount) in the gate namespace; deleting the
    workload deletes its Jobs there and its trusted evidence (the finalizer: no owner reference crosses
    namespaces)."""
    ns = team
    setup(cluster, ns)
    uids = {}
    for name, approval, decision in (("clean-pass", True, "PASS"), ("clean-fail", False, "FAIL")):
        doc = workload(ns, name, simulator.url, approval=approval)
        assert editor(cluster, "apply", "-f", "-", input=json.dumps(doc)).returncode == 0
        wl = wait_decision(cluster, ns, name, decision)
        uids[name] = wl["metadata"]["uid"]
        assert wl["metadata"]["finalizers"], "no finalizer: deleting the workload would leave its runs behind"
    for name, uid in uids.items():
        assert in_gates(cluster, "secrets", uid) == [], f"{name}: a run Secret outlived its run"
        assert in_gates(cluster, "serviceaccounts", uid) == [], f"{name}: a run ServiceAccount outlived its run"
        assert in_gates(cluster, "jobs", uid), f"{name}: the finished Job stays for people to read"
        trusted = cluster.get_json("configmaps", "-n", OPERATOR_NAMESPACE, "-l", f"aigate.dev/workload-uid={uid}")
        assert len(trusted["items"]) == 1
    deleted = editor(cluster, "delete", "aiworkload", "clean-pass", "-n", ns, "--wait=true", "--timeout=60s")
    assert deleted.returncode == 0, deleted.stderr
    uid = uids["clean-pass"]
    cluster.wait_for(lambda: in_gates(cluster, "jobs", uid) == [], timeout=60, what="the runs deleted with it")
    trusted = cluster.get_json("configmaps", "-n", OPERATOR_NAMESPACE, "-l", f"aigate.dev/workload-uid={uid}")
    assert trusted["items"] == []


def test_a_bare_pod_and_an_unlabelled_cronjob_template_are_refused(
    cluster: Cluster, team: str, operator: OperatorProcess, simulator: SimulatorServer
) -> None:
    """A bare Pod labelled for a failing workload is judged like a Deployment; a CronJob whose jobTemplate lacks
    the label (its Jobs would never be judged) is refused whatever the workload's evidence says."""
    ns, name = team, "bare"
    setup(cluster, ns)
    applied = editor(cluster, "apply", "-f", "-", input=json.dumps(workload(ns, name, simulator.url, approval=False)))
    assert applied.returncode == 0, applied.stderr
    wait_decision(cluster, ns, name, "FAIL")
    labels = {"aigate.dev/workload": name}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bare-ai", "namespace": ns, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1", "command": ["true"]}]},
    }
    refused = editor(cluster, "create", "-f", "-", input=json.dumps(pod))
    assert refused.returncode != 0 and f"AIWorkload {ns}/{name} is not cleared" in refused.stderr, refused.stderr
    job_spec = {
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "c", "image": "registry.example/app:1", "command": ["true"]}],
            }
        }
    }
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": ns, "labels": labels},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": job_spec}},
    }
    refused = editor(cluster, "create", "-f", "-", input=json.dumps(cronjob))
    assert refused.returncode != 0, "a CronJob whose Jobs nobody would judge was admitted"
    assert "spec.jobTemplate.metadata.labels must carry aigate.dev/workload" in refused.stderr, refused.stderr


@pytest.mark.parametrize(
    ("change", "configmap", "message"),
    [
        (
            lambda s: s.update(evidence={"validFor": "99999999999999999999d"}),
            None,
            "spec.evidence.validFor: must be at most 3650d",
        ),
        (
            lambda s: s["suite"]["cases"][0]["expect"].update(jsonSchema=json.loads('{"a":' * 200 + "{}" + "}" * 200)),
            None,
            "nested deeper than 64 levels",
        ),
        (
            lambda s: s.update(suite={"configMapRef": {"name": "big-suite", "key": "cases.yaml"}}),
            "x" * (300 * 1024),
            "spec.suite: 307200 bytes, above the limit of 262144 bytes",
        ),
    ],
    ids=["overflow", "nesting", "oversize"],
)
def test_inputs_past_the_bounds_get_one_line_and_invalid_spec(
    cluster: Cluster,
    team: str,
    operator: OperatorProcess,
    simulator: SimulatorServer,
    change: Any,
    configmap: str | None,
    message: str,
) -> None:
    ns, name = team, "unbounded"
    setup(cluster, ns)
    if configmap is not None:
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big-suite", "namespace": ns}}
        cm["data"] = {"cases.yaml": configmap}
        assert editor(cluster, "create", "-f", "-", input=json.dumps(cm)).returncode == 0
    doc = workload(ns, name, simulator.url, approval=True)
    change(doc["spec"])
    applied = editor(cluster, "create", "-f", "-", input=json.dumps(doc))
    assert applied.returncode == 0, applied.stderr

    def invalid() -> dict[str, Any] | None:
        st = get_workload(cluster, ns, name).get("status") or {}
        ready = {c["type"]: c for c in st.get("conditions") or []}.get("Ready")
        return ready if ready is not None and ready["reason"] == "InvalidSpec" else None

    ready = cluster.wait_for(invalid, timeout=60, what="the InvalidSpec condition")
    assert message in ready["message"] and "\n" not in ready["message"], ready["message"]
    log = operator.log.read_text(errors="replace")
    assert "Traceback" not in log and "RecursionError" not in log and "OverflowError" not in log
    events = cluster.get_json("events", "-n", ns, "--field-selector", f"involvedObject.name={name}")["items"]
    assert [e["reason"] for e in events].count("InvalidSpec") == 1, "reported once, not on every event"


def test_a_reference_the_author_may_not_read_is_refused(
    cluster: Cluster, team: str, operator: OperatorProcess, simulator: SimulatorServer
) -> None:
    """A user who may edit AIWorkloads but not read the team's Secrets names the team's key in a workload (aigate
    would send it to the endpoint of their choosing): refused, naming the reference. The editor, who may read it,
    may reference it."""
    ns, name = team, "borrowed-key"
    setup(cluster, ns)
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "workload-authors", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "aigate-aiworkloads-edit"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "intern"}],
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(binding))
    doc = json.dumps(workload(ns, name, simulator.url, approval=True))
    refused = cluster.kubectl("create", "-f", "-", as_user="intern", input=doc, check=False)
    assert refused.returncode != 0
    assert f"user intern may not get Secret {ns}/llm-keys (spec.models[0].credentials.secretRef)" in refused.stderr
    assert cluster.kubectl("get", "aiworkload", name, "-n", ns, check=False).returncode != 0
    allowed = editor(cluster, "create", "-f", "-", input=doc)
    assert allowed.returncode == 0, allowed.stderr


def test_a_workload_in_aigates_own_namespace_is_not_gated(
    cluster: Cluster, operator: OperatorProcess, simulator: SimulatorServer
) -> None:
    """An AIWorkload in the operator's namespace could reach the signing key; one in the gate namespace the runs'
    credentials. The operator runs nothing for them and says why in a condition."""
    for ns in (OPERATOR_NAMESPACE, GATES):
        name = f"inside-{ns}"
        cluster.kubectl("apply", "-f", "-", input=json.dumps(workload(ns, name, simulator.url, approval=True)))

        def excluded(ns: str = ns, name: str = name) -> dict[str, Any] | None:
            st = get_workload(cluster, ns, name).get("status") or {}
            ready = {c["type"]: c for c in st.get("conditions") or []}.get("Ready")
            return ready if ready is not None and ready["reason"] == "NamespaceExcluded" else None

        ready = cluster.wait_for(excluded, timeout=60, what=f"{ns}/{name} NamespaceExcluded")
        assert ready["message"].startswith(f"namespace {ns} is aigate's"), ready["message"]
        uid = get_workload(cluster, ns, name)["metadata"]["uid"]
        assert in_gates(cluster, "jobs", uid) == [] and in_gates(cluster, "secrets", uid) == []
        # kopf keeps its finalizer until the workload's evidence timer has exited; with its defaults a tick in
        # progress at the delete cost 60 s (seen once in CI: the handler ran at +2 s, the finalizer went at +61 s).
        # The operator waits for the tick instead (handlers.TIMER_EXIT_WAIT_S), well inside this bound.
        cluster.kubectl("delete", "aiworkload", name, "-n", ns, "--wait=true", "--timeout=45s", timeout=90)


def test_an_aigatepolicy_sets_what_a_workload_may_not_loosen(
    cluster: Cluster, team: str, operator: OperatorProcess, simulator: SimulatorServer
) -> None:
    """A cluster-scoped AIGatePolicy governs the team's namespace (by label). The editor asks for `audit`: the
    floor `enforce` still refuses the failing workload's rollout. A validity beyond the policy's, an endpoint
    outside its prefixes and a relaxed SLO floor are refused at admission. The evidence expires within the policy's
    limit and records the policy, as status does."""
    ns, name = team, "governed"
    setup(cluster, ns)
    limits = {"enforcement": "enforce", "maxValidFor": "24h", "allowedEndpoints": [simulator.url]}
    with governed(cluster, ns, f"platform-{ns}", **limits, slo={"minPassRate": 0.9}):
        changed = editor(cluster, "patch", "aigatepolicy", f"platform-{ns}", "--type=merge", "-p", '{"spec": {}}')
        assert changed.returncode != 0 and "forbidden" in changed.stderr.lower(), changed.stderr

        def asking_audit(**evidence: str) -> dict[str, Any]:
            doc = workload(ns, name, simulator.url, approval=False)
            doc["spec"]["enforcement"] = "audit"
            doc["spec"]["evidence"] = {"validFor": "12h", "regateBefore": "1h", **evidence}
            return doc

        changes: list[tuple[Callable[[dict[str, Any]], Any], str]] = [
            (lambda d: d["spec"]["evidence"].update(validFor="720h"), "spec.evidence.validFor 720h is longer than 24h"),
            (
                lambda d: d["spec"]["models"][0].update(endpoint="https://elsewhere.example/"),
                "spec.models[0].endpoint https://elsewhere.example is outside the endpoints allowed",
            ),
            (lambda d: d["spec"]["slo"].update(minPassRate=0.5), "spec.slo.minPassRate 0.5 is below the floor 0.9"),
        ]
        for change, refusal in changes:
            doc = asking_audit()
            change(doc)
            refused = editor(cluster, "apply", "-f", "-", input=json.dumps(doc))
            assert refused.returncode != 0, f"admitted a workload the policy refuses ({refusal})"
            assert f"refused by AIGatePolicy platform-{ns}" in refused.stderr and refusal in refused.stderr, (
                refused.stderr
            )

        applied = editor(cluster, "apply", "-f", "-", input=json.dumps(asking_audit()))
        assert applied.returncode == 0, applied.stderr
        wl = wait_decision(cluster, ns, name, "FAIL")
        refused = rollout(cluster, ns, name, "audited-app")
        assert refused.returncode != 0, "enforcement: audit under an enforce policy admitted a failing workload"
        assert wl["status"]["policy"]["names"] == [f"platform-{ns}"]
        issued = datetime.fromisoformat(wl["status"]["evidence"]["issuedAt"])
        expires = datetime.fromisoformat(wl["status"]["evidence"]["expiresAt"])
        assert expires - issued <= timedelta(hours=12)


def test_a_risk_acceptance_holds_for_its_spec_and_its_hour_only(
    cluster: Cluster, team: str, operator: OperatorProcess, simulator: SimulatorServer
) -> None:
    """An acceptor accepts the failing toolControl gate for one hour: the evidence expires within that hour. The
    editor then changes something else in the spec: the acceptance was given for the spec as it was, so it no
    longer applies (the gate's condition says so) and the rollout is refused until an acceptor renews it."""
    ns, name = team, "accepted-once"
    setup(cluster, ns)
    acceptors = "aigate:risk-acceptors"
    bind(cluster, ns, "acceptors", "aigate-aiworkloads-edit", "Group", acceptors)
    applied = editor(cluster, "apply", "-f", "-", input=json.dumps(workload(ns, name, simulator.url, approval=False)))
    assert applied.returncode == 0, applied.stderr
    run = wait_decision(cluster, ns, name, "FAIL")["status"]["lastRun"]["runId"]

    expires = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    acceptance = {"gate": "toolControl", "reason": "approval flow ships next sprint", "expires": rfc3339(expires)}
    patch = json.dumps({"spec": {"riskAcceptances": [acceptance]}})
    accepted = cluster.kubectl(
        "patch", "aiworkload", name, "-n", ns, "--type=merge", "-p", patch, as_user="alice", as_groups=(acceptors,),
        check=False,
    )  # fmt: skip
    assert accepted.returncode == 0, accepted.stderr
    [recorded] = get_workload(cluster, ns, name)["spec"]["riskAcceptances"]
    assert recorded["acceptedBy"] == "alice" and recorded["specDigest"].startswith("sha256:")
    wl = wait_decision(cluster, ns, name, "PASS", after_run=run)
    assert datetime.fromisoformat(wl["status"]["evidence"]["expiresAt"]) <= expires
    assert rollout(cluster, ns, name, "accepted-app").returncode == 0

    # the editor changes something else: the acceptance keeps the digest of the spec it was given for
    slower = json.dumps({"spec": {"slo": {"p95LatencyMs": 3900}}})
    changed = editor(cluster, "patch", "aiworkload", name, "-n", ns, "--type=merge", "-p", slower)
    assert changed.returncode == 0, changed.stderr
    assert get_workload(cluster, ns, name)["spec"]["riskAcceptances"][0]["specDigest"] == recorded["specDigest"]
    wl = wait_decision(cluster, ns, name, "FAIL", after_run=wl["status"]["lastRun"]["runId"])
    tool = {c["type"]: c for c in wl["status"]["conditions"]}["ToolControlGate"]
    assert tool["status"] == "False" and "risk acceptance given for another spec: renew it" in tool["message"]
    refused = rollout(cluster, ns, name, "accepted-app-2")
    assert refused.returncode != 0, "an acceptance given for another spec still admitted a rollout"


UNRELATED_CONFIGMAPS, UNRELATED_SIZE = 200, 100 * 1024
KOPF_IDLE = kopf.OperatorSettings().queueing
"""kopf keeps each object's last event until that object's worker has been idle this long (then exits)."""


def resident_bytes(operator: OperatorProcess) -> int:
    """VmRSS of aigate's processes: the operator, and the webhook server where it runs as a process of its own."""
    procs = [p for p in (operator.proc, getattr(operator, "webhook_proc", None)) if p is not None]
    assert procs, "aigate is not running"
    total = 0
    for proc in procs:
        status = Path(f"/proc/{proc.pid}/status").read_text()
        total += next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:"))
    return total


def test_configmaps_no_workload_reads_cost_aigate_their_identity_only(
    cluster: Cluster, team: str, operator: OperatorProcess, simulator: SimulatorServer
) -> None:
    """An editor fills their namespace with ConfigMaps of 100 KB that no AIWorkload reads, 200 at a time. The
    first round grows aigate's heaps by what handling a burst of 100 KB events takes; once those events are freed,
    a second round reuses that memory, so aigate's resident memory (the operator's, and the webhook server's where
    it is a process of its own) grows by what the ConfigMap index keeps: much less than their data. The last
    ConfigMap of each round is one a workload's prompt names: when a rollout's refusal moves past it, every
    ConfigMap made before it is indexed (a watch delivers in order)."""
    ns, name = team, "reads-two"
    setup(cluster, ns)
    doc = workload(ns, name, simulator.url, approval=True)
    doc["spec"]["prompts"] = [{"configMapRef": {"name": f"marker-{r}", "key": "system.md"}} for r in (1, 2)]
    assert editor(cluster, "apply", "-f", "-", input=json.dumps(doc)).returncode == 0

    def refusal() -> str:
        refused = rollout(cluster, ns, name, "probe")
        assert refused.returncode != 0, "a workload without evidence admitted a rollout"
        return str(refused.stderr)

    def fill(round_: int, marker: dict[str, str], indexed: str) -> int:
        with impersonating(cluster, EDITOR) as api:
            core = k8s.CoreV1Api(api)
            for i in range(UNRELATED_CONFIGMAPS):
                data = {"blob": f"{round_}{i:06d}" + "x" * (UNRELATED_SIZE - 7)}
                core.create_namespaced_config_map(ns, {"metadata": {"name": f"blob-{round_}-{i}"}, "data": data})
            core.create_namespaced_config_map(ns, {"metadata": {"name": f"marker-{round_}"}, "data": marker})
        cluster.wait_for(lambda: indexed in refusal(), timeout=120, what=f"round {round_} indexed")
        time.sleep(KOPF_IDLE.idle_timeout + KOPF_IDLE.exit_timeout + 2)  # for kopf to let go of the events
        return resident_bytes(operator)

    assert f"ConfigMap {ns}/marker-1 not found" in refusal()
    start = resident_bytes(operator)
    first = fill(1, {"system.md": "Be careful."}, f"ConfigMap {ns}/marker-2 not found")
    # without the key the prompt names: the workload stays unrunnable, no gate run adds to the figure
    second = fill(2, {"other.md": "-"}, f"ConfigMap {ns}/marker-2 has no key 'system.md'")
    data = UNRELATED_CONFIGMAPS * UNRELATED_SIZE
    print(
        f"\naigate's resident memory: {start / 2**20:.1f} MiB; +{(first - start) / 2**20:.1f} MiB after a first "
        f"{UNRELATED_CONFIGMAPS} unrelated ConfigMaps of {UNRELATED_SIZE // 1024} KB ({data / 2**20:.1f} MiB of data), "
        f"+{(second - first) / 2**20:.1f} MiB after a second {UNRELATED_CONFIGMAPS}"
    )
    assert second - first < data / 2, (
        f"aigate grew by {(second - first) / 2**20:.1f} MiB for {data / 2**20:.1f} MiB of data no decision reads"
    )


ATTACK_SECONDS = 30
ATTACK_CLIENTS = 4


def impersonating(cluster: Cluster, user: str) -> k8s.ApiClient:
    """An API client acting as `user` (what `kubectl --as` does: the Impersonate-User header, admin credentials)."""
    api = cluster.api_client()
    api.set_default_header("Impersonate-User", user)
    return api


def heavy_suite(revision: int) -> str:
    """A suite just under the 256 KB bound, every line of it parsed before the one fault at the end (two cases
    share a name) is found: the most a digest of a valid-looking suite costs. `revision` makes each write new."""
    case = '- name: case-{i}\n  messages:\n  - role: user\n    content: "summarize case {i}: an unusual transfer"\n'
    lines, size, i = [f"# revision {revision}\n"], 0, 0
    while size < 250_000:
        lines.append(case.format(i=i))
        size += len(lines[-1])
        i += 1
    lines.append(case.format(i=0))
    return "".join(lines)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def test_one_namespace_loading_the_webhook_leaves_anothers_rollouts_answered(
    cluster: Cluster, team: str, operator: OperatorProcess, simulator: SimulatorServer
) -> None:
    """Namespace A's editor references a 1 MB ConfigMap (a 250 KB suite that must be parsed whole to be found
    wrong, and padding), made before the workload naming it, and for 30 s runs labelled `--dry-run=server` creates
    of Deployments from several clients while rewriting the suite (each version must be digested anew). Namespace
    B's team meanwhile rolls out for a passing and a failing workload: every B review is answered with the right
    decision (the API server answers a webhook slower than its timeout with an error, which the test would see),
    and its latencies are printed. Clients act as the editors with impersonation, as `kubectl --as` does, without
    a process per request."""
    a = team
    b = cluster.create_namespace("t")
    try:
        bind_editor(cluster, b, "bob")
        setup(cluster, b)
        for name, approval in (("steady-pass", True), ("steady-fail", False)):
            doc = json.dumps(workload(b, name, simulator.url, approval=approval))
            cluster.wait_for(
                lambda doc=doc: (
                    cluster.kubectl("apply", "-f", "-", as_user="bob", input=doc, check=False).returncode == 0
                ),
                timeout=60,
                what="bob's edit role in namespace B",
            )
        # A: the ConfigMap first (indexed before any workload names it), then the workload reading it
        setup(cluster, a)
        big = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "big-suite", "namespace": a},
            "data": {"cases.yaml": heavy_suite(0), "padding.txt": "p" * 750_000},
        }
        made = editor(cluster, "create", "-f", "-", input=json.dumps(big))
        assert made.returncode == 0, made.stderr
        heavy = workload(a, "heavy", simulator.url, approval=True)
        heavy["spec"]["suite"] = {"configMapRef": {"name": "big-suite", "key": "cases.yaml"}}
        applied = editor(cluster, "apply", "-f", "-", input=json.dumps(heavy))
        assert applied.returncode == 0, applied.stderr
        wait_decision(cluster, b, "steady-pass", "PASS")
        wait_decision(cluster, b, "steady-fail", "FAIL")

        stop = threading.Event()
        b_latencies: list[float] = []
        b_wrong: list[str] = []
        a_answers: list[str] = []
        writes = [0]

        def attack(i: int) -> None:
            with impersonating(cluster, EDITOR) as api:
                apps = k8s.AppsV1Api(api)
                body = labelled_deployment(a, "heavy", f"flood-{i}")
                while not stop.is_set():
                    try:
                        apps.create_namespaced_deployment(a, body, dry_run="All", _request_timeout=30)
                        a_answers.append("admitted")
                    except ApiException as e:
                        a_answers.append(f"{e.status} {e.body}")

        def rewrite() -> None:
            with impersonating(cluster, EDITOR) as api:
                core = k8s.CoreV1Api(api)
                while not stop.is_set():
                    writes[0] += 1
                    patch = {"data": {"cases.yaml": heavy_suite(writes[0])}}
                    core.patch_namespaced_config_map("big-suite", a, patch, _request_timeout=30)

        def steady() -> None:
            with impersonating(cluster, "bob") as api:
                apps = k8s.AppsV1Api(api)
                n = 0
                while not stop.is_set():
                    n += 1
                    wl = ("steady-pass", "steady-fail")[n % 2]
                    started = time.perf_counter()
                    try:
                        apps.create_namespaced_deployment(
                            b, labelled_deployment(b, wl, f"app-{n}"), dry_run="All", _request_timeout=30
                        )
                        outcome = "admitted"
                    except ApiException as e:
                        outcome = f"{e.status} {e.body}"
                    b_latencies.append(time.perf_counter() - started)
                    right = outcome == "admitted" if wl == "steady-pass" else outcome.startswith("403 ")
                    if not right or (wl == "steady-fail" and "toolControl" not in outcome):
                        b_wrong.append(f"{wl}: {outcome[:300]}")

        rss_before = resident_bytes(operator)
        threads = [threading.Thread(target=attack, args=(i,)) for i in range(ATTACK_CLIENTS)]
        threads += [threading.Thread(target=rewrite), threading.Thread(target=steady)]
        for t in threads:
            t.start()
        time.sleep(ATTACK_SECONDS)  # the length of the attack, not a wait for a state
        stop.set()
        for t in threads:
            t.join(60)
        load = os.getloadavg()[0]
        rss_after = resident_bytes(operator)

        refused_for_the_suite = [x for x in a_answers if x.startswith("403 ") and "duplicate case names" in x]
        timeouts = [x for x in a_answers if "deadline" in x or "timeout" in x.lower()]
        p50, p99 = percentile(b_latencies, 0.5), percentile(b_latencies, 0.99)
        print(
            f"\nB: {len(b_latencies)} rollouts answered, p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
            f"max {max(b_latencies) * 1000:.0f} ms (webhook timeout {WEBHOOK_TIMEOUT_SECONDS} s); "
            f"A: {len(a_answers)} dry-run creates from {ATTACK_CLIENTS} clients ({len(refused_for_the_suite)} "
            f"refused naming the suite, {len(timeouts)} timed out), {writes[0]} rewrites of the 1 MB ConfigMap; "
            f"load average {load:.1f}; aigate's resident memory {rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MiB"
        )
        assert b_latencies, "namespace B got no answer at all"
        assert b_wrong == [], f"{len(b_wrong)} of B's rollouts got a wrong or no decision: {b_wrong[:3]}"
        # the load went where it should: A's reviews digested the big suite (fetched, then from the index) and were
        # refused for it, or, on a busy machine, outlasted the API server's webhook timeout; never admitted
        other = [x for x in a_answers if x not in refused_for_the_suite and x not in timeouts]
        assert a_answers and not other, f"A's reviews were not all about the suite: {other[:3]}"
        assert writes[0] > 1
    finally:
        cluster.delete_namespace(b)
