"""Streaming latency against the simulator: time to first token and inter-token latency judged against their SLOs,
a stream that stalls mid-answer tried as a fault on the fallback path, goodput and tokens/s in every report and
the evidence."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from aigate.gates.reliability import judge_reliability
from aigate.pipeline import CheckOptions, run_check
from aigate.probes.runner import RunOptions, run_workload
from aigate.report import render
from probes_support import CANARY, model, simulator, workload

ANSWER = '{"risk": "low", "summary": "a purchase abroad that matches the travel notice on file"}'
PRICE = {"inputPerMTokUSD": 1, "outputPerMTokUSD": 2}
KEY = {"env": "SIM_KEY"}


def sim(provider: str, **extra: Any) -> dict[str, Any]:
    return {
        "provider": provider,
        "usage": {"inputTokens": 100, "outputTokens": 40},
        "streamChunkChars": 8,
        "responses": [{"content": ANSWER}],
        **extra,
    }


def streaming_workload(url: str, slo: dict[str, Any], repeats: int = 10, **extra: Any) -> Any:
    return workload(
        [
            model("primary", "anthropic", "claude-haiku-4-5", url, stream=True, pricing=PRICE, credentials=KEY),
            model(
                "fallback",
                "openai-compatible",
                "gpt-4.1",
                url + "/v1",
                role="fallback",
                stream=True,
                pricing=PRICE,
                credentials=KEY,
            ),
        ],
        repeats=repeats,
        slo={"timeoutMs": 1000, "maxErrorRate": 0.05, **slo},
        fallback={"safeStop": {"message": "to a person"}},
        traffic={"requestsPerDay": 1000, "peakRequestsPerSecond": 100},
        **extra,
    )


async def test_a_slow_first_token_fails_ttft_p95() -> None:
    """400 ms to the first token against a 150 ms SLO: even the lower bound on the p95 is above it. The overall
    latency (450 ms) is within its SLO, so only the streaming SLO fails."""
    models = {
        "claude-haiku-4-5": sim("anthropic", ttftMs=400, latency={"fixedMs": 450}),
        "gpt-4.1": sim("openai", latency={"fixedMs": 20}),
    }
    with simulator(models) as url:
        resolved = streaming_workload(url, {"p95LatencyMs": 2000, "ttftP95Ms": 150, "itlP95Ms": 100})
        m = await run_workload(resolved, {"primary": CANARY, "fallback": CANARY}, options=RunOptions(run_faults=False))
    r = judge_reliability(resolved.workload.spec, m)
    assert r.status == "FAIL"
    codes = [f.code for f in r.findings if f.severity == "fail"]
    assert codes == ["reliability.ttftP95"], r.reason
    assert r.reason.startswith("p95 time to first token: ") and "above threshold 150 ms (10 samples" in r.reason
    assert 400 <= r.metrics["p50TtftMs"] < 1000
    # 40 output tokens in ~8-char chunks over the 50 ms after the first: a few ms between chunks
    assert 0 < r.metrics["p50ItlMs"] < 100 and r.metrics["tokensPerSecondP50"] > 40
    assert r.metrics["goodput"] == 0.0  # every answer missed the ttft SLO


async def test_a_stalled_stream_drives_the_fallback_and_the_simulator_stalls() -> None:
    models = {
        "claude-haiku-4-5": sim("anthropic", latency={"fixedMs": 20}),
        "gpt-4.1": sim("openai", latency={"fixedMs": 20}),
    }
    with simulator(models) as url:
        resolved = streaming_workload(url, {"p95LatencyMs": 2000}, repeats=1)
        opts = RunOptions(fault_retry_after_s=0.01)
        m = await run_workload(resolved, {"primary": CANARY, "fallback": CANARY}, options=opts)
    stall = next(f for f in m.faults if f.mode == "stream_stall")
    assert [f.mode for f in m.faults][-1] == "stream_stall"
    for o in stall.outcomes:
        assert o.served_by == "model:fallback" and o.valid, o
        assert o.path[0] == "primary:timeout" and o.latency_ms >= 1000  # waited out the declared timeout
    # the simulator's own stall: half the answer, then nothing until the client gives up
    stalling = {"claude-haiku-4-5": sim("anthropic", latency={"fixedMs": 20}, stallRate=1.0)}
    with simulator(stalling) as url:
        resolved = workload(
            [model("primary", "anthropic", "claude-haiku-4-5", url, stream=True, pricing=PRICE)],
            slo={"p95LatencyMs": 400, "timeoutMs": 300},
        )
        m = await run_workload(resolved, {"primary": CANARY}, options=RunOptions(run_faults=False))
    [run] = m.models["primary"].runs
    assert not run.ok and run.error == "timeout" and run.latency_ms >= 300


async def test_goodput_and_tokens_per_second_in_every_format_and_the_evidence(tmp_path: Path) -> None:
    models = {
        "claude-haiku-4-5": sim("anthropic", ttftMs=20, latency={"fixedMs": 60}),
        "gpt-4.1": sim("openai", latency={"fixedMs": 20}),
    }
    with simulator(models) as url:
        resolved = streaming_workload(url, {"p95LatencyMs": 2000, "ttftP95Ms": 500, "itlP95Ms": 200}, repeats=60)
        a = await run_check(resolved, CheckOptions(environ={"SIM_KEY": CANARY}))
    rel = a.gate("reliability")
    assert rel.status == "PASS", rel.reason
    assert a.gate("fallback").status == "PASS", a.gate("fallback").reason
    assert rel.metrics["goodput"] > 0.9 and rel.metrics["p95TtftMsVerdict"] == "pass"
    text, md = render(a, "text"), render(a, "markdown")
    for out in (text, md):
        assert "Goodput: " in out and "output tokens/s per request (p50)" in out
        assert "Streaming: time to first token p50 " in out and "inter-token latency p50 " in out
    doc = json.loads(render(a, "json"))
    rel_doc = next(g for g in doc["gates"] if g["gate"] == "reliability")
    assert rel_doc["metrics"]["goodput"] == rel.metrics["goodput"] and rel_doc["metrics"]["tokensPerSecondP50"] > 0
    junit = ET.fromstring(render(a, "junit"))
    names = {p.get("name") for p in junit.findall(".//testcase[@name='reliability']/properties/property")}
    assert {"goodput", "tokensPerSecondP50", "p95TtftMs", "p95ItlMs"} <= names
    from aigate.pipeline import judge

    _, predicate, _ = judge(resolved, a.measurements, now=a.generated_at, key_id=None)
    signed = predicate.to_json()
    rel_signed = next(g for g in signed["gates"] if g["gate"] == "reliability")
    assert rel_signed["metrics"]["goodput"] == rel.metrics["goodput"]
    assert {"metric": "ttftP95Ms", "threshold": 500.0, "comparison": "<="} in signed["monitoring"]
    assert "stream_stall" in signed["faultModes"]["required"] and "stream_stall" in signed["faultModes"]["tried"]
