"""Properties of admission: the rollout webhook's decision over generated worlds (label, workload status, evidence,
enforcement, policy floor, clock) equals a small reference model of the policy written here, independently of
aigate.policy; and AdmissionReviews, well-formed or not, sent to the webhook app (`aigate webhook`'s ASGI front
door, with the real reviewer and index behind it) always get an answer: an AdmissionReview or a plain 4xx, never
a 500 or an exception."""

from __future__ import annotations

import asyncio
import copy
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from admission_support import NAME, NOW, NS, OTHER_PRIV, PUB, World, evidence_cm, sign, status
from aigate.api.crd import openapi_schema
from aigate.kube import names
from aigate.kube.metrics import Metrics
from aigate.kube.names import ACCEPTANCES_WEBHOOK, AIWORKLOADS_WEBHOOK, ROLLOUTS_WEBHOOK
from aigate.policy.governance import PLATFORM_DEFAULT, Floor
from aigate.webhook.admission import current_spec_digest, rollout_decision
from aigate.webhook.server import App
from review_support import Setup, rollout_review
from schema_strategies import JSON, strategy

ENFORCEMENTS = ("enforce", "warn", "audit")
STRICTNESS = {"audit": 0, "warn": 1, "enforce": 2}
EVIDENCE = ("none", "no-key", "good", "other-key", "stale", "failed", "garbage", "unsigned")


@dataclass(frozen=True)
class Scenario:
    label: str | None
    """None: no aigate.dev/workload label; else the name it gives."""
    own: str | None
    """spec.enforcement (None: not set; anything else: as written)."""
    floor: str | None
    decision: str | None
    ready: str | None
    """The Ready condition's status, None for none."""
    evidence: str
    configmaps_present: bool
    later: timedelta
    """How long after the evidence was issued the rollout comes (it holds for 30 days)."""


SCENARIOS = st.builds(
    Scenario,
    label=st.sampled_from([None, "", NAME, "another-workload"]),
    own=st.sampled_from([None, *ENFORCEMENTS, "Enforce", "off"]),
    floor=st.sampled_from([None, *ENFORCEMENTS]),
    decision=st.sampled_from([None, "PASS", "FAIL"]),
    ready=st.sampled_from([None, "True", "False", "Unknown"]),
    evidence=st.sampled_from(EVIDENCE),
    configmaps_present=st.booleans(),
    later=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=60)),
)


def expected(s: Scenario) -> tuple[bool, str]:
    """The policy, from the trust model's words: a labelled rollout is cleared only by signed, unexpired, passing
    evidence for the spec as it is now, with status Ready; otherwise the stricter of the workload's enforcement
    and the floor decides (a spec no one can read asks for nothing looser than enforce)."""
    if s.label is None:
        return True, "allowed"
    if s.label != NAME:
        return False, "denied"
    readable = s.configmaps_present and s.own in (None, *ENFORCEMENTS)
    ready = s.decision == "PASS" and s.ready == "True"
    evidence_holds = s.evidence == "good" and s.later < timedelta(days=30)
    if readable and ready and evidence_holds:
        return True, "allowed"
    own = s.own if s.own in ENFORCEMENTS else "enforce"  # a spec broken elsewhere is judged under its own mode
    mode = max([own, s.floor or "audit"], key=STRICTNESS.__getitem__)
    return mode != "enforce", {"enforce": "denied", "warn": "warned", "audit": "audited"}[mode]


def world_of(s: Scenario) -> tuple[World, dict[str, str]]:
    world = World()
    if s.own is not None:
        world.workload["spec"]["enforcement"] = s.own
    st_ = status(decision=s.decision or "FAIL")
    if s.decision is None:
        st_.pop("decision")
    st_["conditions"] = [c for c in st_["conditions"] if c["type"] != "Ready"]
    if s.ready is not None:
        st_["conditions"].append(
            {"type": "Ready", "status": s.ready, "reason": "Set", "message": "", "lastTransitionTime": NOW.isoformat()}
        )
    world.workload["status"] = st_
    try:
        digest = current_spec_digest(world.workload, world.configmaps)
    except Exception:  # an enforcement the model refuses: the evidence is for the spec as it was
        digest = world.digest
    envelopes: dict[str, Any] = {
        "good": sign(digest),
        "other-key": sign(digest, key=OTHER_PRIV),
        "stale": sign("sha256:" + "1" * 64),
        "failed": sign(digest, decision="FAIL", failed={"cost": "too dear"}),
        "garbage": "{not json",
        "unsigned": {**sign(digest), "signatures": []},
    }
    if s.evidence == "none":
        world.evidence = None
    elif s.evidence == "no-key":
        world.evidence = {"metadata": {"name": names.evidence_configmap(NAME), "namespace": NS}, "data": {}}
    else:
        world.evidence = evidence_cm(envelopes[s.evidence])
    if not s.configmaps_present:
        world.configmaps = {}
    labels = {"app": "fraud"} if s.label is None else {"app": "fraud", names.WORKLOAD_LABEL: s.label}
    world.labels = labels
    if s.label not in (None, NAME):
        world.workload = None  # type: ignore[assignment]
    return world, labels


@given(s=SCENARIOS)
@example(s=Scenario(NAME, "warn", None, "PASS", "True", "good", True, timedelta(days=30)))
@example(s=Scenario(NAME, "audit", "enforce", "PASS", "True", "other-key", True, timedelta(0)))
@example(s=Scenario(NAME, "warn", None, None, None, "none", False, timedelta(0)))
def test_the_rollout_decision_equals_the_reference_model(s: Scenario) -> None:
    world, labels = world_of(s)
    decision = rollout_decision(
        kind="Deployment",
        namespace=NS,
        labels=labels,
        workload=world.workload,
        evidence_cm=world.evidence,
        configmaps=world.configmaps,
        public_key=PUB,
        now=NOW + s.later,
        verify_cache=world.cache,
        enforcement_floor=Floor(s.floor, PLATFORM_DEFAULT) if s.floor else None,  # type: ignore[arg-type]
    )
    assert (decision.allowed, decision.result) == expected(s), decision.message
    if not decision.allowed:
        assert decision.message and "\n" not in decision.message


async def _call(app: App, path: str, body: bytes) -> tuple[int, bytes]:
    """One request through the ASGI app, as Granian hands it over: the status and the body sent."""
    sent: list[dict[str, Any]] = []
    chunks = [body]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": chunks.pop() if chunks else b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "https",
        "http_version": "1.1",
        "path": f"/{path}",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "query_string": b"",
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


SETUP = Setup()
SETUP.feed()
APP = App(SETUP.reviewer, Metrics(), ready=lambda: True, read_timeout=0.5)
WORKLOAD_SCHEMA = openapi_schema()


def _aiworkload_object() -> st.SearchStrategy[Any]:
    spec = strategy(WORKLOAD_SCHEMA["properties"]["spec"], "spec")
    return st.fixed_dictionaries(
        {
            "apiVersion": st.just("aigate.dev/v1alpha1"),
            "kind": st.just("AIWorkload"),
            "metadata": st.fixed_dictionaries({"name": st.just(NAME), "namespace": st.just(NS)}),
            "spec": spec | JSON,
        }
    )


def _request_field() -> st.SearchStrategy[Any]:
    return st.one_of(JSON, st.just(None), st.text(max_size=5), st.integers())


@st.composite
def reviews(draw: st.DrawFn) -> tuple[str, bytes]:
    """(webhook path, body): a review of a labelled rollout or of an AIWorkload, with some of its fields replaced
    by anything, or raw bytes."""
    path = draw(st.sampled_from([ROLLOUTS_WEBHOOK, AIWORKLOADS_WEBHOOK, ACCEPTANCES_WEBHOOK]))
    if draw(st.integers(0, 9)) == 0:
        return path, draw(st.binary(max_size=200))
    if path == ROLLOUTS_WEBHOOK:
        review = rollout_review()
    else:
        obj = draw(_aiworkload_object())
        review = copy.deepcopy(rollout_review())
        review["request"]["resource"] = {"group": "aigate.dev", "version": "v1alpha1", "resource": "aiworkloads"}
        review["request"]["kind"] = {"group": "aigate.dev", "version": "v1alpha1", "kind": "AIWorkload"}
        review["request"]["object"] = obj
        review["request"]["operation"] = draw(st.sampled_from(["CREATE", "UPDATE"]))
        if review["request"]["operation"] == "UPDATE":
            review["request"]["oldObject"] = copy.deepcopy(obj)
    fields = ["uid", "resource", "kind", "namespace", "operation", "userInfo", "object", "oldObject", "dryRun"]
    for name in draw(st.lists(st.sampled_from(fields), unique=True, max_size=3)):
        review["request"][name] = draw(_request_field())
    if draw(st.booleans()):
        obj = review["request"].get("object")
        if isinstance(obj, dict):
            meta = obj.setdefault("metadata", {})
            if isinstance(meta, dict):
                meta[draw(st.sampled_from(["labels", "ownerReferences", "deletionTimestamp", "name"]))] = draw(
                    _request_field()
                )
    for top in draw(st.lists(st.sampled_from(["apiVersion", "kind", "request"]), unique=True, max_size=1)):
        review[top] = draw(_request_field())
    return path, json.dumps(review).encode()


@given(r=reviews())
def test_any_review_is_answered_never_a_500(r: tuple[str, bytes]) -> None:
    path, body = r
    code, answer = asyncio.run(_call(APP, path, body))
    assert code in (200, 400, 413), answer
    doc = json.loads(answer)
    if code == 200:
        response = doc["response"]
        assert isinstance(response["allowed"], bool)
        if not response["allowed"]:
            assert response["status"]["code"] != 500, response  # the reviewer raised: a defect, even if answered
            message = response["status"]["message"]
            assert message and "\n" not in message and "Traceback" not in message
    else:
        assert isinstance(doc["error"], str)


def _aiworkload_review(obj: Any, webhook: str) -> tuple[int, dict[str, Any]]:
    review = rollout_review()
    review["request"]["resource"] = {"group": "aigate.dev", "version": "v1alpha1", "resource": "aiworkloads"}
    review["request"]["object"] = obj
    code, body = asyncio.run(_call(APP, webhook, json.dumps(review).encode()))
    return code, json.loads(body)["response"]


def test_an_aiworkload_whose_spec_is_no_object_is_refused_in_words() -> None:
    """Found by the review property: `spec: 1` (which the mutating webhook sees before the API server checks the
    CRD's schema) raised AttributeError in the reviewer, answered as 'aigate admission webhook internal error'."""
    obj = {"apiVersion": "aigate.dev/v1alpha1", "kind": "AIWorkload", "metadata": {"name": NAME}, "spec": 1}
    for webhook in (ACCEPTANCES_WEBHOOK, AIWORKLOADS_WEBHOOK):
        code, response = _aiworkload_review(obj, webhook)
        assert (code, response["allowed"]) == (200, False)
        message = "AIWorkload spec must be an object (request.object.spec is int)"
        assert response["status"] == {"code": 400, "message": message}
    code, response = _aiworkload_review({**obj, "spec": {}, "metadata": ["x"]}, AIWORKLOADS_WEBHOOK)
    assert response["status"]["message"] == "AIWorkload metadata must be an object (request.object.metadata is list)"


def test_a_rollout_whose_labels_are_no_map_is_refused_in_words() -> None:
    """Found by the review property: `metadata.labels: true` raised ValueError in dict(), answered as 'aigate
    admission webhook internal error'."""
    for labels, message in [
        (True, "metadata.labels must be a map (got bool)"),
        ([["a", "b", "c"]], "metadata.labels must be a map (got list)"),
        ({"aigate.dev/workload": 7}, "metadata.labels['aigate.dev/workload'] must be a string"),
    ]:
        review = rollout_review()
        review["request"]["object"]["metadata"]["labels"] = labels
        code, body = asyncio.run(_call(APP, ROLLOUTS_WEBHOOK, json.dumps(review).encode()))
        response = json.loads(body)["response"]
        assert (code, response["allowed"], response["status"]) == (200, False, {"code": 400, "message": message})
