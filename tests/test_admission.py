"""Admission decisions over plain dicts, with real signed envelopes bound to the spec digest of a real example."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from admission_support import EXAMPLE, NAME, NOW, NS, OTHER_PRIV, PUB, World, documents, evidence_cm, sign, status
from aigate.api.digest import spec_digest
from aigate.api.load import load_and_resolve
from aigate.kube import names
from aigate.policy.acceptance import acceptance_patch, acceptance_validation
from aigate.times import rfc3339
from aigate.webhook.admission import VerifyCache, current_spec_digest, rollout_decision


@pytest.fixture
def world() -> World:
    return World()


DENIED = f"AIWorkload {NS}/{NAME} is not cleared for rollout: "


def test_digest_is_the_cli_digest_of_the_same_file(world: World) -> None:
    assert world.digest == spec_digest(load_and_resolve(EXAMPLE))


def test_allowed_with_passing_signed_evidence(world: World) -> None:
    d = world.decide()
    assert (d.allowed, d.result, d.enforcement, d.warnings) == (True, "allowed", "enforce", [])
    assert d.message == f"AIWorkload {NS}/{NAME} is cleared for rollout"
    assert d.workload == f"{NS}/{NAME}"


def test_signature_is_checked_once_per_envelope(world: World) -> None:
    assert world.cache is not None
    for _ in range(5):
        assert world.decide().allowed
    assert (world.cache.misses, world.cache.hits, len(world.cache)) == (1, 4, 1)


def test_no_label_is_not_gated(world: World) -> None:
    world.labels = {"app": "fraud"}
    d = world.decide()
    assert d.allowed and d.result == "allowed" and d.workload is None


def test_empty_label_is_denied(world: World) -> None:
    world.labels = {names.WORKLOAD_LABEL: ""}
    d = world.decide()
    assert not d.allowed and d.message == f"Deployment has an empty {names.WORKLOAD_LABEL} label"


@pytest.mark.parametrize("enforcement", ["enforce", "warn", "audit"])
def test_absent_workload_is_denied_whatever_enforcement(world: World, enforcement: str) -> None:
    world.workload["spec"]["enforcement"] = enforcement
    world.labels = {names.WORKLOAD_LABEL: "x"}
    d = rollout_decision(
        kind="Deployment",
        namespace=NS,
        labels=world.labels,
        workload=None,
        evidence_cm=None,
        configmaps={},
        public_key=PUB,
        now=NOW,
        verify_cache=None,
    )
    assert (d.allowed, d.result, d.enforcement) == (False, "denied", None)
    assert d.message == f"AIWorkload {NS}/x not found (named by the {names.WORKLOAD_LABEL} label of this Deployment)"


def test_not_ready_names_failed_gates_from_signed_evidence(world: World) -> None:
    failed = {"cost": "projected $36,120/month = 2.4x target $15,000", "fallback": "fallback not validated"}
    world.workload["status"] = status("FAIL", {"cost": "status text", "fallback": "status text"})
    world.evidence = evidence_cm(sign(world.digest, decision="FAIL", failed=failed))
    d = world.decide()
    assert (d.allowed, d.result) == (False, "denied")
    assert d.message == (
        DENIED + "decision FAIL; failed gates: cost FAIL: projected $36,120/month = 2.4x target $15,000; "
        "fallback FAIL: fallback not validated"
    )


def test_not_ready_without_evidence_names_failed_gates_from_conditions(world: World) -> None:
    world.workload["status"] = status("FAIL", {"reliability": "p95 6,480 ms > 4,000 ms", "toolControl": "no approval"})
    world.evidence = None
    d = world.decide()
    assert d.message == (
        DENIED + "decision FAIL; failed gates: reliability: p95 6,480 ms > 4,000 ms; toolControl: no approval"
    )


def test_evidence_from_another_key_does_not_name_gates(world: World) -> None:
    """Gate reasons are only read from evidence whose signature verifies; otherwise from the status."""
    world.workload["status"] = status("FAIL", {"cost": "over budget"})
    world.evidence = evidence_cm(sign(world.digest, key=OTHER_PRIV, decision="FAIL", failed={"cost": "FORGED"}))
    assert world.decide().message == DENIED + "decision FAIL; failed gates: cost: over budget"


def test_not_gated_yet(world: World) -> None:
    world.workload["status"] = {"phase": "Testing", "lastRun": {"job": "aigate-x-1"}}
    world.evidence = None
    assert world.decide().message == DENIED + (
        "a gate run is in progress for the current spec (Job aigate-x-1); there is no evidence for it yet"
    )
    del world.workload["status"]
    assert world.decide().message == DENIED + "not gated yet (phase Pending)"


def test_forged_status_without_evidence(world: World) -> None:
    world.evidence = None
    d = world.decide()
    assert not d.allowed
    cm = names.evidence_configmap(NAME)
    assert d.message == DENIED + f"status says PASS but there is no signed evidence (ConfigMap {cm} not found)"
    world.evidence = {"metadata": {"name": cm}, "data": {}}
    assert world.decide().message.endswith(f"(ConfigMap {cm} has no key {names.EVIDENCE_KEY})")


def test_forged_status_with_evidence_signed_by_another_key(world: World) -> None:
    world.evidence = evidence_cm(sign(world.digest, key=OTHER_PRIV))
    d = world.decide()
    assert not d.allowed
    assert "does not hold: signature does not verify with the given public key" in d.message


def test_forged_status_with_tampered_payload(world: World) -> None:
    envelope = sign(world.digest, decision="FAIL", failed={"cost": "over budget"})
    other = sign(world.digest)
    envelope["payload"] = other["payload"]  # a PASS payload under a FAIL statement's signature
    world.evidence = evidence_cm(envelope)
    d = world.decide()
    assert not d.allowed and "signature does not verify" in d.message


def test_evidence_not_json(world: World) -> None:
    world.evidence = evidence_cm("{not json")
    d = world.decide()
    assert not d.allowed and "does not hold: evidence is not JSON" in d.message


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_expired_evidence(world: World) -> None:
    later = NOW + timedelta(days=31)
    d = world.decide(later)
    assert not d.allowed
    assert d.message == DENIED + (
        f"evidence in ConfigMap {names.evidence_configmap(NAME)} does not hold: evidence expired at "
        f"{stamp(NOW + timedelta(days=30))} (now {stamp(later)})"
    )


def test_expiry_is_rejudged_on_a_cache_hit(world: World) -> None:
    assert world.decide().allowed
    d = world.decide(NOW + timedelta(days=31))
    assert not d.allowed and f"evidence expired at {stamp(NOW + timedelta(days=30))}" in d.message
    assert world.cache is not None and world.cache.hits == 1


def test_spec_changed_after_signing(world: World) -> None:
    world.workload["spec"]["budget"]["monthlyUSD"] = 99999
    d = world.decide()
    assert not d.allowed
    assert "(spec changed after signing)" in d.message


def test_referenced_configmap_edited_after_signing(world: World) -> None:
    world.configmaps["fraud-prompts"]["data"]["system.md"] += "\nAlso close cases yourself."
    d = world.decide()
    assert not d.allowed and "(spec changed after signing)" in d.message


def test_referenced_configmap_missing(world: World) -> None:
    del world.configmaps["fraud-prompts"]
    d = world.decide()
    assert d.message == DENIED + f"spec cannot be resolved: referenced ConfigMap {NS}/fraud-prompts not found"
    world.configmaps["fraud-prompts"] = {"data": {}}
    assert world.decide().message.endswith("referenced ConfigMap fraud/fraud-prompts has no key 'system.md'")


def test_evidence_for_another_workload_is_stale(world: World) -> None:
    """The digest covers namespace and name: evidence copied from a passing workload grants nothing."""
    wl = copy.deepcopy(world.workload)
    wl["metadata"]["name"] = "other"
    other_digest = current_spec_digest(wl, world.configmaps)
    assert other_digest != world.digest
    world.evidence = evidence_cm(sign(other_digest))
    assert not world.decide().allowed


def test_fail_decision_in_evidence_under_a_pass_status(world: World) -> None:
    world.evidence = evidence_cm(sign(world.digest, decision="FAIL", failed={"cost": "over budget"}))
    d = world.decide()
    assert d.message == DENIED + (
        f"evidence in ConfigMap {names.evidence_configmap(NAME)} does not hold: decision is FAIL; "
        "failed gates: cost FAIL: over budget"
    )


def test_unreadable_spec_is_denied(world: World) -> None:
    world.workload["spec"]["models"] = []
    d = world.decide()
    assert not d.allowed and d.message.startswith(DENIED + "spec cannot be resolved: ")


def test_warn_admits_with_the_message_as_warning(world: World) -> None:
    world.workload["spec"]["enforcement"] = "warn"
    world.evidence = None
    d = world.decide()
    assert (d.allowed, d.result, d.enforcement) == (True, "warned", "warn")
    assert d.warnings == [d.message] and d.message.startswith(DENIED)


def test_warn_with_evidence_signed_for_warn_is_allowed(world: World) -> None:
    world.workload["spec"]["enforcement"] = "warn"
    world.evidence = evidence_cm(sign(current_spec_digest(world.workload, world.configmaps)))
    d = world.decide()
    assert (d.allowed, d.result, d.warnings) == (True, "allowed", [])


def test_audit_admits_silently(world: World) -> None:
    world.workload["spec"]["enforcement"] = "audit"
    world.evidence = None
    d = world.decide()
    assert (d.allowed, d.result, d.enforcement, d.warnings) == (True, "audited", "audit", [])
    assert d.message.startswith(DENIED)


def test_message_is_one_line(world: World) -> None:
    world.workload["status"] = status("FAIL", {"cost": "line one\nline two"})
    world.evidence = None
    assert "\n" not in world.decide().message


def test_digest_is_remembered_per_resource_version(world: World) -> None:
    assert world.cache is not None
    world.workload["metadata"].update(uid="u1", resourceVersion="10")
    world.configmaps["fraud-prompts"]["metadata"].update(uid="c1", resourceVersion="20")
    assert world.decide().allowed and world.decide().allowed
    assert world.cache.digest_hits == 1
    # an edit gives a new resourceVersion: the digest is computed again, and the old evidence is stale
    world.configmaps["fraud-prompts"]["data"]["system.md"] += " Close cases yourself."
    world.configmaps["fraud-prompts"]["metadata"]["resourceVersion"] = "21"
    assert not world.decide().allowed
    world.workload["spec"]["budget"]["monthlyUSD"] = 1
    world.workload["metadata"]["resourceVersion"] = "11"
    assert "(spec changed after signing)" in world.decide().message
    assert world.cache.digest_hits == 1
    del world.configmaps["fraud-prompts"]
    assert "referenced ConfigMap fraud/fraud-prompts not found" in world.decide().message


def test_objects_without_resource_version_are_digested_every_time(world: World) -> None:
    assert world.decide().allowed
    world.workload["spec"]["budget"]["monthlyUSD"] = 1
    assert not world.decide().allowed
    assert world.cache is not None and world.cache.digest_hits == 0


def test_cache_is_bounded() -> None:
    w = World()
    w.cache = VerifyCache(max_entries=2)
    for i in range(4):
        w.evidence = evidence_cm(sign(w.digest, owner=f"team-{i}"))
        assert w.decide().allowed
    assert len(w.cache) == 2


def test_a_failure_is_remembered_per_resource_version_too(world: World) -> None:
    """A spec that cannot be resolved is not parsed again on every review while nothing it reads has changed."""
    assert world.cache is not None
    world.workload["metadata"].update(uid="u1", resourceVersion="10")
    del world.configmaps["fraud-prompts"]
    first = world.decide().message
    assert "referenced ConfigMap fraud/fraud-prompts not found" in first
    assert world.cache.fresh(world.workload, world.configmaps)
    assert world.decide().message == first and world.cache.digest_hits == 1
    _, cms = documents()
    world.configmaps["fraud-prompts"] = cms["fraud-prompts"]
    world.configmaps["fraud-prompts"]["metadata"].update(uid="c1", resourceVersion="30")
    assert not world.cache.fresh(world.workload, world.configmaps)
    assert world.decide().allowed


def test_cache_is_bounded_in_bytes_and_keeps_what_a_decision_reads() -> None:
    w = World()
    size = len(json.dumps(sign(w.digest)).encode())
    w.cache = VerifyCache(max_bytes=size + size // 2)
    for i in range(3):
        w.evidence = evidence_cm(sign(w.digest, owner=f"team-{i}"))
        assert w.decide().allowed
    assert len(w.cache) == 1 and w.cache.bytes <= w.cache.max_bytes
    [(outcome, _)] = w.cache._items.values()
    assert outcome.verified is not None and outcome.verified.statement == {} and outcome.verified.predicate == {}
    assert outcome.verified.signed.decision == "PASS"


# --- risk acceptances ---------------------------------------------------------------------------------------

ACCEPTORS = {"aigate-risk-acceptors"}
ALICE = {"username": "alice@example.com", "groups": ["system:authenticated", "aigate-risk-acceptors"]}
BOB = {"username": "bob@example.com", "groups": ["system:authenticated", "developers"]}
FUTURE = "2027-03-01T00:00:00Z"


def acc(
    gate: str = "providerDependency", reason: str = "single provider until Q2", expires: str = FUTURE, **kw: Any
) -> dict[str, Any]:
    return {"gate": gate, "reason": reason, "expires": expires, **kw}


def spec(*acceptances: dict[str, Any]) -> dict[str, Any]:
    return {"owner": "fraud-platform-team", "riskAcceptances": list(acceptances)}


def patch(new: dict[str, Any], old: dict[str, Any] | None = None, user: dict[str, Any] = ALICE) -> Any:
    return acceptance_patch(
        operation="UPDATE" if old is not None else "CREATE",
        new_spec=new,
        old_spec=old,
        userinfo=user,
        acceptor_groups=ACCEPTORS,
        now=NOW,
    )


def test_permitted_user_is_recorded() -> None:
    d = patch(spec(acc()))
    assert d.allowed and d.recorded == [0]
    assert d.patch == [{"op": "add", "path": "/spec/riskAcceptances/0/acceptedBy", "value": "alice@example.com"}]


def test_hand_written_acceptor_is_replaced() -> None:
    d = patch(spec(acc(acceptedBy="the-ceo")))
    assert d.patch == [{"op": "replace", "path": "/spec/riskAcceptances/0/acceptedBy", "value": "alice@example.com"}]


def test_user_outside_acceptor_groups_is_refused() -> None:
    d = patch(spec(acc()), user=BOB)
    assert not d.allowed and d.patch == []
    assert d.message == (
        "user bob@example.com may not accept risks (spec.riskAcceptances[0], gate providerDependency): "
        "not in any of the groups aigate-risk-acceptors"
    )


def test_no_user_is_refused() -> None:
    d = patch(spec(acc()), user={"groups": ["aigate-risk-acceptors"]})
    assert not d.allowed and "no authenticated user name" in d.message


def test_unchanged_acceptances_keep_their_acceptor() -> None:
    old = spec(acc(acceptedBy="carol@example.com"))
    new = copy.deepcopy(old)
    new["owner"] = "another-team"
    d = patch(new, old, user=BOB)  # bob is no acceptor, and edits something else: fine, carol stays
    assert d.allowed and d.patch == [] and d.recorded == []


def test_unchanged_acceptance_with_edited_acceptor_is_restored() -> None:
    old = spec(acc(acceptedBy="carol@example.com"))
    d = patch(spec(acc(acceptedBy="bob@example.com")), old, user=BOB)
    assert d.allowed
    assert d.patch == [{"op": "replace", "path": "/spec/riskAcceptances/0/acceptedBy", "value": "carol@example.com"}]


def test_changed_acceptance_is_a_new_acceptance() -> None:
    old = spec(acc(acceptedBy="carol@example.com"))
    new = spec(acc(acceptedBy="carol@example.com", expires="2027-06-01T00:00:00Z"), acc(gate="cost"))
    d = patch(new, old)
    assert d.allowed and d.recorded == [0, 1]
    assert [p["value"] for p in d.patch] == ["alice@example.com", "alice@example.com"]
    assert not patch(new, old, user=BOB).allowed


def test_reordered_acceptances_keep_their_acceptors() -> None:
    a, b = acc(acceptedBy="carol@example.com"), acc(gate="cost", acceptedBy="dave@example.com")
    d = patch(spec(b, a), spec(a, b), user=BOB)
    assert d.allowed and d.patch == []


def test_same_expiry_written_differently_is_unchanged() -> None:
    old = spec(acc(acceptedBy="carol@example.com"))
    d = patch(spec(acc(expires="2027-03-01T00:00:00+00:00", acceptedBy="carol@example.com")), old, user=BOB)
    assert d.allowed and d.patch == []


def test_expired_acceptance_is_refused() -> None:
    d = patch(spec(acc(expires="2026-11-01T00:00:00Z")))
    assert not d.allowed
    assert d.message == (
        "spec.riskAcceptances[0] (providerDependency) expires in the past (2026-11-01T00:00:00Z): "
        "it would count for nothing"
    )


def test_removing_an_acceptance_needs_no_acceptor() -> None:
    d = patch(spec(), spec(acc(acceptedBy="carol@example.com")), user=BOB)
    assert d.allowed and d.patch == []


def test_malformed_acceptance_is_refused() -> None:
    d = patch(spec({"gate": "vibes", "reason": "x", "expires": FUTURE}))
    assert not d.allowed and "spec.riskAcceptances[0] needs a gate" in d.message


def test_delete_is_not_judged() -> None:
    d = acceptance_patch(
        operation="DELETE", new_spec=None, old_spec=spec(acc()), userinfo=BOB, acceptor_groups=ACCEPTORS, now=NOW
    )
    assert d.allowed and d.patch == []


def test_validation_refuses_what_the_mutation_would_have_changed() -> None:
    kw: dict[str, Any] = {"operation": "CREATE", "old_spec": None, "acceptor_groups": ACCEPTORS, "now": NOW}
    assert acceptance_validation(new_spec=spec(acc(acceptedBy="alice@example.com")), userinfo=ALICE, **kw).allowed
    d = acceptance_validation(new_spec=spec(acc(acceptedBy="mallory")), userinfo=ALICE, **kw)
    assert not d.allowed and "spec.riskAcceptances.0.acceptedBy" in d.message


@pytest.mark.parametrize(
    ("enforcement", "allowed", "result"), [("enforce", False, "denied"), ("audit", True, "audited")]
)
def test_an_object_that_does_not_fit_the_workload_is_refused_under_its_enforcement(
    world: World, enforcement: str, allowed: bool, result: str
) -> None:
    """An MCPServer the workload does not declare (policy/mcpservers.py) is refused even with passing evidence, in
    the usual words and under the workload's enforcement; an absent workload is still said first."""
    world.workload["spec"]["enforcement"] = enforcement
    common = {
        "kind": "MCPServer",
        "namespace": NS,
        "labels": world.labels,
        "evidence_cm": world.evidence,
        "configmaps": world.configmaps,
        "public_key": PUB,
        "now": NOW,
        "object_problem": "MCPServer fraud/x is not one of the MCP servers the workload declares",
    }
    d = rollout_decision(workload=world.workload, **common)
    assert (d.allowed, d.result) == (allowed, result)
    assert d.message == DENIED + "MCPServer fraud/x is not one of the MCP servers the workload declares"
    missing = rollout_decision(workload=None, **common)
    assert missing.message.startswith(f"AIWorkload {NS}/{NAME} not found")


# ---- drift: what a canary found after launch ---------------------------------------------------------------------

DRIFT_MESSAGE = "path primary answered as claude-x-20260301, the evidence records claude-x-20250929"


def drifted(world: World, envelope: str | None = None, reason: str = "ModelChanged") -> None:
    """The operator's record beside the envelope in the trusted evidence ConfigMap (`Reconciler._record_drift`)."""
    from aigate.policy.canary import Drift, drift_record

    assert world.evidence is not None
    text = envelope if envelope is not None else world.evidence["data"][names.EVIDENCE_KEY]
    record = drift_record(Drift(True, reason, DRIFT_MESSAGE), text, NOW - timedelta(minutes=5))  # type: ignore[arg-type]
    world.evidence["data"][names.DRIFT_KEY] = record.to_json()


def test_a_standing_drift_refuses_a_rollout_of_passing_evidence_naming_it(world: World) -> None:
    drifted(world)
    d = world.decide()
    assert (d.allowed, d.result, d.enforcement) == (False, "denied", "enforce")
    since = rfc3339(NOW - timedelta(minutes=5))
    assert d.message == (
        DENIED + f"drift ModelChanged since {since}: {DRIFT_MESSAGE}; the evidence no longer describes "
        "what answers until a re-gate passes"
    )


def test_on_drift_warn_admits_with_the_drift_as_warning(world: World) -> None:
    drifted(world, reason="CanaryFailing")
    d = world.decide(on_drift="warn")
    assert (d.allowed, d.result) == (True, "warned")
    assert d.warnings == [d.message] and "admitted despite drift (onDrift warn): drift CanaryFailing" in d.message


def test_a_drift_follows_the_enforcement_in_force(world: World) -> None:
    world.workload["spec"]["enforcement"] = "audit"
    world.evidence = evidence_cm(sign(current_spec_digest(world.workload, world.configmaps)))
    assert world.decide().result == "allowed"
    drifted(world)
    d = world.decide()
    assert (d.allowed, d.result) == (True, "audited") and "drift ModelChanged" in d.message


def test_a_drift_recorded_against_another_envelope_refuses_nothing(world: World) -> None:
    """A passing re-gate writes a new envelope: the old record no longer stands, whether or not it was cleared."""
    drifted(world, envelope='{"payload": "the envelope before the re-gate"}')
    assert world.decide().allowed


def test_a_drift_condition_in_status_alone_refuses_nothing(world: World) -> None:
    """Decisions read the operator's record in its own namespace, never status (trust-model.md)."""
    world.workload["status"]["conditions"].append(
        {"type": "Drift", "status": "True", "reason": "ModelChanged", "message": "hand-written"}
    )
    assert world.decide().allowed
