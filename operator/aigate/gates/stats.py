"""Small statistics the gates share: percentiles and rates over measured runs."""

from __future__ import annotations

import math
from collections.abc import Sequence


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
