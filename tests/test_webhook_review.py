"""`aigate webhook`'s index and reviewer without a cluster: watch events in, AdmissionReview answers out, decided by
the same policy functions (and in the same words) as the operator's webhooks were, with no parsing or hashing left
for the request path."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from admission_support import NAME, NS, World, evidence_cm, sign
from aigate.kube import names
from aigate.kube.names import ACCEPTANCES_WEBHOOK, AIWORKLOADS_WEBHOOK, ROLLOUTS_WEBHOOK, WORKLOADREFS_WEBHOOK
from aigate.policy.governance import PlatformDefault
from aigate.policy.kinds import GATED_KINDS, GatedKind
from aigate.webhook.admission import current_spec_digest
from aigate.webhook.index import Watch, Watcher
from aigate.webhook.server import App
from gatedexamples import CUSTOM, MCP_IMAGE, gated_object
from review_support import (
    OPERATOR_NS,
    UID,
    Fetches,
    Setup,
    review,
    rollout_review,
    trusted_evidence,
    versioned,
)
from webhook_tls import serving, serving_certs


@pytest.fixture
def setup() -> Setup:
    s = Setup()
    s.feed()
    return s


async def test_passing_evidence_admits_from_what_the_index_warmed(setup: Setup) -> None:
    idx = setup.index
    # the watch threads already computed the digest and checked the signature: the review only looks up
    assert idx.verify_cache.fresh(idx.workload(NS, NAME) or {}, idx.configmaps_of(NS))
    misses = idx.verify_cache.misses
    r = rollout_review()
    answer = await setup.reviewer.review(ROLLOUTS_WEBHOOK, r)
    assert answer == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": r["request"]["uid"], "allowed": True},
    }
    assert idx.verify_cache.misses == misses, "no signature check in the request path"


async def test_the_refusal_is_the_decisions_message_with_a_403(setup: Setup) -> None:
    r = rollout_review("nope")
    answer = await setup.reviewer.review(ROLLOUTS_WEBHOOK, r)
    assert answer["response"] == {
        "uid": r["request"]["uid"],
        "allowed": False,
        "status": {
            "code": 403,
            "message": f"AIWorkload {NS}/nope not found (named by the {names.WORKLOAD_LABEL} label of this Deployment)",
        },
    }


async def test_only_the_operator_namespace_copy_of_the_evidence_counts(setup: Setup) -> None:
    setup.index.apply_evidence("DELETED", trusted_evidence(setup.world))
    answer = await setup.reviewer.review(ROLLOUTS_WEBHOOK, rollout_review())
    assert answer["response"]["allowed"] is False
    assert f"{OPERATOR_NS}/{names.trusted_evidence(UID)}" in answer["response"]["status"]["message"]


RS_OWNER = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u"}
DEPLOYMENT_OWNER = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d", "uid": "u"}


def stale(setup: Setup, enforcement: str) -> None:
    """The workload asks for `enforcement` and its spec changed since the evidence was signed."""
    wl = copy.deepcopy(setup.world.workload)
    wl["spec"]["enforcement"] = enforcement
    wl["spec"]["owner"] = "another-team"  # another spec: the evidence is stale
    wl["metadata"]["resourceVersion"] = "11"
    setup.index.apply_workload("MODIFIED", wl)


def govern(setup: Setup, **spec: Any) -> None:
    """An admin's AIGatePolicy selecting the namespace by label."""
    setup.index.apply_namespace("ADDED", {"metadata": {"name": NS, "labels": {"tier": "adopting"}}})
    policy = {"metadata": {"name": "adopting"}, "spec": {"namespaceSelector": {"matchLabels": {"tier": "adopting"}}}}
    policy["spec"].update(spec)
    setup.index.apply_policy("ADDED", policy)


async def test_warn_admits_with_the_refusal_as_a_warning_under_a_policy_that_allows_it(setup: Setup) -> None:
    govern(setup, enforcement="warn")  # a softer start, which only an admin writes
    stale(setup, "warn")
    answer = await setup.reviewer.review(ROLLOUTS_WEBHOOK, rollout_review())
    assert answer["response"]["allowed"] is True
    [warning] = answer["response"]["warnings"]
    assert warning.startswith(f"AIWorkload {NS}/{NAME} is not cleared for rollout: ")


@pytest.mark.parametrize("own", ["audit", "warn"])
async def test_without_a_policy_a_workload_cannot_loosen_its_own_gate(setup: Setup, own: str) -> None:
    """No AIGatePolicy selects the namespace: the platform default's floor `enforce` refuses, and says so."""
    stale(setup, own)
    answer = await setup.reviewer.review(ROLLOUTS_WEBHOOK, rollout_review())
    response = answer["response"]
    assert response["allowed"] is False and "warnings" not in response
    message = response["status"]["message"]
    assert message.startswith(f"AIWorkload {NS}/{NAME} is not cleared for rollout: ")
    assert message.endswith(f" (spec.enforcement {own} is raised to enforce, the floor set by the platform default)")
    counted = {"result": "denied", "kind": "Deployment", "enforcement": "enforce"}
    assert setup.metrics.registry.get_sample_value("aigate_admission_decisions_total", counted) == 1


async def test_the_platform_default_comes_from_the_settings() -> None:
    """An operator set to a softer default (AIGATE_DEFAULT_ENFORCEMENT=audit) lets the workload's own mode rule."""
    s = Setup(default=PlatformDefault("audit", "720h"))
    s.feed()
    stale(s, "audit")
    answer = await s.reviewer.review(ROLLOUTS_WEBHOOK, rollout_review())
    assert answer["response"]["allowed"] is True and "warnings" not in answer["response"]


async def test_unlabelled_and_controller_made_objects_are_not_judged(setup: Setup) -> None:
    setup.is_ready = False  # not even while indexing
    plain = review("apps", "deployments", {"metadata": {"name": "d", "namespace": NS, "labels": {"app": "x"}}})
    assert (await setup.reviewer.review(ROLLOUTS_WEBHOOK, plain))["response"]["allowed"] is True
    for kind, resource, owner in (("Pod", "pods", RS_OWNER), ("ReplicaSet", "replicasets", DEPLOYMENT_OWNER)):
        owned = rollout_review("nope", kind=kind, ownerReferences=[owner])
        owned["request"]["resource"] = {"group": "" if kind == "Pod" else "apps", "version": "v1", "resource": resource}
        assert (await setup.reviewer.review(ROLLOUTS_WEBHOOK, owned))["response"]["allowed"] is True, kind


@pytest.mark.parametrize(
    ("group", "resource", "kind", "owners"),
    [
        ("apps", "replicasets", "ReplicaSet", []),  # written instead of the Deployment
        ("", "replicationcontrollers", "ReplicationController", []),
        ("", "pods", "Pod", [{"apiVersion": "v1", "kind": "ConfigMap", "name": "decoy", "uid": "u"}]),
        ("apps", "replicasets", "ReplicaSet", [{"apiVersion": "example.com/v1", "kind": "Deployment", "name": "d",
                                               "uid": "u"}]),
    ],
    ids=["bare-replicaset", "bare-replicationcontroller", "pod-owned-by-a-configmap", "owner-of-another-group"],
)  # fmt: skip
async def test_every_labelled_kind_that_makes_pods_is_judged(
    setup: Setup, group: str, resource: str, kind: str, owners: list[dict[str, str]]
) -> None:
    """A failing workload's pods cannot be had by writing what the Deployment would have written."""
    stale(setup, "enforce")
    r = rollout_review(kind=kind, ownerReferences=owners)
    r["request"]["resource"] = {"group": group, "version": "v1", "resource": resource}
    response = (await setup.reviewer.review(ROLLOUTS_WEBHOOK, r))["response"]
    assert response["allowed"] is False
    assert response["status"]["message"].startswith(f"AIWorkload {NS}/{NAME} is not cleared for rollout: ")


async def test_not_ready_is_a_503_to_retry() -> None:
    s = Setup(ready=False)
    answer = await s.reviewer.review(ROLLOUTS_WEBHOOK, rollout_review())
    assert answer["response"]["status"] == {
        "code": 503,
        "message": "aigate is starting: its index of workloads is not complete yet; retry",
    }


async def test_an_unknown_resource_is_refused_in_a_review(setup: Setup) -> None:
    r = review("", "configmaps", {"metadata": {"name": "c"}})
    answer = await setup.reviewer.review(ROLLOUTS_WEBHOOK, r)
    assert answer["response"]["status"] == {
        "code": 400,
        "message": "aigate has no admission handler for core/v1/configmaps",
    }


def test_the_index_keeps_only_referenced_configmaps(setup: Setup) -> None:
    other = {"metadata": {"name": "unrelated", "namespace": NS, "uid": "x", "resourceVersion": "1"}, "data": {"a": "b"}}
    setup.index.apply_configmap("ADDED", other)
    assert set(setup.index.configmaps_of(NS)) == set(setup.world.configmaps)
    # the workload stops referencing its ConfigMaps: their data goes
    setup.index.apply_workload("DELETED", setup.world.workload)
    assert not setup.index.configmaps_of(NS)


def test_a_configmap_listed_before_its_workload_is_fetched_once() -> None:
    world = versioned(World())
    held = {(NS, n): cm for n, cm in world.configmaps.items()}
    s = Setup(fetch=Fetches(held))
    s.index.configmaps_listed()  # the ConfigMap watch listed first and dropped them: nobody referenced them yet
    s.index.apply_workload("ADDED", s.world.workload)
    assert sorted(s.fetch.asked) == sorted(held)
    assert set(s.index.configmaps_of(NS)) == set(world.configmaps)
    s.index.apply_workload("MODIFIED", s.world.workload)  # a status update: nothing to fetch again
    assert len(s.fetch.asked) == len(held)


def test_a_missing_configmap_is_asked_for_once_until_the_watch_shows_it() -> None:
    s = Setup(fetch=Fetches())
    s.index.configmaps_listed()
    s.index.apply_workload("ADDED", s.world.workload)
    asked = len(s.fetch.asked)
    assert asked == len(s.world.configmaps)
    s.index.apply_workload("MODIFIED", s.world.workload)
    assert len(s.fetch.asked) == asked


async def test_a_broken_spec_is_parsed_once_per_resource_version(setup: Setup) -> None:
    wl = copy.deepcopy(setup.world.workload)
    wl["spec"]["suite"] = {"configMapRef": {"name": "does-not-exist", "key": "suite.yaml"}}
    wl["metadata"]["resourceVersion"] = "12"
    setup.index.apply_workload("MODIFIED", wl)
    hits = setup.index.verify_cache.digest_hits
    for _ in range(3):
        answer = await setup.reviewer.review(ROLLOUTS_WEBHOOK, rollout_review())
        assert answer["response"]["allowed"] is False
        assert "spec cannot be resolved" in answer["response"]["status"]["message"]
    assert setup.index.verify_cache.digest_hits == hits + 3


def workload_review(spec_over: dict[str, Any], user: str = "alice", **request: Any) -> dict[str, Any]:
    world = World()
    wl = world.workload
    wl["spec"].update(spec_over)
    userinfo = {"username": user, "groups": ["aigate:risk-acceptors"] if user == "alice" else []}
    return review("aigate.dev", "aiworkloads", wl, userInfo=userinfo, **request)


ACCEPTANCE = {"gate": "providerDependency", "reason": "single provider this quarter", "expires": "2027-03-01T00:00:00Z"}


async def test_the_mutation_records_the_accepting_user_as_a_json_patch(setup: Setup) -> None:
    r = workload_review({"riskAcceptances": [dict(ACCEPTANCE)]})
    answer = await setup.reviewer.review(ACCEPTANCES_WEBHOOK, r)
    response = answer["response"]
    assert response["allowed"] is True and response["patchType"] == "JSONPatch"
    [op] = json.loads(base64.b64decode(response["patch"]))
    assert op["op"] == "replace" and op["path"] == "/spec/riskAcceptances"
    assert [a["acceptedBy"] for a in op["value"]] == ["alice"]
    # bound to the spec as it will be stored, its ConfigMaps read from the index
    assert op["value"][0]["specDigest"].startswith("sha256:")


async def test_the_validation_refuses_an_acceptor_outside_the_groups(setup: Setup) -> None:
    r = workload_review({"riskAcceptances": [dict(ACCEPTANCE)]}, user="bob")
    answer = await setup.reviewer.review(AIWORKLOADS_WEBHOOK, r)
    assert answer["response"]["allowed"] is False
    assert answer["response"]["status"]["message"].startswith("user bob may not accept risks")


async def test_a_looser_enforcement_is_stored_with_a_warning_that_it_does_not_apply(setup: Setup) -> None:
    """The team may write `enforcement: audit` (a workload is the team's); the webhook says at once that the
    platform default's floor applies instead."""
    answer = await setup.reviewer.review(AIWORKLOADS_WEBHOOK, workload_review({"enforcement": "audit"}))
    assert answer["response"]["allowed"] is True
    assert answer["response"]["warnings"] == [
        "spec.enforcement audit is raised to enforce, the floor set by the platform default: "
        "its rollouts are judged under enforce"
    ]
    stricter = await setup.reviewer.review(AIWORKLOADS_WEBHOOK, workload_review({"enforcement": "enforce"}))
    assert stricter["response"] == {"uid": stricter["response"]["uid"], "allowed": True}


async def test_the_platform_default_refuses_a_longer_validity(setup: Setup) -> None:
    r = workload_review({"evidence": {"validFor": "1000h"}})
    answer = await setup.reviewer.review(AIWORKLOADS_WEBHOOK, r)
    assert answer["response"]["allowed"] is False
    assert answer["response"]["status"]["message"] == (
        "refused by the platform default: "
        "spec.evidence.validFor 1000h is longer than 720h, the most the platform default allows"
    )


async def test_a_reference_the_user_may_not_read_is_refused(setup: Setup) -> None:
    r = workload_review({"suite": {"configMapRef": {"name": "forbidden", "key": "suite.yaml"}}})
    answer = await setup.reviewer.review(AIWORKLOADS_WEBHOOK, r)
    assert answer["response"]["allowed"] is False
    assert "forbidden" in answer["response"]["status"]["message"]


def test_a_relist_after_the_watch_expired_deletes_what_it_no_longer_finds() -> None:
    applied: list[tuple[str, str]] = []
    watch = Watch(
        "configmaps", "/api/v1/configmaps", lambda event, body: applied.append((event, body["metadata"]["name"]))
    )
    watcher = Watcher(None, [watch])  # type: ignore[arg-type]

    def cm(name: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": NS, "uid": name, "resourceVersion": "1"}, "data": {}}

    listings = iter([([cm("a"), cm("b")], "1"), ([cm("b")], "5")])
    watcher._list = lambda w: next(listings)  # type: ignore[method-assign]
    streams = iter(
        [
            [{"type": "ADDED", "object": cm("c")}, {"type": "ERROR", "object": {"code": 410}}],  # expired: relist
            [],
        ]
    )

    def events(w: Watch, rv: str) -> Any:
        found = next(streams)
        if not found:
            watcher.stop()
        yield from found

    watcher._events = events  # type: ignore[method-assign]
    watcher._run(watch)
    # "a" and "c" went while the watch was expired: the second listing does not have them
    assert applied[:3] == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]
    assert sorted(applied[3:5]) == [("DELETED", "a"), ("DELETED", "c")]
    assert applied[5:] == [("ADDED", "b")]
    assert watcher.ready


def test_the_warmer_hashes_a_rewritten_configmap_once_per_turn_and_never_holds_up_a_watch() -> None:
    """A tenant rewriting a referenced ConfigMap in a loop: the watch thread only copies each version, and the warmer
    thread digests the workload from its latest state, once per turn however many versions arrived meanwhile."""
    import threading

    s = Setup()
    s.feed()
    idx = s.index
    busy, release, calls = threading.Event(), threading.Event(), []
    warm_now = idx.warm_now

    def held_warm_now(key: Any) -> None:
        calls.append(key)
        if len(calls) == 1:
            busy.set()
            release.wait(10)
        warm_now(key)

    idx.warm_now = held_warm_now  # type: ignore[method-assign]
    idx.start_warmer()
    name, cm = next(iter(s.world.configmaps.items()))
    key = next(k for k in cm["data"])

    def rewrite(version: int) -> dict[str, Any]:
        new = copy.deepcopy(cm)
        new["metadata"]["resourceVersion"] = str(100 + version)
        new["data"][key] = cm["data"][key] + f"\n# rewrite {version}\n"
        return new

    idx.apply_configmap("MODIFIED", rewrite(0))
    assert busy.wait(5), "the warmer took the first version"
    watch = threading.Thread(target=lambda: [idx.apply_configmap("MODIFIED", rewrite(v)) for v in range(1, 51)])
    watch.start()
    watch.join(5)
    assert not watch.is_alive(), "the watch thread waited for the warmer"
    assert idx.configmaps_of(NS)[name]["metadata"]["resourceVersion"] == "150"
    release.set()
    deadline = threading.Event()
    for _ in range(100):
        if idx.verify_cache.fresh(idx.workload(NS, NAME) or {}, idx.configmaps_of(NS)):
            break
        deadline.wait(0.05)
    assert idx.verify_cache.fresh(idx.workload(NS, NAME) or {}, idx.configmaps_of(NS)), "the latest version warmed"
    assert len(calls) == 2, f"51 versions, {len(calls)} digests: one for the first, one for the latest"


# ---- the custom gated kinds (policy/kinds.py), each judged at its top-level object like a Deployment ---------------


def kind_review(kind: GatedKind, obj: dict[str, Any]) -> dict[str, Any]:
    r = review(kind.group, kind.resource, obj)
    r["request"]["resource"]["version"] = kind.version
    r["request"]["kind"] = {"group": kind.group, "version": kind.version, "kind": kind.kind}
    return r


def declare_mcp(setup: Setup, *servers: dict[str, Any]) -> None:
    """The workload declares `servers` in spec.mcpServers, with evidence signed for that spec (so it passes)."""
    world = setup.world
    world.workload["spec"]["mcpServers"] = list(servers)
    world.digest = current_spec_digest(world.workload, world.configmaps)
    world.evidence = evidence_cm(sign(world.digest))
    world.workload["metadata"]["resourceVersion"] = "12"
    setup.index.apply_workload("MODIFIED", world.workload)
    setup.index.apply_evidence("MODIFIED", {**trusted_evidence(world), "metadata": {
        **trusted_evidence(world)["metadata"], "resourceVersion": "31"}})  # fmt: skip


MCP = next(k for k in CUSTOM if k.mcp is not None)
SERVED = f"http://mcp-casetools-proxy.{NS}.svc.cluster.local:8080"


@pytest.mark.parametrize("kind", CUSTOM, ids=lambda k: k.kind)
async def test_each_custom_kind_is_judged_like_a_deployment(setup: Setup, kind: GatedKind) -> None:
    """Labelled for a passing workload: admitted; for a workload whose spec changed since its evidence: refused in
    the usual words, and counted under its kind; unlabelled: let through, not even looked at while indexing."""
    if kind.mcp is not None:
        declare_mcp(setup, {"name": "casetools", "url": f"{SERVED}/mcp", "image": MCP_IMAGE})
    admitted = await setup.reviewer.review(
        ROLLOUTS_WEBHOOK, kind_review(kind, gated_object(kind, NS, "casetools", NAME))
    )
    assert admitted["response"]["allowed"] is True, admitted["response"]
    assert "warnings" not in admitted["response"]

    stale(setup, "enforce")
    r = kind_review(kind, gated_object(kind, NS, "casetools", NAME))
    response = (await setup.reviewer.review(ROLLOUTS_WEBHOOK, r))["response"]
    assert response["allowed"] is False and response["status"]["code"] == 403
    assert response["status"]["message"].startswith(f"AIWorkload {NS}/{NAME} is not cleared for rollout: ")
    counted = {"result": "denied", "kind": kind.kind, "enforcement": "enforce"}
    assert setup.metrics.registry.get_sample_value("aigate_admission_decisions_total", counted) == 1

    setup.is_ready = False
    unlabelled = kind_review(kind, gated_object(kind, NS, "casetools", None))
    assert (await setup.reviewer.review(ROLLOUTS_WEBHOOK, unlabelled))["response"]["allowed"] is True
    missing = await setup.reviewer.review(ROLLOUTS_WEBHOOK, kind_review(kind, gated_object(kind, NS, "x", "nope")))
    assert missing["response"]["status"]["code"] == 503, "labelled: judged, so it waits for the index"


@pytest.mark.parametrize(
    ("made", "owner_kind"),
    [(made, k) for k in CUSTOM for made in sorted(k.makes)],
    ids=lambda v: v if isinstance(v, str) else v.kind,
)
async def test_what_a_custom_kind_makes_is_let_through_on_its_owner(
    setup: Setup, made: str, owner_kind: GatedKind
) -> None:
    """A labelled Deployment a KServe InferenceService made, a StatefulSet of a LeaderWorkerSet...: its owner was
    judged. The same object owned by a kind that does not make it is judged (and refused: no such workload)."""
    [target] = [k for k in GATED_KINDS if k.kind == made and k.value is None] or [
        k for k in GATED_KINDS if k.kind == made
    ]
    owner = {"apiVersion": f"{owner_kind.group}/{owner_kind.version}", "kind": owner_kind.kind, "name": "o", "uid": "u"}
    body = {"apiVersion": f"{target.group}/{target.version}".lstrip("/"), "kind": made,
            "metadata": {"name": "m", "namespace": NS, "labels": {names.WORKLOAD_LABEL: "nope"},
                         "ownerReferences": [owner]}}  # fmt: skip
    assert (await setup.reviewer.review(ROLLOUTS_WEBHOOK, kind_review(target, body)))["response"]["allowed"] is True
    body["metadata"]["ownerReferences"] = [{**owner, "kind": "ConfigMap", "apiVersion": "v1"}]
    assert (await setup.reviewer.review(ROLLOUTS_WEBHOOK, kind_review(target, body)))["response"]["allowed"] is False


async def test_an_mcpserver_the_workload_does_not_declare_is_refused_naming_both(setup: Setup) -> None:
    declare_mcp(setup, {"name": "casetools", "url": f"{SERVED}/mcp", "image": MCP_IMAGE})

    async def message(obj: dict[str, Any]) -> str:
        response = (await setup.reviewer.review(ROLLOUTS_WEBHOOK, kind_review(MCP, obj)))["response"]
        assert response["allowed"] is False
        text: str = response["status"]["message"]
        assert text.startswith(f"AIWorkload {NS}/{NAME} is not cleared for rollout: MCPServer {NS}/")
        return text

    other = await message(gated_object(MCP, NS, "shell-tools", NAME, image="ghcr.io/example/shell:6"))
    assert f"MCPServer {NS}/shell-tools (image ghcr.io/example/shell:6, served at " in other
    assert f"is not one of the MCP servers the workload declares in spec.mcpServers (casetools ({SERVED}/mcp))" in other
    swapped = await message(gated_object(MCP, NS, "casetools", NAME, image="ghcr.io/example/casetools-mcp:6.6.6"))
    assert (
        f"runs image ghcr.io/example/casetools-mcp:6.6.6, not {MCP_IMAGE}, the image the workload declares" in swapped
    )
    # declared by URL alone: the URL must reach this server (its Service, on its proxy port)
    declare_mcp(setup, {"name": "casetools", "url": "https://tools.example.com/mcp"})
    elsewhere = await message(gated_object(MCP, NS, "casetools", NAME))
    assert "is not what the workload declares as MCP server casetools (https://tools.example.com/mcp)" in elsewhere
    assert f"declare url {SERVED}/mcp or the server's image" in elsewhere
    # under enforcement warn (a policy allowing it), the mismatch is a warning like any refusal
    govern(setup, enforcement="warn")
    wl = copy.deepcopy(setup.world.workload)
    wl["spec"]["enforcement"], wl["metadata"]["resourceVersion"] = "warn", "13"
    setup.index.apply_workload("MODIFIED", wl)
    warned = await setup.reviewer.review(ROLLOUTS_WEBHOOK, kind_review(MCP, gated_object(MCP, NS, "casetools", NAME)))
    assert warned["response"]["allowed"] is True
    assert "is not what the workload declares as MCP server casetools" in warned["response"]["warnings"][0]


@pytest.mark.parametrize(
    "url",
    [f"{SERVED}/mcp", f"http://mcp-casetools-proxy.{NS}:8080/mcp", "http://mcp-casetools-proxy:8080/sse"],
)
async def test_an_mcpserver_declared_by_its_url_is_admitted(setup: Setup, url: str) -> None:
    declare_mcp(setup, {"name": "tools-by-url", "url": url})
    r = kind_review(MCP, gated_object(MCP, NS, "casetools", NAME, image="anything:1"))
    assert (await setup.reviewer.review(ROLLOUTS_WEBHOOK, r))["response"]["allowed"] is True
    moved = gated_object(MCP, NS, "casetools", NAME)
    moved["spec"]["proxyPort"] = 9090  # another port: the declared URL does not reach it
    assert (await setup.reviewer.review(ROLLOUTS_WEBHOOK, kind_review(MCP, moved)))["response"]["allowed"] is False


# ---- an Argo Rollout's spec.workloadRef: judged by the label of the Deployment it names too ------------------------

ROLLOUT = next(k for k in GATED_KINDS if k.workload_ref is not None)
FROM_REF = (
    f"(the {names.WORKLOAD_LABEL} label came from Deployment {NS}/fraud-app, which this Rollout's spec.workloadRef "
    "names)"
)


class Unreadable(Fetches):
    """The API failing the Deployment GET (a timeout, a 500, RBAC): the review must not admit unjudged."""

    def __call__(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.asked.append((namespace, name))
        raise TimeoutError("read timed out after 2.5s")


class Forbidden(Fetches):
    """The API server refusing the GET (RBAC), as the Kubernetes client raises it."""

    def __call__(self, namespace: str, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        e = ApiException(status=403, reason="Forbidden")
        e.headers, e.body = {"Audit-Id": "0a1b"}, '{"kind":"Status","message":"deployments is forbidden"}'
        raise e


def deployment(label: str | None) -> dict[str, Any]:
    labels = {"app": "fraud"} | ({names.WORKLOAD_LABEL: label} if label is not None else {})
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "fraud-app", "namespace": NS,
            "labels": labels}, "spec": {"replicas": 0}}  # fmt: skip


def ref_rollout(label: str | None = None, ref: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Rollout with no template, running the Deployment's through spec.workloadRef."""
    meta: dict[str, Any] = {"name": "fraud-rollout", "namespace": NS}
    if label is not None:
        meta["labels"] = {names.WORKLOAD_LABEL: label}
    ref = ref if ref is not None else {"apiVersion": "apps/v1", "kind": "Deployment", "name": "fraud-app"}
    spec = {"replicas": 2, "workloadRef": ref, "strategy": {"canary": {"steps": [{"setWeight": 20}]}}}
    obj = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": meta, "spec": spec}
    return kind_review(ROLLOUT, obj)


async def answer_of(setup: Setup, r: dict[str, Any], webhook: str = WORKLOADREFS_WEBHOOK) -> dict[str, Any]:
    response: dict[str, Any] = (await setup.reviewer.review(webhook, r))["response"]
    return response


async def test_an_unlabelled_rollout_is_judged_by_the_label_of_the_deployment_it_names(setup: Setup) -> None:
    """The bypass issue 25 closes: label only the Deployment, let an unlabelled Rollout run its template."""
    setup.deployments.held[(NS, "fraud-app")] = deployment(NAME)
    admitted = await answer_of(setup, ref_rollout())
    assert admitted == {"uid": admitted["uid"], "allowed": True}
    assert setup.deployments.asked == [(NS, "fraud-app")], "one GET, by name, in the Rollout's namespace"

    stale(setup, "enforce")
    refused = await answer_of(setup, ref_rollout())
    assert refused["allowed"] is False and refused["status"]["code"] == 403
    message = refused["status"]["message"]
    # the same decision and words as for the labelled Deployment itself, and where the label came from
    own = (await setup.reviewer.review(ROLLOUTS_WEBHOOK, rollout_review()))["response"]["status"]["message"]
    assert message == f"{own} {FROM_REF}"
    assert own.startswith(f"AIWorkload {NS}/{NAME} is not cleared for rollout: ")
    counted = {"result": "denied", "kind": "Rollout", "enforcement": "enforce"}
    assert setup.metrics.registry.get_sample_value("aigate_admission_decisions_total", counted) == 1


async def test_under_warn_the_warning_says_where_the_label_came_from(setup: Setup) -> None:
    govern(setup, enforcement="warn")
    stale(setup, "warn")
    setup.deployments.held[(NS, "fraud-app")] = deployment(NAME)
    warned = await answer_of(setup, ref_rollout())
    assert warned["allowed"] is True
    [warning] = warned["warnings"]
    assert warning.startswith(f"AIWorkload {NS}/{NAME} is not cleared for rollout: ") and warning.endswith(FROM_REF)


async def test_a_deployment_labelled_for_no_workload_refuses_the_rollout_naming_it(setup: Setup) -> None:
    setup.deployments.held[(NS, "fraud-app")] = deployment("nope")
    refused = await answer_of(setup, ref_rollout())
    assert refused["status"] == {
        "code": 403,
        "message": f"AIWorkload {NS}/nope not found (named by the {names.WORKLOAD_LABEL} label of Deployment "
        f"{NS}/fraud-app, which this Rollout's spec.workloadRef names)",
    }


@pytest.mark.parametrize("held", [None, deployment(None)], ids=["absent", "unlabelled"])
async def test_a_deployment_absent_or_unlabelled_admits_the_rollout_even_while_indexing(
    setup: Setup, held: dict[str, Any] | None
) -> None:
    """Nothing to judge it by: the Deployment is judged itself when it is written with the label."""
    stale(setup, "enforce")
    setup.is_ready = False
    if held is not None:
        setup.deployments.held[(NS, "fraud-app")] = held
    admitted = await answer_of(setup, ref_rollout())
    assert admitted == {"uid": admitted["uid"], "allowed": True}
    assert setup.deployments.asked == [(NS, "fraud-app")]


async def test_a_deployment_that_cannot_be_read_is_a_503_to_retry(setup: Setup) -> None:
    setup.index.fetch_deployment = unreadable = Unreadable()
    for r, webhook in ((ref_rollout(), WORKLOADREFS_WEBHOOK), (ref_rollout(NAME), ROLLOUTS_WEBHOOK)):
        refused = await answer_of(setup, r, webhook)
        assert refused["allowed"] is False
        assert refused["status"] == {
            "code": 503,
            "message": f"aigate cannot decide now: Deployment {NS}/fraud-app, which this Rollout's spec.workloadRef "
            "names, could not be read (read timed out after 2.5s); retry",
        }
    assert len(unreadable.asked) == 2
    setup.index.fetch_deployment = Forbidden()  # the API's refusal: its status line, not its headers and body
    forbidden = await answer_of(setup, ref_rollout())
    assert forbidden["status"]["code"] == 503
    assert "could not be read (HTTP 403 Forbidden); retry" in forbidden["status"]["message"]
    assert "Audit-Id" not in forbidden["status"]["message"]
    setup.index.fetch_deployment = None  # no API client at all: the same, never admitted unjudged
    assert (await answer_of(setup, ref_rollout()))["status"]["code"] == 503


@pytest.mark.parametrize(
    "ref",
    [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "fraud-app"},
        {"apiVersion": "v1", "kind": "PodTemplate", "name": "fraud-app"},
        {"apiVersion": "apps/v1beta1", "kind": "Deployment", "name": "fraud-app"},
        {"apiVersion": "apps/v1", "kind": "Deployment"},
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "../../../api/v1/namespaces/fraud/secrets/keys"},
    ],
    ids=["replicaset", "podtemplate", "another-version", "no-name", "not-a-name"],
)
async def test_only_an_apps_v1_deployment_is_read(setup: Setup, ref: dict[str, Any]) -> None:
    """What the webhook may read (its RBAC: get deployments): a workloadRef naming anything else is not followed
    (docs/gated-kinds.md says what that leaves)."""
    setup.deployments.held[(NS, "fraud-app")] = deployment("nope")
    admitted = await answer_of(setup, ref_rollout(ref=ref))
    assert admitted["allowed"] is True and setup.deployments.asked == []


async def test_a_labelled_rollout_must_satisfy_its_own_label_and_its_deployments(setup: Setup) -> None:
    """Both labelled for one workload: judged once, in the usual words. For two: both must pass."""
    setup.deployments.held[(NS, "fraud-app")] = deployment(NAME)
    same = await answer_of(setup, ref_rollout(NAME), ROLLOUTS_WEBHOOK)
    assert same == {"uid": same["uid"], "allowed": True}
    setup.deployments.held[(NS, "fraud-app")] = deployment("nope")
    other = await answer_of(setup, ref_rollout(NAME), ROLLOUTS_WEBHOOK)
    assert other["status"]["message"].startswith(f"AIWorkload {NS}/nope not found (named by the ")
    assert other["status"]["message"].endswith(f"label of Deployment {NS}/fraud-app, which this Rollout's "
                                               "spec.workloadRef names)")  # fmt: skip
    # its own workload failing: refused in its own words, whatever the Deployment's says
    stale(setup, "enforce")
    setup.deployments.held[(NS, "fraud-app")] = deployment(None)
    own = await answer_of(setup, ref_rollout(NAME), ROLLOUTS_WEBHOOK)
    assert own["status"]["message"].startswith(f"AIWorkload {NS}/{NAME} is not cleared for rollout: ")
    assert "workloadRef" not in own["status"]["message"]


async def test_the_workload_ref_webhook_judges_rollouts_only(setup: Setup) -> None:
    answer = await answer_of(setup, rollout_review(), WORKLOADREFS_WEBHOOK)
    assert answer["status"] == {"code": 400, "message": "aigate has no admission handler for apps/v1/deployments"}
    # a Rollout with a template of its own and no label: not aigate's (its matchCondition does not even send it)
    r = ref_rollout()
    del r["request"]["object"]["spec"]["workloadRef"]
    assert (await answer_of(setup, r))["allowed"] is True and setup.deployments.asked == []


async def test_the_workload_ref_webhook_is_served_at_its_path(setup: Setup, tmp_path: Path) -> None:
    """Through the real front door (App under Granian, TLS on loopback) to the real reviewer: the path the webhook
    configurations register answers, and refuses the bypass."""
    setup.deployments.held[(NS, "fraud-app")] = deployment(NAME)
    stale(setup, "enforce")
    certs = serving_certs(tmp_path)
    app = App(setup.reviewer, setup.metrics, ready=lambda: True)
    r = ref_rollout()
    async with (
        serving(app, certs.cert, certs.key) as base,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.post(f"{base}/{WORKLOADREFS_WEBHOOK}", json=r, ssl=certs.client_context()) as resp,
    ):
        assert resp.status == 200
        answer = await resp.json()
    assert answer["response"]["uid"] == r["request"]["uid"] and answer["response"]["allowed"] is False
    assert answer["response"]["status"]["message"].endswith(FROM_REF)
