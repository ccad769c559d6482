"""AIGatePolicy judgement as tables: which policies govern a namespace, the strictest value of each field when
several do, the platform default where none sets a field, what they refuse in a workload, and how long evidence may
live under them; `aigate check` with and without `--policy`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from aigate.api.crd import render_policy_crd
from aigate.api.models import AIWorkload
from aigate.api.policy import AIGatePolicy
from aigate.cli import main
from aigate.gates.result import GateResult
from aigate.pipeline import evidence_expiry, judge
from aigate.policy.governance import (
    PLATFORM_DEFAULT,
    EffectivePolicy,
    Floor,
    PlatformDefault,
    effective,
    governed_by,
    policy_digest,
    raised,
    selects,
    strictest,
    violations,
)
from factories import ROOT, all_valid_faults, example_doc, measurements, model, resolved_from, run

DEFAULT = PlatformDefault()

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def policy(name: str, **spec: Any) -> AIGatePolicy:
    return AIGatePolicy.model_validate({"metadata": {"name": name}, "spec": spec})


@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        ({}, {}, True),
        ({"matchLabels": {"tier": "prod"}}, {"tier": "prod", "team": "a"}, True),
        ({"matchLabels": {"tier": "prod"}}, {"tier": "dev"}, False),
        (
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["prod", "stage"]}]},
            {"tier": "stage"},
            True,
        ),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["dev"]}]}, {}, True),
        ({"matchExpressions": [{"key": "pci", "operator": "Exists"}]}, {"pci": ""}, True),
        ({"matchExpressions": [{"key": "pci", "operator": "DoesNotExist"}]}, {"pci": "yes"}, False),
    ],
)
def test_selects(selector: dict[str, Any], labels: dict[str, str], selected: bool) -> None:
    assert selects(policy("p", namespaceSelector=selector).spec.namespace_selector, labels) is selected


def test_the_strictest_value_of_each_field_wins() -> None:
    a = policy(
        "a",
        enforcement="warn",
        maxValidFor="720h",
        slo={"minPassRate": 0.9, "maxErrorRate": 0.05},
        allowedEndpoints=["https://llm.internal/"],
        unacceptableGates=["toolControl"],
    )
    b = policy(
        "b",
        enforcement="enforce",
        maxValidFor="24h",
        slo={"minPassRate": 0.8, "maxErrorRate": 0.01, "maxP95LatencyMs": 3000},
        acceptorGroups=["ciso"],
        unacceptableGates=["evidence"],
    )
    other = policy("z", enforcement="enforce", namespaceSelector={"matchLabels": {"tier": "prod"}})
    e = effective([b, other, a], {"tier": "dev"}, DEFAULT)
    assert e.names == ("a", "b")
    assert e.enforcement == "enforce" and e.max_valid_for == timedelta(hours=24)
    assert (e.min_pass_rate, e.max_error_rate, e.max_p95_latency_ms) == (0.9, 0.01, 3000)
    assert e.unacceptable_gates == {"toolControl", "evidence"} and e.acceptor_groups == {"ciso"}
    assert e.endpoint_prefixes == (("https://llm.internal/",),)
    assert e.limits == {"enforcement": "b", "maxValidFor": "b", "minPassRate": "a", "maxErrorRate": "b",
                        "maxP95LatencyMs": "b"}  # fmt: skip
    assert e.digest == effective([a, b], {}, DEFAULT).digest != effective([a], {}, DEFAULT).digest
    assert e.floor == Floor("enforce", "b")


def test_no_policy_means_the_platform_default() -> None:
    """Where no AIGatePolicy selects the namespace, the platform default is the policy: enforce, 720h, recorded by
    its name and digested like any policy."""
    prod_only = policy("z", enforcement="audit", namespaceSelector={"matchLabels": {"tier": "prod"}})
    e = effective([prod_only], {"tier": "dev"}, DEFAULT)
    assert e.names == (PLATFORM_DEFAULT,) == ("platform-default",)
    assert (e.enforcement, e.max_valid_for) == ("enforce", timedelta(hours=720))
    assert e.limits == {"enforcement": PLATFORM_DEFAULT, "maxValidFor": PLATFORM_DEFAULT}
    assert e.floor == Floor("enforce", PLATFORM_DEFAULT)
    assert e.digest == policy_digest([DEFAULT.as_policy()]) == effective([], {}, DEFAULT).digest
    assert (e.acceptor_groups, e.unacceptable_gates, e.endpoint_prefixes) == (frozenset(), frozenset(), ())
    # the operator's settings say what the default is; the digest tells two defaults apart
    softer = effective([], {}, PlatformDefault("warn", "168h"))
    assert (softer.enforcement, softer.max_valid_for) == ("warn", timedelta(hours=168))
    assert softer.digest != e.digest


@pytest.mark.parametrize(
    ("spec", "names", "enforcement", "valid_for"),
    [
        # a policy about endpoints only: the default still sets the floor and the validity
        ({"allowedEndpoints": ["https://llm.internal/"]}, ("p", PLATFORM_DEFAULT), "enforce", 720),
        # a softer start, written by an admin: the policy's floor, the default's validity
        ({"enforcement": "warn"}, ("p", PLATFORM_DEFAULT), "warn", 720),
        # a policy that sets both: the default is not in force
        ({"enforcement": "audit", "maxValidFor": "2160h"}, ("p",), "audit", 2160),
    ],
    ids=["endpoints-only", "softer-floor", "both-set"],
)
def test_the_platform_default_fills_each_field_no_policy_sets(
    spec: dict[str, Any], names: tuple[str, ...], enforcement: str, valid_for: int
) -> None:
    e = effective([policy("p", **spec)], {}, DEFAULT)
    assert (e.names, e.enforcement, e.max_valid_for) == (names, enforcement, timedelta(hours=valid_for))


@pytest.mark.parametrize(
    ("own", "floor", "mode"),
    [
        ("audit", "enforce", "enforce"),
        ("enforce", "audit", "enforce"),
        ("warn", None, "warn"),
        ("audit", "warn", "warn"),
    ],
)
def test_a_workload_may_be_stricter_never_looser(own: Any, floor: Any, mode: str) -> None:
    assert strictest(own, floor) == mode


def test_a_raised_enforcement_names_who_raised_it() -> None:
    by_default = "spec.enforcement audit is raised to enforce, the floor set by the platform default"
    assert raised("audit", Floor("enforce", PLATFORM_DEFAULT)) == by_default
    assert raised("warn", Floor("enforce", "prod")) == (
        "spec.enforcement warn is raised to enforce, the floor set by AIGatePolicy prod"
    )
    assert raised("enforce", Floor("warn", "prod")) is None  # stricter than the floor: its own
    assert raised("warn", Floor("warn", "prod")) is None
    assert raised("audit", None) is None


def test_the_policies_in_force_are_named_in_one_phrase() -> None:
    assert governed_by(("a", "b", PLATFORM_DEFAULT)) == "AIGatePolicy a, b and the platform default"
    assert governed_by((PLATFORM_DEFAULT,)) == "the platform default"
    assert governed_by(("a",)) == "AIGatePolicy a"


def workload(change: Any = None) -> AIWorkload:
    doc = example_doc()
    if change is not None:
        change(doc["spec"])
    return AIWorkload.model_validate(doc)


def test_violations_name_the_field_and_the_policy() -> None:
    p = policy(
        "platform",
        maxValidFor="24h",
        allowedEndpoints=["https://llm.internal/"],
        slo={"minPassRate": 0.99, "maxErrorRate": 0.001, "maxP95LatencyMs": 1000},
        unacceptableGates=["providerDependency"],
    )
    accepted = {"gate": "providerDependency", "reason": "second provider in Q1", "expires": "2099-01-01T00:00:00Z"}
    found = violations(workload(lambda s: s.update(riskAcceptances=[accepted])), effective([p], {}, DEFAULT))
    assert found[0] == "spec.evidence.validFor 720h is longer than 24h, the most AIGatePolicy platform allows"
    assert found[1].startswith("spec.models[0].endpoint http://127.0.0.1:8788 is outside the endpoints allowed")
    assert any(
        v.startswith("spec.slo.minPassRate 0.95 is below the floor 0.99 of AIGatePolicy platform") for v in found
    )
    assert any(v.startswith("spec.slo.maxErrorRate 0.01 is above the ceiling 0.001") for v in found)
    assert any(v.startswith("spec.slo.p95LatencyMs 4000 is above the ceiling 1000") for v in found)
    assert any("gate providerDependency may not be risk-accepted" in v for v in found)
    assert violations(workload(), EffectivePolicy()) == []
    assert violations(workload(), effective([], {}, DEFAULT)) == []


def test_without_a_policy_the_platform_default_refuses_a_longer_validity() -> None:
    longer = workload(lambda s: s.update(evidence={"validFor": "1000h"}))
    assert violations(longer, effective([], {}, DEFAULT)) == [
        "spec.evidence.validFor 1000h is longer than 720h, the most the platform default allows"
    ]
    # a policy that allows more is the admins' to write
    assert violations(longer, effective([policy("long", maxValidFor="2160h")], {}, DEFAULT)) == []


def test_evidence_never_outlives_what_it_rests_on() -> None:
    accepted = GateResult(
        gate="cost", status="ACCEPTED", reason="x", acceptance={"expires": "2026-12-01T13:00:00Z", "reason": "r"}
    )
    passed = GateResult(gate="reliability", status="PASS", reason="ok")
    week = timedelta(days=7)
    assert evidence_expiry(NOW, week, EffectivePolicy(), [passed]) == NOW + week
    assert evidence_expiry(NOW, week, EffectivePolicy(max_valid_for=timedelta(hours=24)), [passed]) == NOW + timedelta(
        hours=24
    )
    assert evidence_expiry(NOW, week, EffectivePolicy(), [passed, accepted]) == NOW + timedelta(hours=1)


def test_check_with_a_policy_refuses_what_it_forbids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = example_doc()
    doc["spec"]["prompts"] = [{"inline": "You review fraud cases."}]
    wl = tmp_path / "w.yaml"
    wl.write_text(yaml.safe_dump(doc))
    pol = tmp_path / "policy.yaml"
    pol.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "aigate.dev/v1alpha1",
                "kind": "AIGatePolicy",
                "metadata": {"name": "platform"},
                "spec": {"maxValidFor": "24h", "namespaceSelector": {"matchLabels": {"tier": "prod"}}},
            }
        )
    )
    assert main(["check", str(wl), "--policy", str(pol), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "policy violation: spec.evidence.validFor 720h is longer than 24h, the most AIGatePolicy platform allows\n"
    )


def test_check_without_a_policy_judges_under_the_platform_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`aigate check` agrees with a cluster left at its defaults: what the platform default refuses fails before
    anything runs."""
    doc = example_doc()
    doc["spec"]["prompts"] = [{"inline": "You review fraud cases."}]
    doc["spec"]["evidence"] = {"validFor": "1000h"}
    wl = tmp_path / "w.yaml"
    wl.write_text(yaml.safe_dump(doc))
    assert main(["check", str(wl), "--quiet"]) == 1
    assert capsys.readouterr().err == (
        "policy violation: spec.evidence.validFor 1000h is longer than 720h, the most the platform default allows\n"
    )


def test_the_evidence_records_the_platform_default() -> None:
    """Judged with no policy given (the CLI, the demo): the evidence names the platform default and what it set,
    and expires within its limit."""
    doc = example_doc()
    doc["spec"]["prompts"] = [{"inline": "You review fraud cases."}]
    doc["spec"]["evidence"] = {"validFor": "24h"}
    cases = ["c0", "c1"]
    m = measurements(
        {"primary": model("primary", [run(c, "primary") for c in cases], provider="anthropic")},
        all_valid_faults(cases),
    )
    _, predicate, _ = judge(resolved_from(doc), m, now=NOW, key_id=None)
    assert predicate.policy is not None
    assert predicate.policy.model_dump(by_alias=True) == {
        "names": ["platform-default"],
        "digest": policy_digest([DEFAULT.as_policy()]),
        "enforcement": "enforce",
        "maxValidFor": "720h",
    }
    assert predicate.expires_at == NOW + timedelta(hours=24)  # the workload asked for less: its own


def test_the_policy_crd_is_current() -> None:
    path = ROOT / "crds" / "aigatepolicies.aigate.dev.yaml"
    assert path.read_text() == render_policy_crd(), "run `aigate crd --policy > crds/aigatepolicies.aigate.dev.yaml`"
    crd = yaml.safe_load(path.read_text())
    assert crd["spec"]["scope"] == "Cluster"
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert {"enforcement", "maxValidFor", "allowedEndpoints", "unacceptableGates", "slo"} <= set(spec["properties"])


def test_an_acceptance_is_bound_to_the_spec_it_was_given_for() -> None:
    from aigate.api.models import RiskAcceptance
    from aigate.gates.acceptance import apply_acceptances
    from aigate.policy.acceptance import acceptance_patch

    fail = GateResult(gate="toolControl", status="FAIL", reason="Human approval: missing")
    given = RiskAcceptance(
        gate="toolControl", reason="r", expires=NOW + timedelta(days=1), accepted_by="alice", spec_digest="sha256:a"
    )
    [same] = apply_acceptances([fail], [given], NOW, "sha256:a")
    assert same.status == "ACCEPTED"
    [other] = apply_acceptances([fail], [given], NOW, "sha256:b")
    assert other.status == "FAIL" and other.reason.endswith("(risk acceptance given for another spec: renew it)")
    assert [f.code for f in other.findings] == ["acceptance.otherSpec"]
    unbound = given.model_copy(update={"spec_digest": None})  # written by hand for the CLI: applies as before
    assert apply_acceptances([fail], [unbound], NOW, "sha256:b")[0].status == "ACCEPTED"

    item = {"gate": "toolControl", "reason": "r", "expires": "2026-12-02T00:00:00Z"}
    alice = {"username": "alice", "groups": ["acceptors"]}
    d = acceptance_patch(
        operation="CREATE",
        new_spec={"riskAcceptances": [item]},
        old_spec=None,
        userinfo=alice,
        acceptor_groups={"acceptors"},
        now=NOW,
        spec_digest="sha256:a",
    )
    assert d.allowed and d.patch == [
        {"op": "add", "path": "/spec/riskAcceptances/0/acceptedBy", "value": "alice"},
        {"op": "add", "path": "/spec/riskAcceptances/0/specDigest", "value": "sha256:a"},
    ]
    # the spec changes, the acceptance does not: it keeps the digest it was given for (and so stops applying)
    stored = {**item, "acceptedBy": "alice", "specDigest": "sha256:a"}
    d = acceptance_patch(
        operation="UPDATE",
        new_spec={"riskAcceptances": [stored]},
        old_spec={"riskAcceptances": [stored]},
        userinfo={"username": "mallory", "groups": []},
        acceptor_groups={"acceptors"},
        now=NOW,
        spec_digest="sha256:b",
    )
    assert d.allowed and d.patch == []
    # a hand-written digest on an unchanged acceptance is put back
    d = acceptance_patch(
        operation="UPDATE",
        new_spec={"riskAcceptances": [{**stored, "specDigest": "sha256:b"}]},
        old_spec={"riskAcceptances": [stored]},
        userinfo={"username": "mallory", "groups": []},
        acceptor_groups={"acceptors"},
        now=NOW,
        spec_digest="sha256:b",
    )
    assert d.patch == [{"op": "replace", "path": "/spec/riskAcceptances/0/specDigest", "value": "sha256:a"}]
