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
from aigate.gates.stats import judge_percentile, order_statistic_ranks, percentile, samples_for_upper_bound
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
    """n runs over the ten cases c0..c9, repeat after repeat."""
    return [run(f"c{i % 10}", name, repeat=i // 10, **kw) for i in range(n)]  # type: ignore[arg-type]


def healthy(**kw: object):  # type: ignore[no-untyped-def]
    return measurements(
        {
            # 60 samples: enough to judge a p95 (59 at least, gates.numbers.PERCENTILE_CONFIDENCE)
            "primary": model("primary", good_runs("primary", 60), provider="anthropic"),
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


def test_cost_gate_judges_the_upper_end_of_the_projected_range() -> None:
    """Costs alternate $0.01 and $0.03: the mean ($0.02 x 600,000 requests = $12,000) is within a $12,500 budget,
    the one-sided 95% upper bound from the run's own variance is not."""
    m = healthy()
    m.models["primary"] = model(
        "primary", [run(f"c{i % 10}", "primary", repeat=i // 10, cost=0.01 if i % 2 else 0.03) for i in range(60)]
    )
    r = judge_cost(spec(budget={"monthlyUSD": 12500}).workload.spec, m)
    costs = [0.01 if i % 2 else 0.03 for i in range(60)]
    mean = sum(costs) / 60
    sd = (sum((c - mean) ** 2 for c in costs) / 59) ** 0.5
    high = (mean + 1.6448536 * sd / 60**0.5) * 600_000
    assert r.metrics["projectedMonthlyUSD"] == pytest.approx(12_000)
    assert r.metrics["judgedMonthlyUSD"] == pytest.approx(high, abs=0.01) and high > 12_500
    assert r.metrics["projectedMonthlyRangeUSD"][0] == pytest.approx(24_000 - high, abs=0.01)
    assert r.status == "FAIL"
    assert (
        f"Projected monthly cost: ${high:,.0f} = 1.1x target $12,500 (the upper end of $10,715-${high:,.0f}, "
        in r.reason
    )
    assert "the run's 95% range around the mean $12,000, is judged)" in r.reason


def test_p95_cost_per_request_above_cap_fails() -> None:
    m = healthy()
    expensive = [run(f"c{i}", "primary", cost=0.9) for i in (7, 8, 9)]
    m.models["primary"] = model("primary", [*good_runs("primary", cost=0.002)[:7], *expensive])
    r = judge_cost(spec(budget={"monthlyUSD": 1e9, "maxCostPerRequestUSD": 0.05}).workload.spec, m)
    assert r.status == "FAIL"
    # 3 of 10 requests cost $0.90: even the lower bound on the p95 (the 8th smallest of 10) is above the cap
    assert r.reason.startswith(
        "p95 cost per request: $0.9000, above limit $0.0500 (10 samples, 95% bounds [$0.9000, unbounded])"
    )


def test_p95_cost_per_request_from_one_outlier_in_ten_is_insufficient_samples() -> None:
    """One expensive request of ten puts the point p95 above the cap, but ten samples cannot say where the p95 is."""
    m = healthy()
    m.models["primary"] = model("primary", [*good_runs("primary", cost=0.002)[:9], run("c9", "primary", cost=0.9)])
    r = judge_cost(spec(budget={"monthlyUSD": 1e9, "maxCostPerRequestUSD": 0.05}).workload.spec, m)
    assert (r.status, r.error_reason) == ("ERROR", "InsufficientSamples")
    assert r.metrics["p95CostPerRequestUSDSamples"] == 10
    assert r.metrics["p95CostPerRequestUSDInterval"] == [0.002, None]
    assert r.reason.startswith("InsufficientSamples: p95 cost per request: $0.4959 from 10 samples")
    assert (
        r.reason.endswith(
            "cannot be judged against limit $0.0500: InsufficientSamples; suite.repeats >= 6 "
            "(59 samples at 10 per repeat)"
        )
        or "suite.repeats >= " in r.reason
    ), r.reason


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
    assert r.reason == (
        "p95 latency: 6,130 ms, above threshold 4,000 ms (10 samples, 95% bounds [5,200 ms, unbounded])"
    )


def test_reliability_from_too_few_samples_is_insufficient_samples_with_the_repeats_needed() -> None:
    m = healthy()
    m.models["primary"] = model("primary", good_runs("primary", 24))
    r = judge_reliability(spec().workload.spec, m)
    assert (r.status, r.error_reason) == ("ERROR", "InsufficientSamples")
    # 24 samples of 1,000 ms: no upper bound on the p95 exists below 59 samples; 10 cases a repeat -> 6 repeats
    assert r.reason == (
        "InsufficientSamples: p95 latency: 1,000 ms from 24 samples, 95% bounds [1,000 ms, unbounded], cannot be "
        "judged against threshold 4,000 ms: InsufficientSamples; suite.repeats >= 6 (59 samples at 10 per repeat)"
    )
    assert r.metrics["p95LatencyMsSamples"] == 24 and r.metrics["p95LatencyMsInterval"] == [1000.0, None]
    # with enough repeats the same workload is judged
    m.models["primary"] = model("primary", good_runs("primary", 60))
    r = judge_reliability(spec().workload.spec, m)
    assert r.status == "PASS" and r.metrics["p95LatencyMsInterval"] == [1000.0, 1000.0]
    assert "60 samples, 95% bounds [1,000 ms, 1,000 ms]" in r.reason


def test_exact_order_statistic_bounds() -> None:
    # Binomial(n, 0.95): the ranks each side holds with probability >= 95%
    assert order_statistic_ranks(24, 95, 0.95) == (21, None)
    assert order_statistic_ranks(64, 95, 0.95) == (58, 64)
    assert samples_for_upper_bound(95, 0.95) == 59 and samples_for_upper_bound(99, 0.95) == 299
    # a straddling interval: the share within the ceiling measured (90%) decides how many samples would settle it
    values = [100.0] * 93 + [900.0] * 7
    j = judge_percentile(values, 95, 500.0, 0.95, 10_000)
    assert (j.verdict, j.lower, j.upper) == ("insufficient", 100.0, 900.0)
    assert j.samples_needed is not None and j.samples_needed > 100
    assert judge_percentile([100.0] * 90 + [900.0] * 10, 95, 500.0, 0.95, 10_000).verdict == "fail"


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


def test_budget_stop_says_so_with_what_was_measured() -> None:
    m = healthy(
        budget_exhausted=True, stopped_by="budget", spent_usd=4.98, aborted="budget.gateRunMaxUSD $5.00 reached"
    )
    by = {r.gate: r for r in judge_measured(spec(), m, assumed_timeout_ms=5000)}
    for gate in ("cost", "reliability", "fallback"):
        assert (by[gate].status, by[gate].error_reason) == ("ERROR", "StoppedEarly")
        assert [f.code for f in by[gate].findings] == ["run.budgetReached"]
        assert by[gate].metrics["stoppedBy"] == "budget"
        assert by[gate].metrics["measuredSoFar"]["primary"] == {
            "requests": 60,
            "errors": 0,
            "errorRate": 0,
            "passed": 60,
        }


def test_error_rate_stop_fails_reliability_on_what_was_measured() -> None:
    runs = [*good_runs("primary", 8), *[run(f"c{i}", "primary", ok=False) for i in (8, 9)]]
    m = healthy(stopped_by="errorRate", aborted="suite.stopOnErrorRate 0.1 passed on primary: 2/10 requests ...")
    m.models["primary"] = model("primary", runs)
    by = {r.gate: r for r in judge_measured(spec(), m, assumed_timeout_ms=5000)}
    rel = by["reliability"]
    assert rel.status == "FAIL" and "error rate: 20%, above 1% (http_5xx 2)" in rel.reason
    assert rel.findings[0].code == "run.errorRateReached"
    assert "suite.stopOnErrorRate 0.1 passed on primary" in rel.findings[0].message
    for gate in ("cost", "fallback"):
        assert (by[gate].status, by[gate].error_reason) == ("ERROR", "StoppedEarly")
        assert by[gate].metrics["measuredSoFar"]["primary"]["errorRate"] == 0.2
    # a run stopped by its error rate that measured no failure of the primary is not judged on it
    m.models["primary"] = model("primary", good_runs("primary", 60))
    rel = {r.gate: r for r in judge_measured(spec(), m, assumed_timeout_ms=5000)}["reliability"]
    assert (rel.status, rel.error_reason) == ("ERROR", "StoppedEarly")


def test_healthy_remediated_workload_passes_five_measured_gates() -> None:
    results = judge_measured(spec(), healthy(), assumed_timeout_ms=5000)
    assert [(r.gate, r.status) for r in results] == [
        ("cost", "PASS"),
        ("reliability", "PASS"),
        ("fallback", "PASS"),
        ("toolControl", "PASS"),
        ("providerDependency", "PASS"),
    ]
