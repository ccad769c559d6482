"""The policy numbers the runner measures with and the gates judge by, each defined once, with why."""

from __future__ import annotations

from aigate.api.models import AIWorkloadSpec

ASSUMED_TIMEOUT_X_P95 = 2
"""With no `slo.timeoutMs` a run still needs a timeout: twice the p95 target, so that a call at the SLO's edge is
not cut. The reliability gate fails an undeclared timeout whatever the run assumed."""

DEADLINE_X_TIMEOUT = 3
"""With no `fallback.deadlineMs`, a case under a fault must end within three timeouts: the failed primary call,
one retry, and the fallback's own call."""

DAYS_PER_MONTH = 30
"""`requestsPerDay` to a month, and `monthlyUSD` to a day for the monitoring conditions."""


PERCENTILE_CONFIDENCE = 0.95
"""A judged percentile (p95 latency, p95 cost per request) passes only when its exact order-statistic upper bound
at this confidence is within the limit, and fails when its lower bound at this confidence is above it; in between
the samples cannot decide (InsufficientSamples). Deciding a pass on p95 thus takes at least 59 samples."""

PERCENTILE_METHOD = "exact order-statistic bounds (binomial, distribution-free), one-sided 95% each"
"""How the interval beside each judged percentile is computed, as the reports say it."""

STOP_MIN_REQUESTS = 10
"""suite.stopOnErrorRate is judged once a model has answered this many requests: one early error would otherwise
stop any run."""

MAX_REPEATS = 100
"""suite.repeats' ceiling (the resource refuses more): repeats needed beyond it are reported as such."""


def assumed_timeout_ms(spec: AIWorkloadSpec) -> float:
    """The declared `slo.timeoutMs`, else ASSUMED_TIMEOUT_X_P95 x `slo.p95LatencyMs`."""
    slo = spec.slo
    return slo.timeout_ms if slo.timeout_ms is not None else ASSUMED_TIMEOUT_X_P95 * slo.p95_latency_ms


def fault_deadline_ms(spec: AIWorkloadSpec, timeout_ms: float) -> float:
    """The end-to-end deadline a case must meet under a fault: declared, else DEADLINE_X_TIMEOUT timeouts."""
    if spec.fallback.deadline_ms is not None:
        return spec.fallback.deadline_ms
    return DEADLINE_X_TIMEOUT * timeout_ms
