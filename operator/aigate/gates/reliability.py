"""Reliability gate: latency, errors and answer quality of the primary at realistic concurrency."""

from __future__ import annotations

from collections.abc import Callable

from aigate.api.models import AIWorkloadSpec
from aigate.gates.numbers import MAX_REPEATS, PERCENTILE_CONFIDENCE, PERCENTILE_METHOD
from aigate.gates.result import Finding, FindingCode, GateResult
from aigate.gates.stats import PercentileJudgement, judge_percentile, ms, pct, percentile, rate
from aigate.measurements import CaseRun, Measurements

TIMEOUT_UNDEFINED = "Provider timeout behavior: undefined"


def load_text(m: Measurements) -> str:
    """Which loop drove the requests, as the reports say it."""
    if m.arrivals is None:
        return f"at most {m.concurrency} in flight"
    rate = f" at {m.arrival_rate_rps:g} rps" if m.arrival_rate_rps else ""
    return f"open loop, {m.arrivals} arrivals{rate}, at most {m.concurrency} in flight"


def tokens_per_second(r: CaseRun) -> float | None:
    """Output tokens per second of the answering attempt: over its generation (after the first token) when
    streamed, over the whole exchange otherwise."""
    if not r.ok or not r.attempts or r.usage.output_tokens <= 0:
        return None
    a = r.attempts[-1]
    seconds = (a.latency_ms - (a.ttft_ms or 0.0)) / 1000
    return r.usage.output_tokens / seconds if seconds > 0 else None


def met_latency_slos(spec: AIWorkloadSpec, r: CaseRun) -> bool:
    """An answer that met every latency SLO declared: what goodput counts."""
    slo = spec.slo
    if not r.ok or r.latency_ms > slo.p95_latency_ms:
        return False
    if slo.ttft_p95_ms is not None and (r.ttft_ms is None or r.ttft_ms > slo.ttft_p95_ms):
        return False
    return slo.itl_p95_ms is None or r.itl_ms is None or r.itl_ms <= slo.itl_p95_ms


def streaming_metrics(spec: AIWorkloadSpec, runs: list[CaseRun]) -> dict[str, object]:
    """Goodput and tokens/s for every primary; time to first token and inter-token latency for a streaming one."""
    out: dict[str, object] = {"goodput": round(rate(sum(1 for r in runs if met_latency_slos(spec, r)), len(runs)), 4)}
    tps = [t for t in (tokens_per_second(r) for r in runs) if t is not None]
    if tps:
        out["tokensPerSecondP50"] = round(percentile(tps, 50) or 0.0, 1)
    for key, values in (
        ("Ttft", [r.ttft_ms for r in runs if r.ok and r.ttft_ms is not None]),
        ("Itl", [r.itl_ms for r in runs if r.ok and r.itl_ms is not None]),
    ):
        if values:
            for q in (50, 95, 99):
                out[f"p{q}{key}Ms"] = round(percentile(values, q) or 0.0, 1)
    return out


def per_repeat(runs: list[CaseRun]) -> int:
    """Samples one more suite repeat adds: one per case."""
    return max(1, len({r.case for r in runs}))


def judged(values: list[float], ceiling: float, runs: list[CaseRun]) -> PercentileJudgement:
    """p95 of `values` against `ceiling`, with the samples it rests on and its interval."""
    return judge_percentile(values, 95, ceiling, PERCENTILE_CONFIDENCE, MAX_REPEATS * per_repeat(runs))


def repeats_needed(j: PercentileJudgement, runs: list[CaseRun]) -> str:
    """'suite.repeats >= 8' or why no repeat count will do."""
    if j.samples_needed is None:
        return f"more than suite.repeats {MAX_REPEATS} would be needed (the p95 sits at the limit)"
    per = per_repeat(runs)
    return f"suite.repeats >= {-(-j.samples_needed // per)} ({j.samples_needed} samples at {per} per repeat)"


def insufficient_message(
    what: str, j: PercentileJudgement, ceiling: str, fmt: Callable[[float], str], runs: list[CaseRun]
) -> str:
    return (
        f"{what}: {fmt(j.value or 0.0)} from {j.interval_text(fmt)}, cannot be judged against {ceiling}: "
        f"InsufficientSamples; {repeats_needed(j, runs)}"
    )


def judge_reliability(spec: AIWorkloadSpec, m: Measurements) -> GateResult:
    primary = m.models.get(spec.primary.name)
    if primary is None or not primary.runs:
        return GateResult(gate="reliability", status="ERROR", reason="Reliability: no measurements of the primary")
    runs = primary.runs
    slo = spec.slo
    p50 = percentile([r.latency_ms for r in runs], 50) or 0.0
    latency = judged([r.latency_ms for r in runs], slo.p95_latency_ms, runs)
    p95 = latency.value or 0.0
    p99 = percentile([r.latency_ms for r in runs], 99) or 0.0
    ttfts = [r.ttft_ms for r in runs if r.ok and r.ttft_ms is not None]
    error_rate = rate(sum(1 for r in runs if not r.ok), len(runs))
    pass_rate = rate(sum(1 for r in runs if r.passed), len(runs))
    metrics: dict[str, object] = {
        "requests": len(runs),
        "concurrency": primary.concurrency,
        "p50LatencyMs": round(p50, 1),
        "p95LatencyMs": round(p95, 1),
        "p99LatencyMs": round(p99, 1),
        "p95LatencyTargetMs": slo.p95_latency_ms,
        **latency.metrics("p95LatencyMs"),
        "percentileMethod": PERCENTILE_METHOD,
        "errorRate": round(error_rate, 4),
        "passRate": round(pass_rate, 4),
        "timeoutMs": slo.timeout_ms,
        "meanQueueMs": round(sum(r.queue_ms for r in runs) / len(runs), 2),
        "load": load_text(m),
    }
    metrics.update(streaming_metrics(spec, runs))
    fails: list[tuple[FindingCode, str]] = []
    undecided: list[str] = []
    if latency.verdict == "fail":
        fails.append(
            (
                "reliability.p95Latency",
                f"p95 latency: {ms(p95)}, above threshold {ms(slo.p95_latency_ms)} ({latency.interval_text(ms)})",
            )
        )
    elif latency.verdict == "insufficient":
        undecided.append(insufficient_message("p95 latency", latency, f"threshold {ms(slo.p95_latency_ms)}", ms, runs))
    streamed: tuple[tuple[FindingCode, str, list[float], float | None], ...] = (
        ("reliability.ttftP95", "p95 time to first token", ttfts, slo.ttft_p95_ms),
        (
            "reliability.itlP95",
            "p95 inter-token latency",
            [r.itl_ms for r in runs if r.ok and r.itl_ms is not None],
            slo.itl_p95_ms,
        ),
    )
    for code, label, values, ceiling in streamed:
        if ceiling is None:
            continue
        if not spec.primary.stream:
            fails.append((code, f"{label}: not measured: the primary does not stream (set models[].stream: true)"))
            continue
        j = judged(values, ceiling, runs)
        metrics.update(j.metrics("p95TtftMs" if code == "reliability.ttftP95" else "p95ItlMs"))
        if j.verdict == "fail":
            fails.append(
                (code, f"{label}: {ms(j.value or 0.0)}, above threshold {ms(ceiling)} ({j.interval_text(ms)})")
            )
        elif j.verdict == "insufficient":
            undecided.append(insufficient_message(label, j, f"threshold {ms(ceiling)}", ms, runs))
    if error_rate > slo.max_error_rate:
        kinds: dict[str, int] = {}
        for r in runs:
            if not r.ok:
                kinds[r.error or "other"] = kinds.get(r.error or "other", 0) + 1
        detail = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
        fails.append(
            ("reliability.errorRate", f"error rate: {pct(error_rate)}, above {pct(slo.max_error_rate)} ({detail})")
        )
    if pass_rate < slo.min_pass_rate:
        fails.append(("reliability.passRate", f"test-case pass rate: {pct(pass_rate)}, below {pct(slo.min_pass_rate)}"))
    if slo.timeout_ms is None:
        fails.append(("reliability.timeoutUndefined", TIMEOUT_UNDEFINED))
    findings = [Finding(severity="fail", code=code, message=f) for code, f in fails]
    findings += [Finding(severity="warn", code="reliability.insufficientSamples", message=u) for u in undecided]
    for r in runs:
        if not r.passed:
            failed = [a.name + (f" ({a.detail})" if a.detail else "") for a in r.assertions if not a.passed]
            what = "; ".join(failed) or f"{r.error}: {r.error_detail}"
            findings.append(
                Finding(
                    severity="info",
                    code="reliability.caseFailed",
                    subject=r.case,
                    message=f"{r.case} (repeat {r.repeat}): {what}",
                )
            )
    if fails:
        return GateResult(
            gate="reliability", status="FAIL", reason="; ".join(f for _, f in fails), findings=findings, metrics=metrics
        )
    if undecided:
        return GateResult(
            gate="reliability",
            status="ERROR",
            error_reason="InsufficientSamples",
            reason="InsufficientSamples: " + "; ".join(undecided),
            findings=findings,
            metrics=metrics,
        )
    reason = (
        f"p95 latency: {ms(p95)} (threshold {ms(slo.p95_latency_ms)}; {latency.interval_text(ms)}), "
        f"error rate {pct(error_rate)}, "
        f"pass rate {pct(pass_rate)}, timeout {ms(slo.timeout_ms or 0)}"
    )
    return GateResult(gate="reliability", status="PASS", reason=reason, findings=findings, metrics=metrics)
