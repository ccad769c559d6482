"""Small statistics the gates share: percentiles and rates over measured runs."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no data."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def rate(count: int, total: int) -> float:
    return count / total if total else 0.0


def pct(x: float) -> str:
    """0.6087 -> '61%'."""
    return f"{x * 100:.0f}%"


def usd(x: float) -> str:
    """Whole dollars for large sums, cents below $100, and enough digits for per-request costs."""
    if x >= 100:
        return f"${x:,.0f}"
    if x >= 1:
        return f"${x:,.2f}"
    return f"${x:.4f}"


def ms(x: float) -> str:
    return f"{x:,.0f} ms"


def _binom_cdfs(n: int, p: float) -> list[float]:
    """[P(Binomial(n, p) <= k) for k in 0..n], from log-space terms (no overflow for large n)."""
    logp, logq = math.log(p), math.log1p(-p)
    out, acc = [], 0.0
    for k in range(n + 1):
        acc += math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * logp + (n - k) * logq)
        out.append(min(acc, 1.0))
    return out


def order_statistic_ranks(n: int, q: float, confidence: float) -> tuple[int | None, int | None]:
    """1-based ranks (l, u) of the exact, distribution-free bounds on the q-th percentile from n samples: the l-th
    smallest is below the true percentile, the u-th smallest above it, each with probability >= `confidence`.
    The count of samples below the percentile is Binomial(n, q/100); None where no rank is sure enough."""
    if n == 0:
        return None, None
    cdf = _binom_cdfs(n, q / 100.0)
    upper = next((u for u in range(1, n + 1) if cdf[u - 1] >= confidence), None)
    lower = next((lo for lo in range(n, 0, -1) if 1 - cdf[lo - 1] >= confidence), None)
    return lower, upper


def samples_for_upper_bound(q: float, confidence: float) -> int:
    """The fewest samples whose maximum is an upper bound on the q-th percentile at `confidence`: n with
    (q/100)^n <= 1 - confidence (59 for p95 at 95%)."""
    return math.ceil(math.log(1 - confidence) / math.log(q / 100.0))


@dataclass(frozen=True)
class PercentileJudgement:
    """A percentile judged against a ceiling with the samples it rests on: `verdict` is 'pass' when even the upper
    bound is within the ceiling, 'fail' when even the lower bound is above it, else 'insufficient'."""

    q: float
    samples: int
    value: float | None
    lower: float | None
    upper: float | None
    confidence: float
    verdict: Literal["pass", "fail", "insufficient"]
    samples_needed: int | None
    """When insufficient: about how many samples would decide, if the measured distribution holds (None: more than
    `max_samples`, the percentile sits at the ceiling)."""

    def metrics(self, prefix: str) -> dict[str, object]:
        """The figures a gate reports beside the percentile: samples and interval."""
        return {
            f"{prefix}Samples": self.samples,
            f"{prefix}Interval": [_r(self.lower), _r(self.upper)],
            f"{prefix}Verdict": self.verdict,
        }

    def interval_text(self, fmt: Callable[[float], str]) -> str:
        lo = fmt(self.lower) if self.lower is not None else "unbounded"
        hi = fmt(self.upper) if self.upper is not None else "unbounded"
        return f"{self.samples} samples, {self.confidence:.0%} bounds [{lo}, {hi}]"


def _r(x: float | None) -> float | None:
    return round(x, 6) if x is not None else None


def judge_percentile(
    values: Sequence[float], q: float, ceiling: float, confidence: float, max_samples: int
) -> PercentileJudgement:
    """Exact order-statistic bounds (no bootstrap, no assumption on the distribution) decide the verdict."""
    xs = sorted(values)
    n = len(xs)
    lo_rank, hi_rank = order_statistic_ranks(n, q, confidence)
    lower = xs[lo_rank - 1] if lo_rank else None
    upper = xs[hi_rank - 1] if hi_rank else None
    verdict: Literal["pass", "fail", "insufficient"]
    if upper is not None and upper <= ceiling:
        verdict = "pass"
    elif lower is not None and lower > ceiling:
        verdict = "fail"
    else:
        verdict = "insufficient"
    needed = None
    if verdict == "insufficient":
        needed = _samples_to_decide(xs, q, ceiling, confidence, max_samples)
    return PercentileJudgement(q, n, percentile(xs, q), lower, upper, confidence, verdict, needed)


def _samples_to_decide(xs: Sequence[float], q: float, ceiling: float, confidence: float, cap: int) -> int | None:
    """About the fewest samples (within 2%) that would decide, were the share of samples within the ceiling to stay
    as measured."""
    n = len(xs)
    within = sum(1 for x in xs if x <= ceiling) / n if n else 1.0
    start = max(n + 1, samples_for_upper_bound(q, confidence) if within * 100 > q else 1)
    m = start
    while m <= cap:
        lo_rank, hi_rank = order_statistic_ranks(m, q, confidence)
        k = math.floor(within * m + 1e-9)  # samples within the ceiling among m
        if hi_rank is not None and hi_rank <= k:
            return m
        if lo_rank is not None and lo_rank > k:
            return m
        m += max(1, m // 50)  # about: within 2%
    return None
