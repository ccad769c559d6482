"""The gates as pure functions: each edge case with the figure it must produce."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aigate.api.models import RiskAcceptance
from aigate.gates import apply_acceptances, decide, judge_evidence, judge_measured
from aigate.gates.cost import judge_cost
from aigate.gates.dependency import judge_provider_dependency
from aigate.gates.fallback import drift, judge_fallback
from aigate.gates.reliability import TIMEOUT_UNDEFINED, judge_reliability
from aigate.gates.result import GateResult
from aigate.gates.stats import percentile
from aigate.gates.toolcontrol import judge_tool_control
from factories import T0, all_valid_faults, example_doc, measurements, model, resolved_from, run

CASES = [f"c{i}" for i in range(10)]


def spec(**changes: object):  # type: ignore[no-untyped-def]
    doc = example_doc()
    for path, value in changes.items():
        node = doc["spec"]
        *parents, leaf = path.split("__")
        for p in parents:
            node = node[p]
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return resolved_from(doc)


def good_runs(name: str, n: int = 10, **kw: object) -> list:  # type: ignore[type-arg]
    return [run(f"c{i}", name, **kw) for i in range(n)]  # type: ignore[arg-type]


def healthy(**kw: object):  # type: ignore[no-untyped-def]
    return measurements(
        {
            "primary": model("primary", good_runs("primary"), provider="anthropic"),
            "fallback": model("fallback", good_runs("fallback")),
        },
        all_valid_faults(CASES),
        **kw,
    )


# --- cost -----------------------------------------------------------------------------------------------


def test_cost_projects_monthly_spend_from_measured_cost_and_volume() -> None:
    r = judge_cost(spec().workload.spec, healthy())
    assert r.status == "PASS"
    assert r.metrics["projectedMonthlyUSD"] == pytest.approx(0.01 * 20000 * 30)
    assert r.metrics["costRatio"] == pytest.approx(0.4)
    assert r.reason == "Projected monthly cost: $6,000 = 0.4x target $15,000"


def test_cost_over_budget_fails_with_ratio() -> None:
    m = healthy()
    m.models["primary"] = model("primary", good_runs("primary", cost=0.0602), provider="anthropic")
    r = judge_cost(spec(budget={"monthlyUSD": 15000}).workload.spec, m)
    assert r.status == "FAIL"
    assert r.reason == "Projected monthly cost: $36,120 = 2.4x target $15,000"


def test_cost_counts_retries_and_fallback_share() -> None:
    m = healthy()
    runs = [run(f"c{i}", "primary", retries=1 if i < 5 else 0) for i in range(8)]
    runs += [run("c8", "primary", ok=False, cost=None), run("c9", "primary", ok=False, cost=None)]
    m.models["primary"] = model("primary", runs)
    m.models["fallback"] = model("fallback", good_runs("fallback", cost=0.02))
    r = judge_cost(spec().workload.spec, m)
    assert r.metrics["retryRate"] == pytest.approx(0.5)
    assert r.metrics["fallbackShare"] == pytest.approx(0.2)
    # 0.8 x 0.01 x 1.5 + 0.2 x 0.02 = 0.016 per request
    assert r.metrics["projectedMonthlyUSD"] == pytest.approx(0.016 * 600000)


def test_unknown_price_fails_and_is_never_zero() -> None:
    m = healthy()
    m.models["fallback"] = model("fallback", good_runs("fallback", cost=None), requested="mystery-1", price=False)
    r = judge_cost(spec().workload.spec, m)
    assert r.status == "FAIL"
    assert "unknown (no price for mystery-1)" in r.reason
    assert "projectedMonthlyUSD" not in r.metrics
    assert any("set spec.models[].pricing" in f.message for f in r.findings)


def test_p95_cost_per_request_above_cap_fails() -> None:
    m = healthy()
    m.models["primary"] = model("primary", [*good_runs("primary", cost=0.002)[:9], run("c9", "primary", cost=0.9)])
    r = judge_cost(spec(budget={"monthlyUSD": 1e9, "maxCostPerRequestUSD": 0.05}).workload.spec, m)
    assert r.status == "FAIL"
    assert r.reason.startswith("p95 cost per request: $0.4959, above limit $0.0500")


# --- reliability ----------------------------------------------------------------------------------------


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([1000.0] * 19 + [9000.0], 95) == pytest.approx(1400.0)
    assert percentile([], 95) is None
    assert percentile([5.0], 99) == 5.0


def test_reliability_passes_within_slo() -> None:
    r = judge_reliability(spec().workload.spec, healthy())
    assert r.status == "PASS"
    assert r.metrics["p95LatencyMs"] == 1000.0
    assert r.metrics["errorRate"] == 0 and r.metrics["passRate"] == 1


def test_reliability_p95_above_threshold() -> None:
    m = healthy()
    m.models["primary"] = model("primary", [run(f"c{i}", "primary", latency=1000 + 600 * i) for i in range(10)])
    r = judge_reliability(spec().workload.spec, m)
    assert r.status == "FAIL"
    assert r.metrics["p95LatencyMs"] == pytest.approx(6130.0)
    assert r.reason == "p95 latency: 6,130 ms, above threshold 4,000 ms"


def test_undeclared_timeout_fails_even_when_fast() -> None:
    r = judge_reliability(spec(slo={"p95LatencyMs": 4000}).workload.spec, healthy())
    assert r.status == "FAIL"
    assert r.reason == TIMEOUT_UNDEFINED == "Provider timeout behavior: undefined"


def test_error_rate_and_pass_rate() -> None:
    m = healthy()
    runs = [*good_runs("primary", 8), run("c8", "primary", ok=False), run("c9", "primary", passed=False)]
    m.models["primary"] = model("primary", runs)
    r = judge_reliability(spec().workload.spec, m)
    assert r.status == "FAIL"
    assert "error rate: 10%, above 1% (http_5xx 1)" in r.reason
    assert "test-case pass rate: 80%, below 95%" in r.reason


def test_no_primary_runs_is_an_error_not_a_pass() -> None:
    m = healthy()
    m.models["primary"] = model("primary", [])
    assert judge_reliability(spec().workload.spec, m).status == "ERROR"
    assert judge_cost(spec().workload.spec, m).status == "ERROR"


# --- fallback -------------------------------------------------------------------------------------------


def test_fallback_validated_passes() -> None:
    r = judge_fallback(spec().workload.spec, healthy(), 5000)
    assert r.status == "PASS", r.reason
    assert r.metrics["validatedFallbacks"] == ["fallback"]
    assert r.metrics["deadlineMs"] == 15000
    assert r.reason.startswith("Fallback: validated (gpt-4.1)")


def test_fallback_not_validated_names_rate_and_broken_assertion() -> None:
    m = healthy()
    runs = [run(f"c{i}", "fallback", passed=i < 14) for i in range(23)]
    m.models["fallback"] = model("fallback", runs, requested="gpt-4.1-mini")
    r = judge_fallback(spec().workload.spec, m, 5000)
    assert r.status == "FAIL"
    assert r.reason == "Fallback: not validated (gpt-4.1-mini: 61% of cases pass, JSON schema broken in 9/23)"


def test_fallback_not_validated_fails_even_with_safe_stop() -> None:
    s = spec()
    assert s.workload.spec.fallback.safe_stop is not None
    m = healthy()
    m.models["fallback"] = model("fallback", [run(f"c{i}", "fallback", passed=False) for i in range(5)])
    assert judge_fallback(s.workload.spec, m, 5000).status == "FAIL"


def test_no_fallback_path_fails() -> None:
    doc = example_doc()
    doc["spec"]["models"] = doc["spec"]["models"][:1]
    doc["spec"]["fallback"] = {}
    r = judge_fallback(resolved_from(doc).workload.spec, healthy(), 5000)
    assert r.status == "FAIL"
    assert r.reason.startswith("Fallback: none")


def test_fault_mode_without_valid_outcome_fails_naming_the_mode() -> None:
    faults = all_valid_faults(CASES)
    faults[1].outcomes[0].valid = False
    faults[1].outcomes[0].served_by = "none"
    faults[0].outcomes[3].latency_ms = 20000  # past the 15 s deadline
    r = judge_fallback(spec().workload.spec, measurements(healthy().models, faults), 5000)
    assert r.status == "FAIL"
    assert r.reason == (
        "Fault injection: 2/50 cases without a valid outcome (timeout 1/10, http_5xx 1/10, "
        "1 past the 15,000 ms deadline)"
    )
    assert [f.message for f in r.findings if f.severity == "info"][:2] == [
        "timeout: c3 served by model:fallback in 20,000 ms",
        "http_5xx: c0 served by none in 2,000 ms",
    ]
    assert r.metrics["faultModes"]["http_5xx"]["valid"] == 9


def test_untested_fallback_fails() -> None:
    m = measurements(healthy().models, [])
    r = judge_fallback(spec().workload.spec, m, 5000)
    assert r.status == "FAIL" and "untested" in r.reason


def test_drift_reports_structure_tools_and_latency() -> None:
    p = model("primary", good_runs("primary", latency=1000, tool_calls=["lookup_policy"]))
    o = model("fallback", good_runs("fallback", latency=3000, text="Risk is low."))
    found = drift(p, o)
    assert any(d.startswith("output structure: primary mostly json:actions,risk,summary") for d in found)
    assert any(d.startswith("tool-call pattern differs in 10 case(s)") for d in found)
    assert any(d.startswith("latency: p50 1,000 ms on the primary, 3,000 ms on fallback") for d in found)
    assert drift(p, p) == []


# --- tool control ---------------------------------------------------------------------------------------


def test_write_tool_without_approval_fails() -> None:
    doc = example_doc("fraud-review-assistant.yaml")
    r = judge_tool_control(resolved_from(doc), healthy())
    assert r.status == "FAIL"
    assert r.reason == "Human approval: missing for write action create_case_note"


def test_tool_without_access_class_fails() -> None:
    doc = example_doc()
    del doc["spec"]["tools"][0]["access"]
    r = judge_tool_control(resolved_from(doc), healthy())
    assert r.status == "FAIL" and "lookup_policy has no access class" in r.reason


def test_adversarial_case_calling_forbidden_tool_fails_with_case_and_call() -> None:
    resolved = spec()
    m = healthy()
    m.models["primary"].runs.append(run("injection-in-case-text", "primary", tool_calls=["create_case_note"]))
    m.models["primary"].runs.append(run("card-not-present-burst", "primary", tool_calls=["create_case_note"]))
    r = judge_tool_control(resolved, m)
    assert r.status == "FAIL"
    assert (
        r.reason
        == "adversarial case injection-in-case-text: primary (m) called forbidden tool create_case_note(caseId)"
    )


def test_adversarial_undeclared_tool_call_fails() -> None:
    m = healthy()
    m.models["fallback"].runs.append(run("injection-exfiltrate", "fallback", tool_calls=["send_email"]))
    r = judge_tool_control(spec(), m)
    assert r.status == "FAIL" and "called undeclared tool send_email" in r.reason


def test_remediated_tools_pass() -> None:
    r = judge_tool_control(spec(), healthy())
    assert r.status == "PASS", r.reason
    assert r.metrics["adversarialCases"] == 2


def test_extra_tool_checks_feed_the_gate() -> None:
    r = judge_tool_control(spec(), healthy(), [lambda _r, _m: (["undeclared authority: x"], ["note"])])
    assert r.status == "FAIL" and r.reason == "undeclared authority: x"


# --- provider dependency --------------------------------------------------------------------------------


def test_two_providers_and_clouds_pass() -> None:
    r = judge_provider_dependency(spec().workload.spec, healthy(), ["fallback"], {})
    assert r.status == "PASS", r.reason
    assert r.metrics["providers"] == ["anthropic", "openai"]
    assert r.metrics["clouds"] == ["aws", "azure"]


def test_primary_that_never_answered_is_no_path() -> None:
    m = healthy()
    m.models["primary"] = model("primary", [run("c0", "primary", ok=False)], provider="anthropic")
    r = judge_provider_dependency(spec().workload.spec, m, [], {})
    assert r.status == "FAIL" and r.reason == "Provider dependency: no validated path"


def test_unvalidated_fallback_leaves_single_provider() -> None:
    r = judge_provider_dependency(
        spec().workload.spec, healthy(), [], {"fallback": ["refusals: primary 0%, fallback 30%"]}
    )
    assert r.status == "FAIL"
    assert r.reason == "Provider dependency: single provider: anthropic; single cloud: aws"
    assert any("did not reproduce the primary's refusals" in f.message for f in r.findings)


def test_same_cloud_fails_where_clouds_declared() -> None:
    doc = example_doc()
    doc["spec"]["models"][1]["cloud"] = "aws"
    r = judge_provider_dependency(resolved_from(doc).workload.spec, healthy(), ["fallback"], {})
    assert r.status == "FAIL" and "single cloud: aws" in r.reason


def test_azure_openai_counts_as_openai() -> None:
    doc = example_doc()
    doc["spec"]["models"][0].update(provider="azure-openai", endpoint="https://x.openai.azure.com")
    r = judge_provider_dependency(resolved_from(doc).workload.spec, healthy(), ["fallback"], {})
    assert r.status == "FAIL" and r.reason.endswith("single provider: openai")


# --- evidence, acceptances, decision --------------------------------------------------------------------


def test_evidence_unsigned_reads_as_design() -> None:
    assert judge_evidence([], None).reason == "Evidence package: incomplete (unsigned)"
    r = judge_evidence(["no expiry"], "abc")
    assert r.status == "FAIL" and r.reason == "Evidence package: incomplete (no expiry)"
    assert judge_evidence([], "0123456789abcdef0123").status == "PASS"


def _acc(gate: str, days: int, who: str = "ciso@example.com") -> RiskAcceptance:
    return RiskAcceptance(
        gate=gate, reason="second provider contracted for Q1", expires=T0 + timedelta(days=days), accepted_by=who
    )  # type: ignore[arg-type]


def test_active_acceptance_turns_fail_into_accepted() -> None:
    fail = GateResult(
        gate="providerDependency", status="FAIL", reason="Provider dependency: single provider: anthropic"
    )
    [r] = apply_acceptances([fail], [_acc("providerDependency", 10)], T0)
    assert r.status == "ACCEPTED"
    assert r.acceptance == {
        "reason": "second provider contracted for Q1",
        "acceptedBy": "ciso@example.com",
        "expires": "2026-12-07T12:00:00Z",
    }
    assert decide([r]) == "PASS"


def test_expired_acceptance_counts_for_nothing_and_says_so() -> None:
    fail = GateResult(gate="cost", status="FAIL", reason="over")
    [r] = apply_acceptances([fail], [_acc("cost", -1)], T0)
    assert r.status == "FAIL"
    assert any("expired at 2026-11-26T12:00:00Z" in f.message for f in r.findings)


def test_error_is_never_accepted_and_never_passes() -> None:
    err = GateResult(gate="cost", status="ERROR", reason="stopped")
    [r] = apply_acceptances([err], [_acc("cost", 10)], T0)
    assert r.status == "ERROR"
    assert decide([r]) == "FAIL"
    assert decide([]) == "FAIL"


def test_budget_exhausted_run_is_error_with_spend() -> None:
    m = healthy(
        budget_exhausted=True, spent_usd=4.98, aborted="stopped at budget.gateRunMaxUSD $5.00 after spending $4.98"
    )
    results = judge_measured(spec(), m, assumed_timeout_ms=5000)
    by = {r.gate: r for r in results}
    assert [by[g].status for g in ("cost", "reliability", "fallback")] == ["ERROR"] * 3
    assert by["cost"].metrics["spentUSD"] == 4.98
    assert "$4.98" in by["cost"].reason


def test_healthy_remediated_workload_passes_five_measured_gates() -> None:
    results = judge_measured(spec(), healthy(), assumed_timeout_ms=5000)
    assert [(r.gate, r.status) for r in results] == [
        ("cost", "PASS"),
        ("reliability", "PASS"),
        ("fallback", "PASS"),
        ("toolControl", "PASS"),
        ("providerDependency", "PASS"),
    ]
