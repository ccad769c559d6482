"""Reliability gate: latency, errors and answer quality of the primary at realistic concurrency."""

from __future__ import annotations

from aigate.api.models import AIWorkloadSpec
from aigate.gates.result import Finding, FindingCode, GateResult
from aigate.gates.stats import ms, pct, percentile, rate
from aigate.measurements import Measurements

TIMEOUT_UNDEFINED = "Provider timeout behavior: undefined"


def judge_reliability(spec: AIWorkloadSpec, m: Measurements) -> GateResult:
    primary = m.models.get(spec.primary.name)
    if primary is None or not primary.runs:
        return GateResult(gate="reliability", status="ERROR", reason="Reliability: no measurements of the primary")
    runs = primary.runs
    slo = spec.slo
    p50 = percentile([r.latency_ms for r in runs], 50) or 0.0
    p95 = percentile([r.latency_ms for r in runs], 95) or 0.0
    p99 = percentile([r.latency_ms for r in runs], 99) or 0.0
    ttfts = [r.ttft_ms for r in runs if r.ttft_ms is not None]
    error_rate = rate(sum(1 for r in runs if not r.ok), len(runs))
    pass_rate = rate(sum(1 for r in runs if r.passed), len(runs))
    metrics: dict[str, object] = {
        "requests": len(runs),
        "concurrency": primary.concurrency,
        "p50LatencyMs": round(p50, 1),
        "p95LatencyMs": round(p95, 1),
        "p99LatencyMs": round(p99, 1),
        "p95LatencyTargetMs": slo.p95_latency_ms,
        "errorRate": round(error_rate, 4),
        "passRate": round(pass_rate, 4),
        "timeoutMs": slo.timeout_ms,
        "meanQueueMs": round(sum(r.queue_ms for r in runs) / len(runs), 2),
    }
    if ttfts:
        metrics["p95TtftMs"] = round(percentile(ttfts, 95) or 0.0, 1)
    fails: list[tuple[FindingCode, str]] = []
    if p95 > slo.p95_latency_ms:
        fails.append(("reliability.p95Latency", f"p95 latency: {ms(p95)}, above threshold {ms(slo.p95_latency_ms)}"))
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
    reason = (
        f"p95 latency: {ms(p95)} (threshold {ms(slo.p95_latency_ms)}), error rate {pct(error_rate)}, "
        f"pass rate {pct(pass_rate)}, timeout {ms(slo.timeout_ms or 0)}"
    )
    return GateResult(gate="reliability", status="PASS", reason=reason, findings=findings, metrics=metrics)
