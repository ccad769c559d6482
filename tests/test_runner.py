"""The load driver against the simulator: baseline figures, retries, budget, fallback path per fault mode,
human route, and that no API key leaks into measurements or progress output."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from aigate.api.models import AIWorkloadSpec
from aigate.gates.reliability import load_text
from aigate.measurements import FAULT_MODES
from aigate.probes.runner import RunOptions, arrival_offsets, concurrency_for, effective_timeout_ms, run_workload
from probes_support import (
    ANSWER,
    CANARY,
    CASES,
    key_echo_server,
    keys,
    model,
    pricing,
    queue_server,
    sim_model,
    simulator,
    workload,
)

FAST = RunOptions(fault_retry_after_s=0.01, progress_every_s=0)


def _fast() -> dict[str, Any]:
    return {"fault_retry_after_s": 0.01, "progress_every_s": 0}


def spec_of(**traffic: Any) -> AIWorkloadSpec:
    return workload(
        [model("p", "anthropic", "claude-sonnet-4-5", "http://x")],
        traffic={"requestsPerDay": 1000, **traffic},
        slo={"p95LatencyMs": 4000},
    ).workload.spec


def test_concurrency_from_traffic_and_slo() -> None:
    assert concurrency_for(spec_of(peakRequestsPerSecond=5)) == 20  # 5 rps x 4 s
    assert concurrency_for(spec_of(peakRequestsPerSecond=0.1)) == 1
    assert concurrency_for(spec_of(peakRequestsPerSecond=50, maxTestConcurrency=16)) == 16
    assert concurrency_for(spec_of(peakRequestsPerSecond=50), override=3) == 3


def test_timeout_declared_or_assumed() -> None:
    s = spec_of(peakRequestsPerSecond=1)
    assert effective_timeout_ms(s, RunOptions()) == (8000, True)
    assert effective_timeout_ms(s, RunOptions(default_timeout_ms=5000)) == (5000, True)
    s.slo.timeout_ms = 3000
    assert effective_timeout_ms(s, RunOptions(default_timeout_ms=5000)) == (3000, False)


async def test_baseline_every_model_with_cost_usage_identity() -> None:
    with simulator(
        {
            "claude-sonnet-4-5": sim_model("anthropic"),
            "gpt-4.1-mini": sim_model("openai", systemFingerprint="fp_sim_1", latency={"fixedMs": 8}),
        }
    ) as url:
        resolved = workload(
            [
                model("primary", "anthropic", "claude-sonnet-4-5", url, credentials={"env": "A"}),
                model("backup", "openai-compatible", "gpt-4.1-mini", url, role="fallback", pricing=pricing(1, 2)),
            ],
            cases=CASES,
            repeats=2,
        )
        m = await run_workload(resolved, keys(resolved), options=RunOptions(run_faults=False))
    assert set(m.models) == {"primary", "backup"}
    primary, backup = m.models["primary"], m.models["backup"]
    assert [(r.case, r.repeat) for r in primary.runs] == [
        ("summarize", 0),
        ("risk", 0),
        ("summarize", 1),
        ("risk", 1),
    ]
    assert all(r.ok and r.passed for r in primary.runs + backup.runs)
    assert primary.price is not None and primary.price.source == "genai-prices 0.2.3"
    assert backup.price is not None and backup.price.source == "spec"
    run = primary.runs[0]
    assert (run.usage.input_tokens, run.usage.output_tokens, run.usage.estimated) == (100, 20, False)
    assert run.cost_usd == pytest.approx((100 * 3 + 20 * 15) / 1e6)
    assert backup.runs[0].cost_usd == pytest.approx((100 * 1 + 20 * 2) / 1e6)
    assert m.spent_usd == pytest.approx(4 * (100 * 3 + 20 * 15) / 1e6 + 4 * (100 * 1 + 20 * 2) / 1e6)
    assert [a.name for a in run.assertions] == ["jsonSchema"]
    assert backup.identities and backup.identities[0].system_fingerprint == "fp_sim_1"
    assert backup.identities[0].requested == "gpt-4.1-mini"
    assert all(r.latency_ms >= 5 for r in primary.runs) and all(r.latency_ms >= 8 for r in backup.runs)
    assert m.timeout_ms == 400 and m.timeout_assumed is False
    assert m.faults == [] and not m.budget_exhausted and m.aborted is None


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
async def test_streaming_records_ttft(provider: str) -> None:
    model_id = "claude-sonnet-4-5" if provider == "anthropic" else "gpt-4.1-mini"
    with simulator({model_id: sim_model(provider, ttftMs=3, latency={"fixedMs": 10})}) as url:
        resolved = workload(
            [
                model(
                    "p",
                    provider if provider == "anthropic" else "openai-compatible",
                    model_id,
                    url,
                    stream=True,
                    pricing=pricing(1, 1),
                )
            ]
        )
        m = await run_workload(resolved, keys(resolved), options=RunOptions(run_faults=False))
    run = m.models["p"].runs[0]
    assert run.ok and run.text == ANSWER
    assert run.ttft_ms is not None and 0 < run.ttft_ms <= run.latency_ms
    assert run.usage.output_tokens == 20 and not run.usage.estimated


async def test_missing_usage_is_estimated() -> None:
    with simulator({"gpt-4.1-mini": sim_model("openai", omitUsage=True)}) as url:
        resolved = workload([model("p", "openai-compatible", "gpt-4.1-mini", url, pricing=pricing(1, 1))], prompt="")
        m = await run_workload(resolved, keys(resolved), options=RunOptions(run_faults=False))
    run = m.models["p"].runs[0]
    assert run.usage.estimated is True
    assert run.usage.input_tokens == 3  # "say hello": 9 chars / 4, rounded up
    assert run.usage.output_tokens == -(-len(ANSWER) // 4)


async def test_retries_honour_retry_after() -> None:
    profile = sim_model("openai", errors={"429": 1.0}, retryAfterSeconds=0.3)
    with simulator({"gpt-4.1-mini": profile}) as url:
        resolved = workload(
            [model("p", "openai-compatible", "gpt-4.1-mini", url, pricing=pricing(1, 1))],
            fallback={"retries": {"attempts": 2, "backoffMs": 1}},
            slo={"p95LatencyMs": 500, "timeoutMs": 2000},
        )
        m = await run_workload(resolved, keys(resolved), options=RunOptions(run_faults=False))
    run = m.models["p"].runs[0]
    assert not run.ok and run.error == "http_429"
    assert len(run.attempts) == 3 and run.retries == 2
    assert [a.status for a in run.attempts] == [429, 429, 429]
    # two waits of Retry-After (0.3 s), not of the 1 ms backoff
    assert run.latency_ms >= 600


async def test_4xx_is_not_retried() -> None:
    with key_echo_server() as url:
        resolved = workload(
            [model("p", "openai-compatible", "gpt-4.1-mini", url, pricing=pricing(1, 1))],
            fallback={"retries": {"attempts": 3, "backoffMs": 1}},
        )
        m = await run_workload(resolved, keys(resolved), options=RunOptions(run_faults=False))
    run = m.models["p"].runs[0]
    assert run.error == "http_4xx" and len(run.attempts) == 1


async def test_budget_stops_before_the_limit() -> None:
    # worst case per request: 10 max_tokens x $0.01 = $0.10 (+ ~0 input); each one really costs 5 x $0.01
    profile = sim_model("openai", usage={"inputTokens": 0, "outputTokens": 5})
    with simulator({"gpt-4.1-mini": profile}) as url:
        resolved = workload(
            [model("p", "openai-compatible", "gpt-4.1-mini", url, maxTokens=10, pricing=pricing(0, 10_000))],
            repeats=10,
            budget={"monthlyUSD": 100, "gateRunMaxUSD": 0.32},
        )
        m = await run_workload(resolved, keys(resolved), options=RunOptions(concurrency=1, run_faults=False))
    runs = m.models["p"].runs
    # 0.05 spent per request; the 6th could reach 0.25 + 0.10 > 0.32, so it is not sent
    assert len(runs) == 5
    assert m.spent_usd == pytest.approx(0.25)
    assert m.spent_usd <= 0.32
    assert m.budget_exhausted is True
    assert m.aborted is not None and "$0.2500" in m.aborted and "$0.32" in m.aborted


async def test_budget_exhausted_skips_later_models_and_faults() -> None:
    profile = sim_model("openai", usage={"inputTokens": 0, "outputTokens": 5})
    with simulator({"gpt-4.1-mini": profile}) as url:
        resolved = workload(
            [
                model("p", "openai-compatible", "gpt-4.1-mini", url, maxTokens=10, pricing=pricing(0, 10_000)),
                model("f", "openai-compatible", "gpt-4.1-mini", url, role="fallback", pricing=pricing(0, 10_000)),
            ],
            repeats=3,
            budget={"monthlyUSD": 100, "gateRunMaxUSD": 0.2},
        )
        m = await run_workload(resolved, keys(resolved), options=RunOptions(concurrency=1))
    assert m.budget_exhausted and "f" not in m.models and m.faults == []


def _two_model_workload(url: str, **extra: Any) -> Any:
    return workload(
        [
            model("primary", "anthropic", "claude-sonnet-4-5", url, pricing=pricing(1, 1)),
            model("backup", "openai-compatible", "gpt-4.1-mini", url, role="fallback", pricing=pricing(1, 1)),
        ],
        cases=CASES,
        fallback={"retries": {"attempts": 1, "backoffMs": 1}, **extra},
        slo={"p95LatencyMs": 200, "timeoutMs": 150},
    )


async def test_fault_on_primary_fallback_model_serves_every_mode() -> None:
    with simulator({"claude-sonnet-4-5": sim_model("anthropic"), "gpt-4.1-mini": sim_model("openai")}) as url:
        resolved = _two_model_workload(url)
        m = await run_workload(resolved, keys(resolved), options=FAST)
    assert [f.mode for f in m.faults] == list(FAULT_MODES)
    kinds = {
        "timeout": "timeout",
        "http_5xx": "http_5xx",
        "http_429": "http_429",
        "connection_reset": "connection",
        "malformed_body": "malformed",
    }
    for run in m.faults:
        assert len(run.outcomes) == len(CASES)
        for o in run.outcomes:
            assert o.served_by == "model:backup", (run.mode, o)
            assert o.valid, (run.mode, o)
            kind = kinds[run.mode]
            assert o.path == [f"primary:{kind}", f"primary:{kind}", "model:backup:ok"]
            assert o.latency_ms <= 450  # within 3 x timeout
    timeout_run = next(f for f in m.faults if f.mode == "timeout")
    assert all(o.latency_ms >= 300 for o in timeout_run.outcomes)  # two attempts hung until the 150 ms timeout


async def test_fault_with_invalid_fallback_answer_is_not_valid() -> None:
    bad = sim_model("openai", responses=[{"match": {"regex": ".*"}, "content": "I cannot help with that."}])
    with simulator({"claude-sonnet-4-5": sim_model("anthropic"), "gpt-4.1-mini": bad}) as url:
        resolved = _two_model_workload(url)
        options = RunOptions(fault_modes=("http_5xx",), fault_retry_after_s=0)
        m = await run_workload(resolved, keys(resolved), options=options)
    outcomes = {o.case: o for o in m.faults[0].outcomes}
    assert outcomes["summarize"].served_by == "model:backup" and not outcomes["summarize"].valid
    assert outcomes["summarize"].detail.startswith("answer failed: jsonSchema (not JSON")


async def test_no_fallback_model_ends_in_safe_stop() -> None:
    with simulator({"claude-sonnet-4-5": sim_model("anthropic")}) as url:
        resolved = workload(
            [model("primary", "anthropic", "claude-sonnet-4-5", url, pricing=pricing(1, 1))],
            fallback={"safeStop": {"message": "Routed to an analyst."}},
        )
        m = await run_workload(resolved, keys(resolved), options=FAST)
    for run in m.faults:
        (o,) = run.outcomes
        assert (o.served_by, o.valid, o.path[-1]) == ("safeStop", True, "safeStop")


async def test_no_fallback_path_at_all_serves_none() -> None:
    with simulator({"claude-sonnet-4-5": sim_model("anthropic")}) as url:
        resolved = workload([model("primary", "anthropic", "claude-sonnet-4-5", url, pricing=pricing(1, 1))])
        m = await run_workload(
            resolved, keys(resolved), options=RunOptions(fault_modes=("http_5xx", "connection_reset"))
        )
    for run in m.faults:
        (o,) = run.outcomes
        assert o.served_by == "none" and not o.valid
        assert o.detail.startswith("no path served the case")


async def test_human_route_acknowledges_before_safe_stop() -> None:
    with simulator({"claude-sonnet-4-5": sim_model("anthropic")}) as url, queue_server(202) as (queue, tickets):
        resolved = workload(
            [model("primary", "anthropic", "claude-sonnet-4-5", url, pricing=pricing(1, 1))],
            fallback={"humanRoute": {"url": queue}, "safeStop": {"message": "stop"}},
        )
        m = await run_workload(resolved, keys(resolved), options=RunOptions(fault_modes=("http_5xx",)))
    assert m.human_route is not None and m.human_route.acknowledged and m.human_route.status == 202
    assert len(tickets) == 1 and tickets[0]["workload"] == "probe-test" and tickets[0]["probe"] is True
    (o,) = m.faults[0].outcomes
    assert o.served_by == "humanRoute" and o.valid and o.path[-1] == "humanRoute:acknowledged"


async def test_human_route_refusing_falls_to_safe_stop() -> None:
    with simulator({"claude-sonnet-4-5": sim_model("anthropic")}) as url, queue_server(503) as (queue, _):
        resolved = workload(
            [model("primary", "anthropic", "claude-sonnet-4-5", url, pricing=pricing(1, 1))],
            fallback={"humanRoute": {"url": queue}, "safeStop": {"message": "stop"}},
        )
        m = await run_workload(resolved, keys(resolved), options=RunOptions(fault_modes=("http_5xx",)))
    assert m.human_route is not None and not m.human_route.acknowledged and m.human_route.status == 503
    (o,) = m.faults[0].outcomes
    assert o.served_by == "safeStop" and o.path[-2:] == ["humanRoute:refused", "safeStop"]


async def test_open_loop_queue_time_counts_in_latency() -> None:
    with simulator({"gpt-4.1-mini": sim_model("openai", latency={"fixedMs": 40})}) as url:
        resolved = workload(
            [model("p", "openai-compatible", "gpt-4.1-mini", url, pricing=pricing(1, 1))],
            repeats=4,
            traffic={"requestsPerDay": 1000, "peakRequestsPerSecond": 1000},
        )
        m = await run_workload(resolved, keys(resolved), options=RunOptions(concurrency=1, run_faults=False))
    runs = m.models["p"].runs
    assert runs[0].queue_ms < 40
    # one slot, four requests due within 4 ms: the last waits for three answers of >= 40 ms
    assert runs[-1].queue_ms >= 100
    assert all(r.latency_ms >= r.queue_ms + 40 for r in runs)
    assert m.models["p"].concurrency == 1 and m.concurrency == 1


async def test_default_timeout_is_assumed_and_recorded() -> None:
    with simulator({"gpt-4.1-mini": sim_model("openai")}) as url:
        resolved = workload(
            [model("p", "openai-compatible", "gpt-4.1-mini", url, pricing=pricing(1, 1))],
            slo={"p95LatencyMs": 300},
        )
        m = await run_workload(resolved, keys(resolved), options=RunOptions(run_faults=False))
    assert m.timeout_ms == 600 and m.timeout_assumed is True


async def test_canary_key_never_in_measurements_or_progress() -> None:
    lines: list[str] = []
    with simulator({"gpt-4.1-mini": sim_model("openai")}) as url, key_echo_server() as echo:
        resolved = workload(
            [
                model("primary", "anthropic", "claude-sonnet-4-5", echo, credentials={"env": "K"}),
                model(
                    "backup",
                    "openai-compatible",
                    "gpt-4.1-mini",
                    url,
                    role="fallback",
                    credentials={"env": "K"},
                    pricing=pricing(1, 1),
                ),
                model(
                    "azure",
                    "azure-openai",
                    "dep",
                    echo,
                    role="fallback",
                    credentials={"env": "K"},
                    pricing=pricing(1, 1),
                ),
            ],
            fallback={"retries": {"attempts": 1, "backoffMs": 1}},
        )
        creds = {"primary": CANARY, "backup": CANARY, "azure": CANARY}
        m = await run_workload(resolved, creds, options=FAST, progress=lines.append)
    assert m.models["primary"].runs[0].error == "http_4xx"
    assert "invalid x-api-key" in m.models["primary"].runs[0].error_detail
    assert m.models["azure"].runs[0].error == "http_4xx"
    dumped = m.model_dump_json()
    assert CANARY not in dumped
    assert not any(CANARY in line for line in lines)
    assert any(re.fullmatch(r"baseline primary: 1/1 cases, \d+\.\ds", line) for line in lines)
    assert any(line.startswith("fallback timeout: 1/1 cases") for line in lines)


def test_poisson_arrivals_are_seeded_exponential_gaps_at_the_rate() -> None:
    offsets = arrival_offsets(4000, 5.0, "poisson", seed=3)
    assert offsets == arrival_offsets(4000, 5.0, "poisson", seed=3) and offsets[0] == 0.0
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    mean = sum(gaps) / len(gaps)
    sd = (sum((g - mean) ** 2 for g in gaps) / len(gaps)) ** 0.5
    # exponential gaps: mean 1/rate and a standard deviation as large as the mean (uniform gaps have none)
    assert mean == pytest.approx(0.2, rel=0.05) and sd == pytest.approx(0.2, rel=0.1)
    assert arrival_offsets(4, 5.0, "uniform", seed=3) == [0.0, 0.2, 0.4, 0.6]


async def test_poisson_arrivals_show_queueing_that_even_gaps_hide() -> None:
    """At 10 rps a 40 ms answer never overlaps the next with even 100 ms gaps; Poisson gaps shorter than 40 ms
    (a third of them) make requests wait for the one slot, as callers do in production."""
    with simulator({"gpt-4.1-mini": sim_model("openai", latency={"fixedMs": 40})}) as url:
        resolved = workload(
            [model("p", "openai-compatible", "gpt-4.1-mini", url, pricing=pricing(1, 1))],
            cases=CASES,
            repeats=15,
            traffic={"requestsPerDay": 1000, "peakRequestsPerSecond": 10},
        )
        opts = RunOptions(concurrency=1, run_faults=False, arrival_seed=11)
        m = await run_workload(resolved, keys(resolved), options=opts)
    assert (m.arrivals, m.arrival_rate_rps) == ("poisson", 10)
    offsets = arrival_offsets(30, 10.0, "poisson", seed=11)
    short = [i for i in range(1, 30) if offsets[i] - offsets[i - 1] < 0.02]
    assert short, "the seeded schedule has gaps under 20 ms"
    runs = m.models["p"].runs
    # a request due less than 20 ms after one that takes >= 40 ms waits at least 20 ms for the slot
    assert all(runs[i].queue_ms >= 20 for i in short)
    assert load_text(m) == "open loop, poisson arrivals at 10 rps, at most 1 in flight"


async def test_stop_on_error_rate_stops_the_run_and_says_which() -> None:
    """Half the requests fail: with suite.stopOnErrorRate 0.2 the run stops once 10 have answered, sends no more,
    skips the later model and the fault injection, and says why; the budget did not stop it."""
    flaky = sim_model("openai", errors={500: 0.5})
    with simulator({"gpt-4.1-mini": flaky, "gpt-4.1": sim_model("openai")}) as url:
        resolved = workload(
            [
                model("p", "openai-compatible", "gpt-4.1-mini", url, pricing=pricing(1, 1)),
                model("f", "openai-compatible", "gpt-4.1", url, role="fallback", pricing=pricing(1, 1)),
            ],
            cases=CASES,
            repeats=30,
            fallback={"safeStop": {"message": "to a person"}},
        )
        resolved.workload.spec.suite.stop_on_error_rate = 0.2
        m = await run_workload(resolved, keys(resolved), options=RunOptions(concurrency=1, **_fast()))
    runs = m.models["p"].runs
    assert m.stopped_by == "errorRate" and m.budget_exhausted is False
    assert 10 <= len(runs) < 60 and "f" not in m.models and m.faults == []
    errors = sum(1 for r in runs if not r.ok)
    assert errors / len(runs) > 0.2
    assert m.aborted is not None and m.aborted.startswith("suite.stopOnErrorRate 0.2 passed on p: ")
    assert "stopped before p case" in m.aborted
