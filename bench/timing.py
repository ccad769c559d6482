"""What the benches time with, once: nearest-rank percentiles, a process's CPU time from /proc, the open loop that
sends request i at t0 + i/rate, the machine line under a table, and the `--child` entry of a bench whose measured
part runs in a fresh process (so that its imports, pools and event loop are its own)."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path


def timed(fn: Callable[[], object], n: int) -> list[float]:
    """The wall time of each of N calls of FN, in s."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def percentile(xs: Sequence[float], q: float) -> float:
    """The nearest-rank Q-quantile (0 < Q <= 1) of XS: the smallest value with at least Q of them at or below it;
    NaN when there is none."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def percentiles_ms(seconds: Sequence[float], qs: Sequence[int] = (50, 99)) -> dict[str, float]:
    """{'p50': ..., 'p99': ..., 'n': count} of durations in seconds, the percentiles in ms."""
    out = {f"p{q}": percentile(seconds, q / 100) * 1000 for q in qs}
    return {**out, "n": len(seconds)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process PID so far (/proc/PID/stat), in s; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def open_loop(n: int, rate: float, start_in: float) -> AsyncIterator[float]:
    """N due times t0 + i/RATE (t0 is START_IN s from now), each yielded once it has come: the sender does not wait
    for earlier answers, so a slow server shows as latency rather than as a lower offered rate."""
    t0 = time.perf_counter() + start_in
    import asyncio  # here: bench/gate_run.py's child counts the CPU of its imports, and never paces

    for i in range(n):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        yield due


def machine_line() -> str:
    """What a result depends on besides the code: the Python, the CPUs and the load average now."""
    load = os.getloadavg()
    return f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


def main_or_child(main: Callable[[], int], child: Callable[[list[str]], None]) -> None:
    """`bench/X.py --child ARGS` runs CHILD(ARGS), the measured process the parent started; else exit with MAIN()."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        sys.exit(main())
