"""The canary's pure decisions (`aigate.policy.canary`, `governance.canary_interval`): when one is due, what it sends,
what it may spend, and what its measurements say against the evidence."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from aigate.api.models import AIWorkload, Canary
from aigate.api.policy import AIGatePolicy
from aigate.evidence.predicate import EvidencePredicate
from aigate.measurements import ModelIdentity
from aigate.policy.canary import (
    CanaryFacts,
    add_spend,
    canary_error,
    canary_plan,
    drift_condition,
    judge_canary,
    regate_passed,
    rotation,
)
from aigate.policy.governance import PlatformDefault, canary_interval, effective
from factories import example_doc, measurements, model, run

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SUITE = ["a", "b", "c", "d", "e"]


def facts(**kw: Any) -> CanaryFacts:
    base = CanaryFacts(
        interval=timedelta(hours=6),
        cases_per_path=3,
        suite=SUITE,
        evidence_valid=True,
        evidence_issued_at=NOW - timedelta(hours=7),
        gate_run_in_flight=False,
        canary_in_flight=False,
        last_canary_at=None,
        next_case=0,
        spent_day=None,
        spent_usd=0.0,
        cap_usd=1.0,
    )
    return dataclasses.replace(base, **kw)


def test_a_canary_is_due_an_interval_after_the_evidence_or_the_last_canary() -> None:
    plan = canary_plan(facts(), NOW)
    assert plan.due and plan.cases == ("a", "b", "c") and plan.next_case == 3 and plan.budget_usd == 1.0
    waiting = canary_plan(facts(last_canary_at=NOW - timedelta(hours=2)), NOW)
    assert not waiting.due and waiting.due_at == NOW + timedelta(hours=4)
    assert waiting.why == "next canary at 2026-12-06T16:00:00Z"
    fresh = canary_plan(facts(evidence_issued_at=NOW - timedelta(minutes=5)), NOW)
    assert not fresh.due and fresh.due_at == NOW + timedelta(hours=5, minutes=55)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"interval": None}, "canary off (spec.monitoring.canary.every 0)"),
        ({"evidence_valid": False}, "no valid passing evidence to compare with"),
        ({"drifting": True}, "drift stands; the re-gate decides"),
        ({"gate_run_in_flight": True}, "a gate run is in flight"),
        ({"canary_in_flight": True}, "a canary is in flight"),
        ({"suite": []}, "the suite has no cases"),
    ],
)
def test_no_canary_when(change: dict[str, Any], why: str) -> None:
    plan = canary_plan(facts(**change), NOW)
    assert (plan.due, plan.why) == (False, why)


def test_the_rotation_walks_the_whole_suite() -> None:
    assert rotation(SUITE, 3, 3) == (("d", "e", "a"), 1)
    assert rotation(SUITE, 1, 3) == (("b", "c", "d"), 4)
    assert rotation(["x", "y"], 0, 3) == (("x", "y"), 0)
    assert rotation([], 4, 3) == ((), 0)
    seen: set[str] = set()
    start = 0
    for _ in range(2):
        cases, start = rotation(SUITE, start, 3)
        seen.update(cases)
    assert seen == set(SUITE)


def test_the_daily_cap_stops_the_canary_and_says_so() -> None:
    spent = canary_plan(facts(spent_day="2026-12-06", spent_usd=1.0), NOW)
    assert not spent.due and spent.budget_spent
    assert spent.why == "budget.canaryMaxUSDPerDay $1 spent today; the next canary waits for the next UTC day"
    partly = canary_plan(facts(spent_day="2026-12-06", spent_usd=0.75), NOW)
    assert partly.due and partly.budget_usd == 0.25
    yesterday = canary_plan(facts(spent_day="2026-12-05", spent_usd=5.0), NOW)
    assert yesterday.due and yesterday.budget_usd == 1.0
    assert add_spend("2026-12-06", 0.75, 0.3, 1.0, NOW) == add_spend("2026-12-06", 0.75, 0.3, 1.0, NOW)
    total = add_spend("2026-12-06", 0.75, 0.3, 1.0, NOW)
    assert (total.day, total.spent_usd, total.over) == ("2026-12-06", 1.05, True)
    assert add_spend("2026-12-05", 0.75, 0.3, 1.0, NOW).spent_usd == 0.3


# ---- judging ------------------------------------------------------------------------------------------------


def evidence(**kw: Any) -> EvidencePredicate:
    doc: dict[str, Any] = {
        "expiresAt": "2027-01-01T00:00:00Z",
        "decision": "PASS",
        "modelIdentities": [
            {"path": "primary", "requested": "claude-x", "answered": [{"model": "claude-x-20250929"}]},
            {"path": "fallback", "requested": "gpt-y", "answered": [{"model": "gpt-y-2025-04-14"}]},
        ],
        "cases": [
            {"case": "a", "model": "primary", "runs": 2, "passed": 2},
            {"case": "b", "model": "primary", "runs": 2, "passed": 2},
            {"case": "c", "model": "primary", "runs": 2, "passed": 1},
            {"case": "a", "model": "fallback", "runs": 2, "passed": 2},
        ],
        **kw,
    }
    return EvidencePredicate.model_validate(doc)


def answered(path: str, served: str, runs: list[Any]) -> Any:
    for r in runs:
        r.identity = ModelIdentity(requested=path, model=served)
    m = model(path, runs)
    m.identities = [ModelIdentity(requested=path, model=served)]
    return m


def test_same_identities_and_passing_cases_are_no_drift() -> None:
    m = measurements(
        {
            "primary": answered(
                "primary", "claude-x-20250929", [run("a", "primary"), run("c", "primary", passed=False)]
            ),
            "fallback": answered("fallback", "gpt-y-2025-04-14", [run("a", "fallback")]),
        }
    )
    d = judge_canary(m, evidence(), NOW)
    # case c failed in the evidence too: it is no news
    assert (d.status, d.reason, d.drifting) == (False, "NoDrift", False)
    assert d.message == "last canary at 2026-12-06T12:00:00Z: same model identities, cases pass"


def test_a_new_model_identity_is_model_changed_naming_path_old_and_new() -> None:
    m = measurements(
        {
            "primary": answered("primary", "claude-x-20260301", [run("a", "primary", passed=False)]),
            "fallback": answered("fallback", "gpt-y-2025-04-14", [run("a", "fallback")]),
        }
    )
    d = judge_canary(m, evidence(), NOW)
    assert (d.status, d.reason, d.drifting) == (True, "ModelChanged", True)
    assert d.changed == (("primary", "claude-x-20250929", "claude-x-20260301"),)
    assert d.message.startswith("path primary answered as claude-x-20260301, the evidence records claude-x-20250929")


def test_a_case_that_passed_in_the_evidence_and_now_fails_is_canary_failing() -> None:
    m = measurements(
        {
            "primary": answered(
                "primary", "claude-x-20250929", [run("a", "primary"), run("b", "primary", passed=False)]
            ),
            "fallback": answered("fallback", "gpt-y-2025-04-14", [run("a", "fallback", passed=False)]),
        }
    )
    d = judge_canary(m, evidence(), NOW)
    assert (d.status, d.reason) == (True, "CanaryFailing")
    assert d.failing == (("fallback", "a"), ("primary", "b"))
    assert "cases that passed in the evidence now fail: a on fallback, b on primary" in d.message


def test_a_path_that_gave_no_answer_is_a_canary_error_not_a_drift() -> None:
    m = measurements(
        {
            "primary": answered("primary", "claude-x-20250929", [run("a", "primary", ok=False)]),
            "fallback": answered("fallback", "gpt-y-2025-04-14", [run("a", "fallback")]),
        }
    )
    d = judge_canary(m, evidence(), NOW)
    assert (d.status, d.reason, d.drifting) == (None, "CanaryError", False)
    assert "could not measure primary (http_5xx)" in d.message
    cond = drift_condition(d, None, 3, NOW)
    assert (cond["type"], cond["status"], cond["reason"]) == ("Drift", "False", "CanaryError")


def test_a_canary_error_leaves_a_standing_drift_and_only_a_passing_regate_clears_it() -> None:
    changed = judge_canary(
        measurements({"primary": answered("primary", "claude-x-new", [run("a", "primary")])}), evidence(), NOW
    )
    standing = drift_condition(changed, None, 1, NOW)
    assert (standing["status"], standing["reason"]) == ("True", "ModelChanged")
    later = NOW + timedelta(hours=1)
    assert drift_condition(canary_error("no result", later), standing, 1, later) == standing
    cleared = regate_passed(later, 2, later)
    assert (cleared["status"], cleared["reason"]) == ("False", "NoDrift")
    assert cleared["message"] == "gate run passed at 2026-12-06T13:00:00Z; evidence records what answers now"


# ---- the interval under the policy ---------------------------------------------------------------------------


def workload(canary: dict[str, Any] | None) -> AIWorkload:
    doc = example_doc()
    if canary is not None:
        doc["spec"]["monitoring"] = {"canary": canary}
    return AIWorkload.model_validate(doc)


def policy(name: str, **spec: Any) -> AIGatePolicy:
    return AIGatePolicy.model_validate({"metadata": {"name": name}, "spec": spec})


def test_the_default_canary_is_every_6h_with_3_cases_and_0_turns_it_off() -> None:
    none = effective([], {}, PlatformDefault())
    assert workload(None).spec.canary == Canary(every="6h", cases=3)
    assert canary_interval(workload(None), none) == timedelta(hours=6)
    assert canary_interval(workload({"every": "0"}), none) is None
    assert canary_interval(workload({"every": "30m", "cases": 1}), none) == timedelta(minutes=30)
    with pytest.raises(ValidationError, match="every"):
        workload({"every": "soon"})
    assert workload(None).spec.budget.canary_cap_usd == 1.0


def test_a_policy_floor_and_ceiling_bound_the_interval_and_a_ceiling_keeps_it_on() -> None:
    floor = effective([policy("cheap", canary={"minEvery": "2h"})], {}, PlatformDefault())
    assert canary_interval(workload({"every": "30m"}), floor) == timedelta(hours=2)
    ceiling = effective([policy("watch", canary={"maxEvery": "12h"})], {}, PlatformDefault())
    assert canary_interval(workload({"every": "24h"}), ceiling) == timedelta(hours=12)
    assert canary_interval(workload({"every": "0"}), ceiling) == timedelta(hours=12)
    both = effective(
        [policy("cheap", canary={"minEvery": "2h"}), policy("cheaper", canary={"minEvery": "4h", "maxEvery": "3h"})],
        {},
        PlatformDefault(),
    )
    assert (both.canary_min_every, both.canary_max_every) == (timedelta(hours=4), timedelta(hours=3))
    assert canary_interval(workload({"every": "1h"}), both) == timedelta(hours=3)  # the ceiling wins


def test_on_drift_is_refuse_unless_every_policy_that_says_asks_warn() -> None:
    assert effective([], {}, PlatformDefault()).on_drift == "refuse"
    assert effective([policy("soft", onDrift="warn")], {}, PlatformDefault()).on_drift == "warn"
    strict = effective([policy("soft", onDrift="warn"), policy("hard", onDrift="refuse")], {}, PlatformDefault())
    assert (strict.on_drift, strict.limits["onDrift"]) == ("refuse", "hard")


def test_the_drift_record_binds_to_the_envelope_it_was_found_against() -> None:
    from aigate.policy.canary import drift_record, standing_drift

    changed = judge_canary(
        measurements({"primary": answered("primary", "claude-x-new", [run("a", "primary")])}), evidence(), NOW
    )
    record = drift_record(changed, '{"payload":"old"}', NOW).to_json()
    standing = standing_drift(record, '{"payload":"old"}')
    assert standing is not None and (standing.reason, standing.since) == ("ModelChanged", "2026-12-06T12:00:00Z")
    assert standing.message == changed.message
    assert standing_drift(record, '{"payload":"re-gated"}') is None  # a new envelope leaves the record behind
    assert standing_drift(None, '{"payload":"old"}') is None
    assert standing_drift("{not json", '{"payload":"old"}') is None
    error = drift_record(canary_error("unreachable", NOW), '{"payload":"old"}', NOW).to_json()
    assert standing_drift(error, '{"payload":"old"}') is None  # a canary that could not run refuses nothing


def test_a_canary_the_budget_stopped_judges_what_it_measured_and_one_that_sent_nothing_says_so() -> None:
    nothing = measurements({"primary": model("primary", []), "fallback": model("fallback", [])}, budget_exhausted=True)
    d = judge_canary(nothing, evidence(), NOW, cap_usd=0.001)
    assert (d.status, d.reason, d.drifting) == (None, "CanaryBudgetSpent", False)
    assert d.message == (
        "canary at 2026-12-06T12:00:00Z stopped before its first request: what is left of "
        "budget.canaryMaxUSDPerDay $0.001 today covers no request"
    )
    partly = measurements(
        {
            "primary": answered("primary", "claude-x-20250929", [run("a", "primary")]),
            "fallback": model("fallback", []),
        },
        budget_exhausted=True,
    )
    assert judge_canary(partly, evidence(), NOW, cap_usd=1).reason == "NoDrift"
    unmeasured = measurements(
        {"primary": answered("primary", "claude-x-20250929", [run("a", "primary")]), "fallback": model("fallback", [])}
    )
    assert judge_canary(unmeasured, evidence(), NOW).reason == "CanaryError"  # no budget stop: a path gave nothing


def test_the_evidence_names_the_canary_its_interval_under_the_policy_and_the_identities_compared() -> None:
    from aigate.evidence.predicate import CanaryCondition
    from aigate.pipeline import judge
    from factories import resolved_from

    doc = example_doc()
    doc["spec"]["monitoring"] = {"canary": {"every": "24h", "cases": 2}}
    doc["spec"]["budget"]["canaryMaxUSDPerDay"] = 0.5
    resolved = resolved_from(doc)
    paths = [m.name for m in resolved.workload.spec.models]
    m = measurements({p: answered(p, f"{p}-2026", [run(c.name, p) for c in resolved.cases]) for p in paths})
    ceiling = effective([policy("watch", canary={"maxEvery": "12h"})], {}, PlatformDefault())
    _, predicate, _ = judge(resolved, m, now=NOW, key_id=None, policy=ceiling)
    [canary] = [c for c in predicate.monitoring if isinstance(c, CanaryCondition)]
    assert (canary.every, canary.cases, canary.max_usd_per_day) == ("12h", 2, 0.5)
    assert canary.identities == {p: [f"{p}-2026"] for p in paths}
    signed = EvidencePredicate.model_validate(predicate.to_json())  # read back as the verifier reads it
    assert [c for c in signed.monitoring if isinstance(c, CanaryCondition)] == [canary]
