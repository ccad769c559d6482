"""The pure decisions in aigate.policy, as tables; and the layering that keeps them pure."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aigate.policy.conditions import Reason, expired_condition, merge_conditions, ready_condition
from aigate.policy.governance import PLATFORM_DEFAULT, Floor
from aigate.policy.kinds import BY_KIND, GATED_KINDS, images
from aigate.policy.lifecycle import (
    Action,
    LastRun,
    Run,
    evidence_state,
    invalid_unchanged,
    keep_evidence,
    needs_expired_mark,
    next_action,
    run_result_problem,
    tick_action,
    tick_needs_job,
)
from aigate.policy.mcpservers import mcp_problem
from aigate.policy.rollout import (
    EvidenceCheck,
    decide_rollout,
    enforcement_of,
    label_decision,
    not_judged,
    shape_problem,
)
from aigate.policy.text import MAX_MESSAGE

PACKAGE = Path(__file__).resolve().parents[1] / "operator" / "aigate"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
D, OLD = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("module", sorted(p.name for p in (PACKAGE / "policy").glob("*.py")))
def test_policy_imports_neither_kopf_nor_the_kubernetes_client(module: str) -> None:
    imported = _imports(PACKAGE / "policy" / module)
    plumbing = {m for m in imported if m.split(".")[0] in ("kopf", "kubernetes", "aiohttp", "httpx")}
    controller = {m for m in imported if m.startswith("aigate.controller")}
    assert not plumbing and not controller, f"policy/{module} imports {sorted(plumbing | controller)}"


@pytest.mark.parametrize(
    ("signed", "expires", "want"),
    [
        (None, None, "missing"),
        (OLD, NOW + timedelta(days=1), "stale"),
        (D, NOW, "expired"),
        (D, NOW - timedelta(seconds=1), "expired"),
        (D, NOW + timedelta(seconds=1), "valid"),
    ],
)
def test_evidence_state(signed: str | None, expires: datetime | None, want: str) -> None:
    assert evidence_state(signed, expires, D, NOW) == want


@pytest.mark.parametrize(
    ("state", "regate_at", "force", "keep"),
    [
        ("valid", None, False, True),
        ("valid", NOW + timedelta(hours=1), False, True),
        ("valid", NOW, False, False),  # re-gate time reached
        ("valid", None, True, False),  # forced
        ("expired", None, False, False),
        ("stale", None, False, False),
        ("invalid", None, False, False),
    ],
)
def test_keep_evidence(state: str, regate_at: datetime | None, force: bool, keep: bool) -> None:
    assert keep_evidence(state, regate_at, NOW, force=force) is keep  # type: ignore[arg-type]


def last(
    job: str | None = None, finished: bool = False, phase: str | None = None, digest: str | None = None
) -> LastRun:
    return LastRun(job=job, finished=finished, phase=phase, spec_digest=digest)


@pytest.mark.parametrize(
    ("state", "runs", "lastrun", "force", "want"),
    [
        # nothing running, no evidence: start
        ("missing", [], last(), False, Action("start")),
        # a run for this digest is going: wait; a run for an older digest is stopped
        ("missing", [Run("j1", D, False)], last("j1", phase="Testing"), False, Action("wait", "gate run in progress")),
        ("missing", [Run("j0", OLD, False)], last("j0", phase="Testing"), False, Action("start", stop=["j0"])),
        (
            "stale",
            [Run("j0", OLD, False), Run("j1", D, False)],
            last("j1"),
            False,
            Action("wait", "gate run in progress", ["j0"]),
        ),
        # the recorded run finished while nobody looked: collect it
        ("missing", [Run("j1", D, True)], last("j1", phase="Testing"), False, Action("collect", job="j1")),
        # ... but not once it was processed
        ("missing", [Run("j1", D, True)], last("j1", True, "Passed", D), False, Action("start")),
        # the last run for this very digest errored: wait for a change, unless forced
        (
            "missing",
            [],
            last("j1", True, "Error", D),
            False,
            Action("wait", "last run for this digest errored; waiting for a change"),
        ),
        ("missing", [], last("j1", True, "Error", D), True, Action("start")),
        ("missing", [], last("j1", True, "Error", OLD), False, Action("start")),
        # re-gate ahead of expiry keeps Ready; expired evidence is marked first, unless a run is already on
        ("valid", [], last("j1", True, "Passed", D), True, Action("start", regate=True)),
        ("expired", [], last("j1", True, "Passed", D), False, Action("start", mark_expired=True)),
        ("expired", [], last("j1", True, "Testing", D), False, Action("start")),
    ],
)
def test_next_action(state: str, runs: list[Run], lastrun: LastRun, force: bool, want: Action) -> None:
    assert next_action(D, state, runs, lastrun, force=force) == want  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("lastrun", "job", "want"),
    [
        (last("j1", False, "Testing"), Run("j1", D, True), "collect"),
        (last("j1", False, "Testing"), Run("j1", D, False), "wait"),
        (last("j1", False, "Testing"), None, "reconcile"),  # the Job is gone: reconcile starts it again
        (last("j1", True, "Passed"), Run("j1", D, True), "reconcile"),
        (last(None, False, "Pending"), None, "reconcile"),
    ],
)
def test_tick_action(lastrun: LastRun, job: Run | None, want: str) -> None:
    assert tick_action(lastrun, job, tick_needs_job(lastrun)) == want


@pytest.mark.parametrize(
    ("lastrun", "job", "uid", "template", "want"),
    [
        (last("j1"), "j1", "u1", True, None),  # uid not recorded yet (stopped in between): adopted with our template
        (LastRun("j1", False, "Testing", D, "u1", "gates"), "j1", "u1", True, None),
        (last("j1"), "j0", "u1", True, "not the current run"),
        (LastRun("j1", False, "Testing", D, "u1", "tenant"), "j1", "u1", True, "not the current run"),
        (last("j1", finished=True), "j1", "u1", True, "already processed"),
        (
            LastRun("j1", False, "Testing", D, "u1", "gates"),
            "j1",
            "u2",
            True,
            "Job gates/j1 is not the one aigate created (uid u2, not u1): result ignored",
        ),
        (
            last("j1"),
            "j1",
            "u1",
            False,
            "Job gates/j1 does not run what aigate created (its pod template differs): result ignored",
        ),
    ],
)
def test_run_result_is_taken_from_the_job_aigate_created_once(
    lastrun: LastRun, job: str, uid: str, template: bool, want: str | None
) -> None:
    problem = run_result_problem(lastrun, job, "gates", uid, template)
    assert (problem.why if problem else None) == want
    assert (problem is not None and problem.forged) == (want is not None and want.startswith("Job "))


def test_conditions_use_reason_constants_and_marking_is_idempotent() -> None:
    ready = ready_condition([], "FAIL", None, 1, NOW)
    assert ready["reason"] == Reason.GATES_FAILED and ready["message"] == "decision FAIL"
    assert needs_expired_mark([ready])
    expired = merge_conditions([ready], [expired_condition("2026-12-01T00:00:00Z", 1, NOW)])
    assert [c["reason"] for c in expired] == [Reason.EVIDENCE_EXPIRED]
    assert not needs_expired_mark(expired)
    assert invalid_unchanged({"phase": "Error", "conditions": [{"message": "bad"}]}, "bad")
    assert not invalid_unchanged({"phase": "Failed", "conditions": [{"message": "bad"}]}, "bad")


@pytest.mark.parametrize(
    ("labels", "found", "allowed", "message"),
    [
        ({}, False, True, "Deployment has no aigate.dev/workload label: not gated by aigate"),
        ({"aigate.dev/workload": ""}, False, False, "Deployment has an empty aigate.dev/workload label"),
        (
            {"aigate.dev/workload": "w"},
            False,
            False,
            "AIWorkload ns/w not found (named by the aigate.dev/workload label of this Deployment)",
        ),
    ],
)
def test_label_decision(labels: dict[str, str], found: bool, allowed: bool, message: str) -> None:
    d = label_decision("Deployment", "ns", labels, found)
    assert d is not None and d.allowed is allowed and d.message == message
    assert label_decision("Deployment", "ns", {"aigate.dev/workload": "w"}, True) is None


@pytest.mark.parametrize(
    ("enforcement", "allowed", "result", "warned"),
    [("enforce", False, "denied", False), ("warn", True, "warned", True), ("audit", True, "audited", False)],
)
def test_enforcement_decides_what_a_problem_does(enforcement: str, allowed: bool, result: str, warned: bool) -> None:
    wl = {"spec": {"enforcement": enforcement}, "status": {}}
    d = decide_rollout("ns/w", wl, "spec cannot be resolved: x", None)
    assert (d.allowed, d.result, bool(d.warnings)) == (allowed, result, warned)
    assert d.message == "AIWorkload ns/w is not cleared for rollout: spec cannot be resolved: x"


RAISED_BY_DEFAULT = " (spec.enforcement audit is raised to enforce, the floor set by the platform default)"


@pytest.mark.parametrize(
    ("own", "floor", "allowed", "result", "tail"),
    [
        ("audit", Floor("enforce", PLATFORM_DEFAULT), False, "denied", RAISED_BY_DEFAULT),
        (
            "audit",
            Floor("warn", "adopting"),
            True,
            "warned",
            " (spec.enforcement audit is raised to warn, the floor set by AIGatePolicy adopting)",
        ),
        ("enforce", Floor("audit", "lenient"), False, "denied", ""),  # stricter than the floor: its own
        ("warn", Floor("warn", PLATFORM_DEFAULT), True, "warned", ""),
    ],
)
def test_the_floor_decides_when_the_workload_asks_for_less(
    own: str, floor: Floor, allowed: bool, result: str, tail: str
) -> None:
    d = decide_rollout("ns/w", {"spec": {"enforcement": own}, "status": {}}, "spec cannot be resolved: x", None, floor)
    assert (d.allowed, d.result, d.enforcement) == (allowed, result, "enforce" if not allowed else "warn")
    assert d.message == "AIWorkload ns/w is not cleared for rollout: spec cannot be resolved: x" + tail


def test_the_floors_note_survives_a_long_refusal() -> None:
    d = decide_rollout("ns/w", {"spec": {"enforcement": "audit"}}, "x" * 5000, None, Floor("enforce", PLATFORM_DEFAULT))
    assert len(d.message) <= MAX_MESSAGE and d.message.endswith("…" + RAISED_BY_DEFAULT)


def test_enforcement_defaults_to_enforce_for_what_it_cannot_read() -> None:
    assert enforcement_of({"spec": {"enforcement": "off"}}) == "enforce"
    assert enforcement_of({"spec": None}) == "enforce"


def test_status_pass_without_evidence_is_refused() -> None:
    wl = {
        "spec": {},
        "status": {"decision": "PASS", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    d = decide_rollout("ns/w", wl, None, EvidenceCheck("w-aigate-evidence", "evidence.json", "no-key"))
    assert not d.allowed
    assert d.message.endswith("no signed evidence (ConfigMap w-aigate-evidence has no key evidence.json)")


def owned_by(api_version: str, kind: str) -> dict[str, object]:
    return {"ownerReferences": [{"apiVersion": api_version, "kind": kind, "name": "owner-1", "uid": "u"}]}


@pytest.mark.parametrize(
    ("kind", "meta", "skipped"),
    [
        ("Pod", {}, False),  # a bare Pod is judged like a Deployment
        ("Pod", owned_by("apps/v1", "ReplicaSet"), True),  # a controller made it: its owner was judged
        ("Pod", owned_by("v1", "ReplicationController"), True),
        ("Pod", owned_by("apps/v1", "StatefulSet"), True),
        ("Pod", owned_by("apps/v1", "DaemonSet"), True),
        ("Pod", owned_by("batch/v1", "Job"), True),
        ("Pod", owned_by("v1", "ConfigMap"), False),  # not a gated kind: judged like a bare Pod
        ("Pod", owned_by("example.com/v1", "MyApp"), False),  # a custom resource: judged
        ("Pod", owned_by("apps/v1", "Deployment"), False),  # a Deployment makes ReplicaSets, never Pods
        ("ReplicaSet", {}, False),  # a bare ReplicaSet is judged
        ("ReplicaSet", owned_by("apps/v1", "Deployment"), True),  # the deployment controller never waits
        ("ReplicaSet", owned_by("argoproj.io/v1alpha1", "Rollout"), True),
        ("ReplicaSet", owned_by("example.com/v1", "Deployment"), False),  # the group is part of the kind
        ("ReplicaSet", owned_by("v1", "ConfigMap"), False),
        ("ReplicationController", owned_by("apps/v1", "Deployment"), False),
        ("Job", owned_by("batch/v1", "CronJob"), False),  # made on a schedule: judged when it is made
        ("Job", owned_by("apps/v1", "ReplicaSet"), False),
        ("Deployment", owned_by("apps/v1", "ReplicaSet"), False),
        ("Deployment", {"deletionTimestamp": "2026-12-01T00:00:00Z"}, True),
        ("Pod", {"deletionTimestamp": "2026-12-01T00:00:00Z"}, True),
        ("Pod", {"ownerReferences": "not a list"}, False),
        ("Pod", {"ownerReferences": [{"kind": "ReplicaSet"}]}, False),  # no apiVersion: the core group, no such kind
    ],
)
def test_not_judged(kind: str, meta: dict[str, object], skipped: bool) -> None:
    assert not_judged(kind, {"metadata": meta}) is skipped


def test_a_gated_owner_among_others_lets_its_object_through() -> None:
    refs = [*owned_by("v1", "ConfigMap")["ownerReferences"], *owned_by("apps/v1", "ReplicaSet")["ownerReferences"]]
    assert not_judged("Pod", {"metadata": {"ownerReferences": refs}}) is True


def test_every_kind_a_gated_kind_makes_is_gated_too() -> None:
    """An owner may only let through what the webhook would otherwise judge; and what it lets through is judged
    where it has no gated owner."""
    kinds = {k.kind for k in GATED_KINDS}
    assert {made for k in GATED_KINDS for made in k.makes} <= kinds
    assert len({(k.group, k.resource) for k in GATED_KINDS}) == len(GATED_KINDS)


def cronjob(template_labels: dict[str, str] | None) -> dict[str, object]:
    template: dict[str, object] = {"spec": {}}
    if template_labels is not None:
        template["metadata"] = {"labels": template_labels}
    return {"spec": {"jobTemplate": template}}


@pytest.mark.parametrize(
    ("template_labels", "problem"),
    [
        ({"aigate.dev/workload": "w"}, None),
        (None, "(it has none)"),
        ({"app": "x"}, "(it has none)"),
        ({"aigate.dev/workload": "other"}, "(it has 'other')"),
    ],
)
def test_a_cronjob_carries_its_label_to_its_jobs(template_labels: dict[str, str] | None, problem: str | None) -> None:
    found = shape_problem(BY_KIND[("batch", "CronJob")], cronjob(template_labels), {"aigate.dev/workload": "w"})
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith("CronJob spec.jobTemplate.metadata.labels must carry")
        assert problem in found
    assert shape_problem(BY_KIND[("apps", "Deployment")], cronjob(None), {"aigate.dev/workload": "w"}) is None


@pytest.mark.parametrize(
    ("namespace", "excluded"),
    [("team-a", False), ("aigate-system", True), ("aigate-gates", True), ("kube-system", True)],
)
def test_aigates_own_namespaces_are_not_gated(namespace: str, excluded: bool) -> None:
    from aigate.policy.lifecycle import excluded_because

    why = excluded_because(namespace, "aigate-system", "aigate-gates")
    assert (why is not None) is excluded
    if why is not None:
        assert why.startswith(f"namespace {namespace} is ") and "not gated" in why


def test_only_added_references_need_the_right_to_read_them() -> None:
    from aigate.api.models import AIWorkload
    from aigate.policy.references import added, refusal

    def wl(secret: str, prompts: str) -> AIWorkload:
        return AIWorkload.model_validate(
            {
                "metadata": {"name": "w", "namespace": "team"},
                "spec": {
                    "owner": "o",
                    "models": [
                        {
                            "name": "p",
                            "provider": "openai",
                            "model": "m",
                            "credentials": {"secretRef": {"name": secret, "key": "k"}},
                        }
                    ],
                    "traffic": {"requestsPerDay": 1, "peakRequestsPerSecond": 1},
                    "budget": {"monthlyUSD": 1},
                    "slo": {"p95LatencyMs": 1000},
                    "prompts": [{"configMapRef": {"name": prompts, "key": "s"}}],
                    "suite": {"cases": [{"name": "c", "messages": [{"role": "user", "content": "x"}]}]},
                },
            }
        )

    first = wl("keys", "prompts")
    assert [(r.kind, r.name, r.where) for r in added(first, None)] == [
        ("Secret", "keys", "spec.models[0].credentials.secretRef"),
        ("ConfigMap", "prompts", "spec.prompts[0].configMapRef"),
    ]
    assert added(first, first) == []
    [new] = added(wl("other-team-keys", "prompts"), first)
    assert refusal("mallory", "team", [new]) == (
        "user mallory may not get Secret team/other-team-keys (spec.models[0].credentials.secretRef): an AIWorkload "
        "may only reference what its author may read, since aigate reads it for the gate run"
    )
    assert refusal("mallory", "team", []) is None


MCP_KIND = next(k for k in GATED_KINDS if k.mcp is not None)


def mcp_server(name: str = "casetools", image: str = "img:1", port: object = 8080) -> dict[str, object]:
    return {"metadata": {"name": name}, "spec": {"image": image, "proxyPort": port}}


@pytest.mark.parametrize(
    ("url", "obj", "fits"),
    [
        ("http://mcp-casetools-proxy.team.svc.cluster.local:8080/mcp", mcp_server(), True),
        ("http://MCP-casetools-proxy.team.svc:8080/mcp", mcp_server(), True),
        ("http://mcp-casetools-proxy:8080", mcp_server(), True),
        ("http://mcp-casetools-proxy.other.svc:8080/mcp", mcp_server(), False),  # another namespace's
        ("http://mcp-casetools-proxy.team.svc/mcp", mcp_server(), False),  # port 80, it serves on 8080
        ("http://mcp-casetools-proxy.team.svc:9090/mcp", mcp_server(port=9090), True),
        ("http://mcp-casetools-proxy.team.svc:8080/mcp", mcp_server(port=True), True),  # not a port: the default
        ("http://mcp-casetools-proxy:99999/mcp", mcp_server(), False),  # no such port: no match, no traceback
        ("not a url", mcp_server(), False),
    ],
)
def test_an_mcp_server_declared_by_url_must_reach_it(url: str, obj: dict[str, object], fits: bool) -> None:
    """Declared under another name, by URL alone: only its in-cluster address (any shorter form of the host) on its
    proxy port fits."""
    workload = {"spec": {"mcpServers": [{"name": "other-name", "url": url}]}}
    problem = mcp_problem(MCP_KIND, obj, "team", workload)
    assert (problem is None) is fits, problem
    if not fits:
        assert problem is not None and "is not one of the MCP servers the workload declares" in problem


def test_only_a_kind_that_serves_mcp_is_matched_and_a_broken_spec_says_none_declared() -> None:
    deployment = BY_KIND[("apps", "Deployment")]
    assert mcp_problem(deployment, mcp_server(), "team", {"spec": {}}) is None
    for spec in ({}, {"mcpServers": "nope"}, {"mcpServers": [1, None]}):
        problem = mcp_problem(MCP_KIND, mcp_server(), "team", {"spec": spec})
        assert problem is not None and problem.endswith(
            "declares in spec.mcpServers (none): declare it there, so that the toolControl gate judges its tools"
        )


def test_images_are_read_from_every_declared_pod_spec_once() -> None:
    lws = next(k for k in GATED_KINDS if k.kind == "LeaderWorkerSet")
    template = {"spec": {"initContainers": [{"image": "init:1"}], "containers": [{"image": "a:1"}, {"name": "x"}]}}
    obj = {"spec": {"leaderWorkerTemplate": {"leaderTemplate": template, "workerTemplate": {"spec": {
        "containers": [{"image": "a:1"}, {"image": "b:2"}]}}}}}  # fmt: skip
    assert images(lws, obj) == ["init:1", "a:1", "b:2"]
    assert images(lws, {"spec": "broken"}) == []
    assert images(MCP_KIND, mcp_server(image="mcp:3")) == ["mcp:3"]
