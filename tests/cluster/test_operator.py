"""The operator end to end on the real local cluster: `kubectl apply` of an AIWorkload starts a gate Job (a container
from the aigate image on the real node), the result comes back as conditions and signed evidence, and the API server
itself refuses rollouts without passing, current, unexpired evidence."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from clusterkit import governed
from flows import (
    ACCEPTORS,
    CANARY,
    GATES,
    apply,
    conditions,
    deployment,
    gate_jobs,
    get_workload,
    metric,
    rollout,
    run_secrets,
    running_operator,
    setup_namespace,
    uid_of,
    wait_decision,
    workload,
)

from aigate.evidence.keys import key_id, load_public_key
from aigate.simulator.server import SimulatorServer
from localcluster.aigate_operator import (
    OperatorProcess,
    grant_public_key_readers,
    install_crd,
    install_policy_crd,
)
from localcluster.testing import Cluster, cluster_image


@pytest.fixture(scope="module")
def operator(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    install_crd(cluster.kubectl)
    install_policy_crd(cluster.kubectl)  # test_warn_admits_with_a_warning_and_audit_admits_silently writes one
    cluster.ensure_namespace("aigate-system")
    grant_public_key_readers(cluster.kubectl)
    cluster.ensure_namespace(GATES)
    # who may accept risks (the group) and who may only edit workloads
    rbac = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "aiworkload-editor"},
                "rules": [
                    {
                        "apiGroups": ["aigate.dev"],
                        "resources": ["aiworkloads"],
                        "verbs": ["get", "list", "patch", "update"],
                    }
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "aiworkload-editors"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "aiworkload-editor",
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": ACCEPTORS},
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"},
                ],
            },
        ],
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(rbac))
    with running_operator(
        cluster,
        tmp_path_factory.mktemp("aigate-operator"),
        acceptor_groups=ACCEPTORS,
        gate_image=cluster_image(),
    ) as op:
        yield op


# ---- the flows ---------------------------------------------------------------------------------------------------


def test_failing_workload_blocks_rollout_then_fix_admits(
    cluster: Cluster, namespace: str, operator: OperatorProcess, simulator: SimulatorServer
) -> None:
    ns, name = namespace, "fraud-review"
    setup_namespace(cluster, ns, name)
    apply(cluster, workload(ns, name, simulator, approval=False))
    wl = wait_decision(cluster, ns, name, "FAIL")
    conds = conditions(wl)
    assert conds["ToolControlGate"]["status"] == "False"
    assert conds["ToolControlGate"]["reason"] == "Failed"
    assert "Human approval: missing for write action create_case_note" in conds["ToolControlGate"]["message"]
    assert conds["Ready"]["status"] == "False" and conds["Ready"]["reason"] == "GatesFailed"
    assert conds["CostGate"]["status"] == "True" and conds["EvidenceGate"]["status"] == "True"
    assert {c["type"] for c in wl["status"]["conditions"]} == {
        "CostGate",
        "ReliabilityGate",
        "FallbackGate",
        "ToolControlGate",
        "ProviderDependencyGate",
        "EvidenceGate",
        "Ready",
    }
    assert all(c["observedGeneration"] == wl["metadata"]["generation"] for c in wl["status"]["conditions"])
    assert wl["status"]["evidence"]["digest"] == wl["status"]["specDigest"]
    # the kubectl get column: the cost ratio the operator wrote, as text
    summary = wl["status"]["summary"]
    assert summary["costRatioText"] == f"{summary['costRatio']:.2f}x", summary
    first_job = wl["status"]["lastRun"]["job"]

    refused = rollout(cluster, ns, name)
    assert refused.returncode != 0
    assert "denied the request" in refused.stderr
    assert f"AIWorkload {ns}/{name}" in refused.stderr and "toolControl" in refused.stderr
    # a refusal is the product working, not an error
    denial = [
        line for line in operator.webhook_log.read_text().splitlines() if f"AIWorkload {ns}/{name} is not" in line
    ]
    assert denial and all("[INFO" in line and "denied by rollouts.aigate.dev:" in line for line in denial), denial

    # the team fixes the spec: a new Job runs and the same Deployment is admitted
    fixed = workload(ns, name, simulator, approval=True)
    apply(cluster, fixed)
    wl = wait_decision(cluster, ns, name, "PASS", after_job=first_job)
    assert wl["status"]["lastRun"]["job"] != first_job
    assert conditions(wl)["Ready"]["status"] == "True"
    admitted = rollout(cluster, ns, name)
    assert admitted.returncode == 0, admitted.stderr
    # a second rollout for the same evidence comes from the webhook's cache: no ECDSA check, no digest
    hits = {
        w: metric(operator, "aigate_admission_verify_cache_total", what=w, result="hit")
        for w in ("signature", "digest")
    }
    misses = metric(operator, "aigate_admission_verify_cache_total", what="signature", result="miss")
    assert rollout(cluster, ns, name, "fraud-app-2").returncode == 0
    for w, before in hits.items():
        assert metric(operator, "aigate_admission_verify_cache_total", what=w, result="hit") == before + 1, w
    assert metric(operator, "aigate_admission_verify_cache_total", what="signature", result="miss") == misses
    assert len({j["metadata"]["name"] for j in gate_jobs(cluster, ns, name)}) == 2
    events = cluster.get_json("events", "-n", ns, "--field-selector", f"involvedObject.name={name}")["items"]
    reasons = {e["reason"] for e in events}
    assert {"GateRunStarted", "GatesFailed", "GatesPassed"} <= reasons

    # no API key anywhere: status, events, ConfigMaps, the gate Jobs' output, the operator's and webhook's logs
    everything = [
        json.dumps(get_workload(cluster, ns, name)),
        json.dumps(events),
        json.dumps(cluster.get_json("configmaps", "-n", ns)),
        json.dumps(gate_jobs(cluster, ns, name)),
        operator.logs(),
    ]
    for pod in cluster.get_json("pods", "-n", ns)["items"]:
        everything.append(cluster.pod_log(ns, pod["metadata"]["name"]))
    uid = uid_of(cluster, ns, name)
    for pod in cluster.get_json("pods", "-n", GATES, "-l", f"aigate.dev/workload-uid={uid}")["items"]:
        everything.append(cluster.pod_log(GATES, pod["metadata"]["name"]))
    everything.append(json.dumps(cluster.get_json("configmaps", "-n", GATES, "-l", f"aigate.dev/workload-uid={uid}")))
    # the keys were copied into the gate namespace for the runs' lifetime only
    assert run_secrets(cluster, uid) == []
    for key in CANARY.values():
        assert not any(key in text for text in everything), f"API key leaked: {key[:8]}…"
    # no line per admitted review nor per watched event (every ConfigMap in the cluster), but what was done
    log = operator.logs()
    assert "judged PASS" in log and "judged FAIL" in log
    noise = re.findall(r"(?:configmap.events?|gate.job.events?|evidence.timer|rollouts\.aigate\.dev)' succeeded", log)
    assert not noise, noise[:3]


def test_warn_admits_with_a_warning_and_audit_admits_silently(
    cluster: Cluster, namespace: str, operator: OperatorProcess, simulator: SimulatorServer
) -> None:
    """Under an AIGatePolicy whose floor is `audit` (an admin's softer start: without one, the platform default's
    `enforce` applies), each workload's own mode decides."""
    ns = namespace
    with governed(cluster, ns, f"adopting-{ns}", enforcement="audit"):
        for name, mode in (("warned", "warn"), ("audited", "audit")):
            setup_namespace(cluster, ns, name)
            apply(cluster, workload(ns, name, simulator, approval=False, enforcement=mode))
        wl = wait_decision(cluster, ns, "warned", "FAIL")
        assert wl["status"]["policy"]["names"] == [f"adopting-{ns}", "platform-default"]
        assert (wl["status"]["policy"]["enforcement"], wl["status"]["policy"]["maxValidFor"]) == ("audit", "720h")
        wait_decision(cluster, ns, "audited", "FAIL")
        warned = rollout(cluster, ns, "warned", "app-warned")
        assert warned.returncode == 0, warned.stderr
        assert re.search(r"Warning: .*AIWorkload .*/warned .*toolControl", warned.stderr), warned.stderr
        before = metric(operator, "aigate_admission_decisions_total", result="audited")
        audited = rollout(cluster, ns, "audited", "app-audited")
        assert audited.returncode == 0 and "Warning" not in audited.stderr, audited.stderr
        assert metric(operator, "aigate_admission_decisions_total", result="audited") == before + 1


def test_editing_a_referenced_configmap_makes_evidence_stale(
    cluster: Cluster, namespace: str, operator: OperatorProcess, simulator: SimulatorServer
) -> None:
    ns, name = namespace, "prompted"
    setup_namespace(cluster, ns, name)
    apply(cluster, workload(ns, name, simulator))
    wl = wait_decision(cluster, ns, name, "PASS")
    old_digest, old_job = wl["status"]["specDigest"], wl["status"]["lastRun"]["job"]
    assert rollout(cluster, ns, name).returncode == 0
    setup_namespace(cluster, ns, name, prompt="You review fraud cases. Be terse.")
    refused = rollout(cluster, ns, name, "second-app")
    assert refused.returncode != 0 and "spec" in refused.stderr, refused.stderr
    wl = wait_decision(cluster, ns, name, "PASS", after_job=old_job)
    assert wl["status"]["specDigest"] != old_digest
    assert rollout(cluster, ns, name, "second-app").returncode == 0


def test_evidence_expires_and_a_regate_restores_it(
    cluster: Cluster, namespace: str, operator: OperatorProcess, simulator: SimulatorServer
) -> None:
    ns, name = namespace, "short-lived"
    setup_namespace(cluster, ns, name)
    apply(cluster, workload(ns, name, simulator, valid_for="30s", regate_before="0s"))
    wl = wait_decision(cluster, ns, name, "PASS")
    expires = wl["status"]["evidence"]["expiresAt"]
    first_job = wl["status"]["lastRun"]["job"]
    assert rollout(cluster, ns, name).returncode == 0

    def expired_event() -> bool:
        events = cluster.get_json("events", "-n", ns, "--field-selector", f"involvedObject.name={name}")["items"]
        return any(e["reason"] == "EvidenceExpired" for e in events)

    cluster.wait_for(expired_event, timeout=120, what="an EvidenceExpired event")
    # until the re-gate has signed new evidence, the old evidence grants nothing
    wl = get_workload(cluster, ns, name)
    if (wl["status"].get("evidence") or {}).get("expiresAt") == expires:
        assert conditions(wl)["Ready"]["status"] == "False"
        refused = rollout(cluster, ns, name, "late-app")
        if (get_workload(cluster, ns, name)["status"].get("evidence") or {}).get("expiresAt") == expires:
            assert refused.returncode != 0 and "expired" in refused.stderr, refused.stderr
    wl = wait_decision(cluster, ns, name, "PASS", after_job=first_job)
    assert wl["status"]["evidence"]["expiresAt"] > expires
    assert conditions(wl)["Ready"]["status"] == "True"
    assert rollout(cluster, ns, name, "late-app").returncode == 0


def test_forged_status_admits_nothing(
    cluster: Cluster, namespace: str, operator: OperatorProcess, simulator: SimulatorServer
) -> None:
    ns, name = namespace, "forged"
    setup_namespace(cluster, ns, name)
    apply(cluster, workload(ns, name, simulator, approval=False))
    wl = wait_decision(cluster, ns, name, "FAIL")
    forged = copy.deepcopy(wl["status"])
    forged.update(decision="PASS", phase="Passed")
    for c in forged["conditions"]:
        c.update(status="True", reason="Passed")
    forged["evidence"].update(digest=wl["status"]["specDigest"], keyId="0" * 64, expiresAt="2099-01-01T00:00:00Z")
    cluster.kubectl(
        "patch",
        "aiworkload",
        name,
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": forged}),
    )
    refused = rollout(cluster, ns, name)
    assert refused.returncode != 0, "a hand-edited status got a Deployment admitted"
    assert "denied the request" in refused.stderr
    # and the operator puts back what the signed evidence says
    cluster.wait_for(
        lambda: get_workload(cluster, ns, name)["status"].get("decision") == "FAIL",
        timeout=60,
        what="status re-synced from the signed evidence",
    )


def test_risk_acceptance_records_the_accepting_user(
    cluster: Cluster, namespace: str, operator: OperatorProcess, simulator: SimulatorServer
) -> None:
    ns, name = namespace, "accepted"
    setup_namespace(cluster, ns, name)
    doc = workload(ns, name, simulator)
    apply(cluster, doc)
    acceptance = {
        "gate": "cost",
        "reason": "budget raise approved for Q1",
        "expires": "2099-03-01T00:00:00Z",
        "acceptedBy": "someone-else",
    }
    patch = json.dumps({"spec": {"riskAcceptances": [acceptance]}})
    cluster.kubectl(
        "patch", "aiworkload", name, "-n", ns, "--type=merge", "-p", patch, as_user="alice", as_groups=(ACCEPTORS,)
    )
    accepted = get_workload(cluster, ns, name)["spec"]["riskAcceptances"]
    assert [a["acceptedBy"] for a in accepted] == ["alice"]

    refused = cluster.kubectl(
        "patch",
        "aiworkload",
        name,
        "-n",
        ns,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"riskAcceptances": [acceptance, {**acceptance, "gate": "fallback"}]}}),
        as_user="bob",
        as_groups=("developers",),
        check=False,
    )
    assert refused.returncode != 0
    assert "user bob may not accept risks" in refused.stderr, refused.stderr
    assert [a["acceptedBy"] for a in get_workload(cluster, ns, name)["spec"]["riskAcceptances"]] == ["alice"]


def test_operator_restart_picks_up_the_running_job(
    cluster: Cluster, namespace: str, operator: OperatorProcess, simulator: SimulatorServer
) -> None:
    ns, name = namespace, "survivor"
    setup_namespace(cluster, ns, name)
    apply(cluster, workload(ns, name, simulator))
    cluster.wait_for(lambda: gate_jobs(cluster, ns, name), timeout=60, what="the gate Job")
    operator.kill()
    try:
        # with the operator down the webhook (a process of its own) still answers: no evidence yet, refused in
        # aigate's words, not for want of an answer
        refused = rollout(cluster, ns, name)
        assert refused.returncode != 0
        assert f"AIWorkload {ns}/{name} is not cleared for rollout" in refused.stderr, refused.stderr
        cluster.wait_for_condition("job", gate_jobs(cluster, ns, name)[0]["metadata"]["name"], GATES, "Complete")
    finally:
        operator.start()
        operator.wait_ready()
    wait_decision(cluster, ns, name, "PASS")
    assert len(gate_jobs(cluster, ns, name)) == 1, "a second gate Job was started after the restart"
    assert run_secrets(cluster, uid_of(cluster, ns, name)) == [], "a run Secret outlived its run"
    assert rollout(cluster, ns, name).returncode == 0


def test_progress_in_status_while_the_gate_run_goes_and_none_after(
    cluster: Cluster, namespace: str, operator: OperatorProcess, simulator: SimulatorServer
) -> None:
    ns, name = namespace, "progressing"
    setup_namespace(cluster, ns, name)
    doc = workload(ns, name, simulator)
    doc["spec"]["traffic"]["peakRequestsPerSecond"] = 4  # 2 models x 30 repeats x 2 cases at 4/s: a run of ~40 s
    planned = 2 * 30 * 2 + 5 * 2  # and the 2 cases once per fault mode
    apply(cluster, doc)
    seen: list[dict[str, Any]] = []
    rows: list[str] = []  # kubectl get -o wide while the run goes

    def finished() -> dict[str, Any] | None:
        st = get_workload(cluster, ns, name).get("status") or {}
        if (st.get("lastRun") or {}).get("finishedAt"):
            return st
        if st.get("progress") and st.get("phase") == "Testing":
            seen.append(st["progress"])
            if len(rows) < 3 and st["progress"].get("done"):
                rows.append(cluster.kubectl("get", "aiworkload", name, "-n", ns, "-o", "wide").stdout.splitlines()[1])
        return None

    final = cluster.wait_for(finished, timeout=300, interval=0.5, what=f"{ns}/{name}'s gate run to end")
    assert final["phase"] in ("Passed", "Failed"), json.dumps(final)[:2000]
    assert "progress" not in final, "progress outlived its run"
    counted = [p for p in seen if p.get("done")]
    assert counted, f"no progress seen while the run went: {seen}"
    for p in counted:
        assert p["total"] == planned and 0 < p["done"] <= planned, p
        assert p["message"] == f"{p['done']}/{planned} cases ({p['phase']})"
        assert re.fullmatch(r"(baseline (primary|fallback)|fallback [a-z_0-9]+)", p["phase"]), p
    assert any(p["done"] < planned for p in counted), "only a finished count was seen"
    dones = [p["done"] for p in counted]
    assert dones == sorted(dones), "the count went back"
    shown = re.compile(rf"\d+/{planned} cases \((baseline [a-z]+|fallback [a-z_0-9]+)\)$")
    assert any(shown.search(row) for row in rows), rows
    wide = cluster.kubectl("get", "aiworkload", name, "-n", ns, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-1] == "PROGRESS" and len(wide[1].split()) == len(wide[0].split()) - 1, wide
    # the gate pod's log: plain progress lines
    job = final["lastRun"]["job"]
    log = cluster.kubectl("logs", f"job/{job}", "-n", GATES).stdout
    assert f"{planned} requests planned" in log
    assert re.search(r"^baseline primary: 60/60 cases, [0-9.]+s$", log, re.M), log[-2000:]


def test_metrics_and_probes(operator: OperatorProcess) -> None:
    for http in (operator.http, operator.webhook_http):
        assert http("/healthz")[0] == 200
        assert http("/readyz")[0] == 200
    status, text = operator.http("/metrics")
    assert status == 200 and "aigate_gate_result" in text
    status, text = operator.webhook_http("/metrics")
    assert status == 200
    for name in ("aigate_admission_decisions_total", "aigate_admission_duration_seconds"):
        assert name in text


def test_the_operator_publishes_its_public_key(cluster: Cluster, operator: OperatorProcess) -> None:
    """At start-up, from the key it signs with; readable by any authenticated user, and by no one writable but it."""
    cm = cluster.get_json("configmap", "aigate-public-key", "-n", "aigate-system")
    assert cm["data"]["aigate.pub"] == operator.public_key.read_text()
    assert cm["data"]["keyId"] == key_id(load_public_key(operator.public_key))
    who = ("--as=someone", "--as-group=system:authenticated")
    can = cluster.kubectl(
        "auth", "can-i", "get", "configmap/aigate-public-key", "-n", "aigate-system", *who, check=False
    )
    assert can.stdout.strip() == "yes"
    for verb in ("update", "delete"):
        can = cluster.kubectl(
            "auth", "can-i", verb, "configmap/aigate-public-key", "-n", "aigate-system", *who, check=False
        )
        assert can.stdout.strip() == "no"
    other = cluster.kubectl("auth", "can-i", "get", "configmap/other", "-n", "aigate-system", *who, check=False)
    assert other.stdout.strip() == "no"


def test_the_api_server_talks_http2_to_the_webhook(cluster: Cluster, namespace: str, operator: OperatorProcess) -> None:
    """ALPN: the API server offers h2 and multiplexes its reviews over one connection instead of reconnecting."""
    ns = namespace
    counted = {"webhook": "rollouts.aigate.dev", "http_version": "2"}
    before = metric(operator, "aigate_admission_http_requests_total", **counted)
    refused = cluster.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=json.dumps(deployment(ns, "h2-app", "nobody")), check=False
    )
    assert refused.returncode != 0 and f"AIWorkload {ns}/nobody not found" in refused.stderr
    assert metric(operator, "aigate_admission_http_requests_total", **counted) == before + 1
    assert metric(operator, "aigate_admission_http_requests_total", http_version="1.1") == 0
