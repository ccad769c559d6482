"""Prometheus metrics: what a platform team watches on the operator and on the workloads it gates."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from aigate.gates.result import GateResult

DRIFT_REASONS = ("NoDrift", "ModelChanged", "CanaryFailing", "CanaryError", "CanaryBudgetSpent")
_RESULT_VALUE = {"PASS": 1.0, "ACCEPTED": 1.0, "FAIL": 0.0, "ERROR": -1.0}


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        wl = ["namespace", "workload"]
        self.gate = Gauge(
            "aigate_gate_result", "1 pass or accepted, 0 fail, -1 error", [*wl, "gate", "status"], registry=r
        )
        self.cost = Gauge(
            "aigate_projected_monthly_cost_usd", "Projected monthly cost at declared volume", wl, registry=r
        )
        self.cost_ratio = Gauge("aigate_cost_ratio", "Projected monthly cost / budget", wl, registry=r)
        self.p95 = Gauge("aigate_p95_latency_ms", "Measured p95 latency of the primary", wl, registry=r)
        self.expiry = Gauge("aigate_evidence_expiry_timestamp_seconds", "When the evidence expires", wl, registry=r)
        self.admission = Counter(
            "aigate_admission_decisions_total", "Admission decisions", ["result", "kind", "enforcement"], registry=r
        )
        self.admission_latency = Histogram(
            "aigate_admission_duration_seconds",
            "Time to decide an admission request (server side)",
            ["webhook"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.job_duration = Histogram(
            "aigate_gate_job_duration_seconds",
            "Gate Job wall time",
            ["outcome"],
            buckets=(10, 30, 60, 120, 300, 600, 1200, 1800, 3600),
            registry=r,
        )
        self.runs = Counter("aigate_gate_runs_started_total", "Gate runs started", wl, registry=r)
        self.errors = Counter("aigate_reconcile_errors_total", "Reconcile errors", wl, registry=r)
        self.drift = Gauge(
            "aigate_drift",
            "1 for the reason the last canary gave (NoDrift, ModelChanged, CanaryFailing, CanaryError, "
            "CanaryBudgetSpent), 0 for the others",
            [*wl, "reason"],
            registry=r,
        )
        self.canaries = Counter("aigate_canaries_started_total", "Canaries started", wl, registry=r)

    def watch_verify_cache(self, cache: Any) -> None:
        """Hits and misses of the webhook's VerifyCache, read when scraped (a miss costs an ECDSA check)."""
        self.registry.register(_VerifyCacheCollector(cache))

    def serve(self, addr: str, port: int) -> None:
        start_http_server(port, addr=addr, registry=self.registry)

    def run_started(self, ns: str, name: str) -> None:
        self.runs.labels(ns, name).inc()

    def job_finished(self, ns: str, name: str, seconds: float, ok: bool) -> None:
        self.job_duration.labels("succeeded" if ok else "failed").observe(seconds)

    def reconcile_error(self, ns: str, name: str) -> None:
        self.errors.labels(ns, name).inc()

    def record_results(
        self, ns: str, name: str, gates: list[GateResult], summary: dict[str, Any], expires: datetime | None
    ) -> None:
        for g in gates:
            for status in _RESULT_VALUE:
                self.gate.labels(ns, name, g.gate, status).set(1.0 if g.status == status else 0.0)
        if summary.get("projectedMonthlyUSD") is not None:
            self.cost.labels(ns, name).set(float(summary["projectedMonthlyUSD"]))
        if summary.get("costRatio") is not None:
            self.cost_ratio.labels(ns, name).set(float(summary["costRatio"]))
        if summary.get("p95LatencyMs") is not None:
            self.p95.labels(ns, name).set(float(summary["p95LatencyMs"]))
        if expires is not None:
            self.expiry.labels(ns, name).set(expires.timestamp())

    def record_drift(self, ns: str, name: str, reason: str) -> None:
        for r in DRIFT_REASONS:
            self.drift.labels(ns, name, r).set(1.0 if r == reason else 0.0)

    def canary_started(self, ns: str, name: str) -> None:
        self.canaries.labels(ns, name).inc()

    def admitted(self, result: str, kind: str, enforcement: str, seconds: float, webhook: str) -> None:
        self.admission.labels(result, kind, enforcement).inc()
        self.admission_latency.labels(webhook).observe(seconds)


class _VerifyCacheCollector(Collector):
    def __init__(self, cache: Any) -> None:
        self.cache = cache

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "aigate_admission_verify_cache",
            "Webhook verification cache: signature checks and spec digests answered from memory (hit) or computed",
            labels=["what", "result"],
        )
        family.add_metric(["signature", "hit"], self.cache.hits)
        family.add_metric(["signature", "miss"], self.cache.misses)
        family.add_metric(["digest", "hit"], self.cache.digest_hits)
        yield family
