"""Runner overhead: aigate's runner against the simulator at a fixed 50 ms, at 1, 50 and 200 concurrent requests.

Why: the gates judge the latency the runner records (client queue time included). Whatever the runner adds on
top of the provider's own latency (its scheduling, httpx, parsing, assertions, the event loop falling behind)
is measurement error that could fail a workload that meets its SLO, or hide a slow one.

    .venv/bin/python bench/runner_overhead.py [--levels 1,50,200] [--seconds 10] [--requests 10000]
                                              [--rate-factor 0.9 | --rate RPS] [--wire openai|anthropic] [--json]

`aigate simulate --profile examples/profiles/faults.yaml --port 0` runs as a separate process (its port read from
its first line, then GET /healthz until it answers). Its `bench-openai` / `bench-anthropic` models answer every
request after exactly 50 ms (measured from the simulator's handler entry), with a fixed JSON answer.

The client is aigate's real code path: `run_workload` (the runner's open-loop scheduler, its concurrency slots,
budget, retries, assertions) and `ProviderClient` (httpx, sharded pools, the provider's wire format). Nothing is
patched. Per level N, one run of the baseline with `RunOptions(concurrency=N, rate_rps=R)`: request i is due at
t0 + i/R, and waits for one of the N slots. R defaults to 0.9 x N / 50 ms (Little's law, 90%: the rate N slots
can carry at 50 ms without a backlog); `--rate` fixes it instead. Bounded: min(--requests, R x --seconds)
requests per level, and a level that takes longer than 3 x --seconds + 30 s is abandoned (exit status 1). A
40-request warm-up run (discarded) goes first.

Reported per level, in ms unless stated (p50 / p99, nearest rank):
  err      = CaseRun.latency_ms - queue_ms - 50: the runner's measurement error (send to answer judged, minus
             the configured latency). Includes the simulator's own overhead (HTTP parse, JSON, event loop).
  attempt  = Attempt.latency_ms - 50: the same, as ProviderClient measured it (without the runner's own step).
  client   = Attempt.latency_ms - Attempt.server_ms: what is not the simulator's own time (its `Server-Timing`,
             from the request reaching its app to its response headers): the client, loopback and the
             simulator's HTTP server below its app. The runner's share of `attempt`.
  sim      = Attempt.server_ms - 50: the simulator's own share (how late its 50 ms sleep wakes, JSON, routing).
  queue    = CaseRun.queue_ms: scheduled send to actual send, what the gates add to the latency. Waiting for a
             free slot plus dispatch lag.
  lag      = dispatch lag with a free slot: how late the event loop runs a timer (a 5 ms sleep in the same loop
             as the runner, measured throughout the run). The runner's scheduler sleeps until a request is due,
             so this is how late a due request is sent when a slot is free.
  judged   = CaseRun.latency_ms, the latency the reliability gate judges (queue included).
  rps      = answered requests / wall time of run_workload (offered: R).
  cpu/req  = CPU time (user + system) per request of the client (runner) and of the simulator process.
  load     = the 1-minute load average before the level (2 cores: above ~0.5 someone else is busy).
  floor    = a bare asyncio-socket client, 1 concurrent, one keep-alive connection: what the simulator and
             loopback alone add to 50 ms. A reference for `err`, not a measurement of the runner.

The first line (stderr) says whether sniffio is installed: httpcore 1.0.x tries `import sniffio` each time it sets
up a lock, and without it pays a failed import (a sys.path scan) several times per request. `--pyinstrument
FILE.html` profiles the client side of the levels (pyinstrument is not a dependency: pip install it).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import math
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aigate.api.load import ResolvedWorkload, resolve
from aigate.api.models import AIWorkload
from aigate.probes.providers import build_body
from aigate.probes.runner import RunOptions, run_workload
from timing import percentile

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "examples" / "profiles" / "faults.yaml"
CONFIGURED_MS = 50.0
"""The bench models' `latency: {fixedMs: 50}` in examples/profiles/faults.yaml."""
CASES = 50
"""Distinct cases; the suite's repeats (at most 100) make up the request count."""
SYSTEM_PROMPT = (
    "You are a fraud review assistant for a payments company. Read the transaction summary and answer in JSON "
    'with the fields "risk" (low, medium or high), "summary" (one sentence) and "actions" (a list of steps for '
    "the analyst). Never invent account data; if the summary is incomplete, say so in the summary."
)
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["risk", "summary", "actions"],
    "properties": {
        "risk": {"enum": ["low", "medium", "high"]},
        "summary": {"type": "string"},
        "actions": {"type": "array", "items": {"type": "string"}},
    },
}
LAG_TICK_S = 0.005


# --- the simulator process --------------------------------------------------------------------------------------


class Simulator:
    """`aigate simulate` in a subprocess on a free port; stopped with SIGTERM (then SIGKILL) on exit."""

    def __init__(self, profile: Path) -> None:
        aigate = Path(sys.executable).with_name("aigate")
        cmd = [str(aigate), "simulate", "--profile", str(profile), "--port", "0"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # 'aigate simulator listening on http://127.0.0.1:PORT (models: ...)'
        found = re.search(r"listening on (http://\S+)", line)
        if found is None:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            self.stop()
            raise RuntimeError(f"aigate simulate did not start: {line.strip()} {err.strip()}")
        self.url = found.group(1)
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("aigate simulate: /healthz did not answer within 10 s")
            time.sleep(0.05)

    def cpu_s(self) -> float:
        """User + system CPU seconds of the simulator process so far (from /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/_sim/stats", timeout=5) as resp:
            doc: dict[str, Any] = json.loads(resp.read())
            return doc

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


# --- the workload ----------------------------------------------------------------------------------------------


def workload(model_id: str, wire: str, url: str, requests: int, concurrency: int, rate: float) -> ResolvedWorkload:
    """A fraud-review suite of CASES cases x repeats, a JSON-schema assertion on each answer, priced."""
    repeats = max(1, min(100, math.ceil(requests / CASES)))
    n_cases = max(1, math.ceil(requests / repeats))
    cases = [
        {
            "name": f"txn-{i:03d}",
            "messages": [
                {
                    "role": "user",
                    "content": f"Transaction {i}: card-not-present purchase of {10 + i * 7} EUR at merchant "
                    f"M{i:05d}, shipping address differs from billing, third attempt in 10 minutes.",
                }
            ],
            "expect": {"jsonSchema": SCHEMA},
        }
        for i in range(n_cases)
    ]
    doc: dict[str, Any] = {
        "apiVersion": "aigate.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": "runner-overhead", "namespace": "bench"},
        "spec": {
            "owner": "bench",
            "models": [
                {
                    "name": "bench",
                    "role": "primary",
                    "provider": "anthropic" if wire == "anthropic" else "openai",
                    "model": model_id,
                    "endpoint": url,
                    "pricing": {"inputPerMTokUSD": 0.15, "outputPerMTokUSD": 0.6},
                    "maxTokens": 256,
                }
            ],
            "traffic": {
                "requestsPerDay": 1_000_000,
                "peakRequestsPerSecond": rate,
                "maxTestConcurrency": concurrency,
            },
            "budget": {"monthlyUSD": 100_000, "gateRunMaxUSD": 1000},
            "slo": {"p95LatencyMs": CONFIGURED_MS, "timeoutMs": 10_000},
            "fallback": {"safeStop": {"message": "stop"}},
            "prompts": [{"inline": SYSTEM_PROMPT}],
            "suite": {"repeats": repeats, "cases": cases},
        },
    }
    return resolve(AIWorkload.model_validate(doc), lambda ref: "")


# --- the floor: the simulator and loopback alone ----------------------------------------------------------------


async def _floor(url: str, body: bytes, wire: str, n: int) -> list[float]:
    """n sequential requests on one keep-alive connection, written and read with bare asyncio streams: what
    the simulator and loopback add to 50 ms with (almost) no client. A reference for the runner's figures,
    not a measurement of the runner."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    path, auth = (
        ("/v1/messages", "x-api-key: k\r\nanthropic-version: 2023-06-01")
        if wire == "anthropic"
        else (
            "/v1/chat/completions",
            "authorization: Bearer k",
        )
    )
    head = f"POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n{auth}\r\n"
    request = f"{head}content-length: {len(body)}\r\n\r\n".encode() + body
    reader, writer = await asyncio.open_connection(host, int(port))
    out: list[float] = []
    try:
        for _ in range(n):
            t = time.perf_counter()
            writer.write(request)
            got = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", got)
            await reader.readexactly(int(length.group(1)) if length else 0)
            out.append((time.perf_counter() - t) * 1000 - CONFIGURED_MS)
    finally:
        writer.close()
    return out


def floor(sim: Simulator, model_id: str, wire: str, n: int) -> tuple[float, float]:
    resolved = workload(model_id, wire, sim.url, 1, 1, 1)
    doc = build_body(resolved.workload.spec.models[0], resolved.system_prompt, resolved.cases[0].messages, [])
    body = json.dumps(doc, separators=(",", ":")).encode()  # the bytes ProviderClient.prepare sends
    xs = asyncio.run(_floor(sim.url, body, wire, n))[5:]  # the first few warm the connection and the server
    return percentile(xs, 0.50), percentile(xs, 0.99)


# --- one level -------------------------------------------------------------------------------------------------


@dataclass
class Level:
    concurrency: int
    offered_rps: float
    requests: int
    answered: int
    errors: int
    wall_s: float
    rps: float
    err_p50: float
    err_p99: float
    attempt_p50: float
    attempt_p99: float
    client_p50: float
    client_p99: float
    sim_p50: float
    sim_p99: float
    queue_p50: float
    queue_p99: float
    lag_p50: float
    lag_p99: float
    judged_p50: float
    judged_p99: float
    client_cpu_ms: float
    sim_cpu_ms: float
    load_before: float
    load_after: float


async def _loop_lag(samples: list[float], stop: asyncio.Event) -> None:
    """How late the event loop wakes a LAG_TICK_S sleep, for as long as the run lasts."""
    while not stop.is_set():
        t = time.perf_counter()
        await asyncio.sleep(LAG_TICK_S)
        samples.append(max(0.0, (time.perf_counter() - t - LAG_TICK_S) * 1000))


async def _measure(resolved: ResolvedWorkload, options: RunOptions, lag: list[float]) -> tuple[Any, float]:
    stop = asyncio.Event()
    monitor = asyncio.create_task(_loop_lag(lag, stop))
    t = time.perf_counter()
    try:
        m = await run_workload(resolved, {"bench": "sk-bench-not-a-key"}, options=options)
    finally:
        wall = time.perf_counter() - t
        stop.set()
        await monitor
    return m, wall


def run_level(
    sim: Simulator, model_id: str, wire: str, concurrency: int, rate: float, requests: int, bound_s: float
) -> Level:
    resolved = workload(model_id, wire, sim.url, requests, concurrency, rate)
    options = RunOptions(concurrency=concurrency, rate_rps=rate, run_faults=False, progress_every_s=3600)
    load_before = os.getloadavg()[0]
    lag: list[float] = []
    cpu0, sim0 = time.process_time(), sim.cpu_s()

    async def bounded() -> tuple[Any, float]:
        async with asyncio.timeout(bound_s):
            return await _measure(resolved, options, lag)

    m, wall = asyncio.run(bounded())
    cpu, sim_cpu = time.process_time() - cpu0, sim.cpu_s() - sim0
    runs = m.models["bench"].runs
    ok = [r for r in runs if r.ok]
    n = max(1, len(runs))
    timed = [r.attempts[-1] for r in ok if r.attempts[-1].server_ms is not None]
    return Level(
        concurrency=concurrency,
        offered_rps=rate,
        requests=len(runs),
        answered=len(ok),
        errors=len(runs) - len(ok),
        wall_s=wall,
        rps=len(ok) / wall,
        err_p50=percentile([r.latency_ms - r.queue_ms - CONFIGURED_MS for r in ok], 0.50),
        err_p99=percentile([r.latency_ms - r.queue_ms - CONFIGURED_MS for r in ok], 0.99),
        attempt_p50=percentile([r.attempts[-1].latency_ms - CONFIGURED_MS for r in ok], 0.50),
        attempt_p99=percentile([r.attempts[-1].latency_ms - CONFIGURED_MS for r in ok], 0.99),
        client_p50=percentile([a.latency_ms - (a.server_ms or 0.0) for a in timed], 0.50),
        client_p99=percentile([a.latency_ms - (a.server_ms or 0.0) for a in timed], 0.99),
        sim_p50=percentile([(a.server_ms or 0.0) - CONFIGURED_MS for a in timed], 0.50),
        sim_p99=percentile([(a.server_ms or 0.0) - CONFIGURED_MS for a in timed], 0.99),
        queue_p50=percentile([r.queue_ms for r in runs], 0.50),
        queue_p99=percentile([r.queue_ms for r in runs], 0.99),
        lag_p50=percentile(lag, 0.50),
        lag_p99=percentile(lag, 0.99),
        judged_p50=percentile([r.latency_ms for r in ok], 0.50),
        judged_p99=percentile([r.latency_ms for r in ok], 0.99),
        client_cpu_ms=cpu * 1000 / n,
        sim_cpu_ms=sim_cpu * 1000 / n,
        load_before=load_before,
        load_after=os.getloadavg()[0],
    )


# --- output ----------------------------------------------------------------------------------------------------


def table(levels: list[Level]) -> str:
    head = (
        "| conc | offered rps | rps | n (err) | err p50/p99 | attempt p50/p99 | client p50/p99 | sim p50/p99 "
        "| queue p50/p99 | lag p50/p99 "
        "| judged p50/p99 | cpu/req client/sim | load |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for lv in levels:
        lines.append(
            f"| {lv.concurrency} | {lv.offered_rps:.0f} | {lv.rps:.0f} | {lv.requests} ({lv.errors}) "
            f"| {lv.err_p50:.2f} / {lv.err_p99:.2f} | {lv.attempt_p50:.2f} / {lv.attempt_p99:.2f} "
            f"| {lv.client_p50:.2f} / {lv.client_p99:.2f} | {lv.sim_p50:.2f} / {lv.sim_p99:.2f} "
            f"| {lv.queue_p50:.2f} / {lv.queue_p99:.2f} | {lv.lag_p50:.2f} / {lv.lag_p99:.2f} "
            f"| {lv.judged_p50:.1f} / {lv.judged_p99:.1f} | {lv.client_cpu_ms:.2f} / {lv.sim_cpu_ms:.2f} "
            f"| {lv.load_before:.2f} |"
        )
    return "\n".join(lines)


def targets(levels: list[Level]) -> list[str]:
    out = []
    for lv in levels:
        if lv.concurrency == 50:
            met = "met" if lv.err_p99 <= 2.0 else f"MISSED by {lv.err_p99 - 2.0:.2f} ms"
            out.append(
                f"measurement error p99 <= 2 ms at 50 concurrent: {lv.err_p99:.2f} ms, {met} "
                f"(the simulator's own time p99 {lv.sim_p99:.2f} ms; the rest, client and loopback, "
                f"p99 {lv.client_p99:.2f} ms)"
            )
            met = "met" if lv.client_cpu_ms <= 0.3 else f"MISSED by {lv.client_cpu_ms - 0.3:.2f} ms"
            out.append(f"runner CPU <= 0.3 ms per request at 50 concurrent: {lv.client_cpu_ms:.2f} ms, {met}")
        if lv.concurrency == 200:
            met = "met" if lv.rps >= 1000 else f"MISSED by {1000 - lv.rps:.0f} rps"
            out.append(
                f">= 1,000 rps sustained at 200 concurrent: {lv.rps:.0f} rps (offered {lv.offered_rps:.0f}), {met}"
            )
    return out


def sniffio_note() -> str:
    """httpcore 1.0.x imports sniffio each time it sets up a lock, event or semaphore (several per request); anyio
    >= 4.11 no longer installs it, and a failed import is not cached (encode/httpcore#1103)."""
    if importlib.util.find_spec("sniffio") is None:
        return "sniffio absent: httpcore retries `import sniffio` on every lock it sets up (encode/httpcore#1103)"
    return "sniffio installed"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="1,50,200", help="concurrency levels, comma-separated")
    ap.add_argument("--seconds", type=float, default=10.0, help="target duration per level (requests = rate x s)")
    ap.add_argument("--requests", type=int, default=10_000, help="at most this many requests per level")
    ap.add_argument("--rate-factor", type=float, default=0.9, help="offered rate = factor x N / 50 ms")
    ap.add_argument("--rate", type=float, default=None, help="offered rate (rps) for every level, instead")
    ap.add_argument("--wire", choices=("openai", "anthropic"), default="openai")
    ap.add_argument("--profile", type=Path, default=PROFILE, help="simulator profile with the bench-* models")
    ap.add_argument("--floor", type=int, default=100, help="requests of the bare-socket reference (0: skip)")
    ap.add_argument("--pyinstrument", metavar="HTML", help="profile the client with pyinstrument into this file")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    args = ap.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    model_id = f"bench-{args.wire}"

    host = socket.gethostname()
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())

    def say(line: str) -> None:
        if not args.json:
            print(line, file=sys.stderr, flush=True)

    say(f"{started}, {host}, {os.cpu_count()} cpus, load {load}; {sniffio_note()}")
    profiler: Any = None
    if args.pyinstrument:
        import pyinstrument  # type: ignore[import-not-found, unused-ignore]  # not a dependency: pip install it

        profiler = pyinstrument.Profiler(async_mode="disabled")
    sim = Simulator(args.profile)
    results: list[Level] = []
    floor_ms = (float("nan"), float("nan"))
    status = 0
    try:
        if args.floor > 0:
            floor_ms = floor(sim, model_id, args.wire, args.floor + 5)
        # warm-up, discarded: lazy imports, the schema validator's first compile, the simulator's first requests
        run_level(sim, model_id, args.wire, 4, 80.0, 40, 60.0)
        for n in levels:
            rate = args.rate if args.rate is not None else args.rate_factor * n * 1000 / CONFIGURED_MS
            count = max(1, min(args.requests, math.ceil(rate * args.seconds)))
            bound = 3 * args.seconds + 30
            say(f"level {n}: {count} requests offered at {rate:.0f} rps ...")
            if profiler is not None:
                profiler.start()
            try:
                results.append(run_level(sim, model_id, args.wire, n, rate, count, bound))
            except TimeoutError:
                say(f"level {n}: abandoned after {bound:.0f} s")
                status = 1
            finally:
                if profiler is not None:
                    profiler.stop()
        served = sim.stats()
    finally:
        sim.stop()
    if profiler is not None:
        Path(args.pyinstrument).write_text(profiler.output_html())
    if args.json:
        doc = {
            "started": started,
            "host": host,
            "cpus": os.cpu_count(),
            "load": load,
            "sniffio": sniffio_note(),
            "floor_p50_p99_ms": floor_ms,
            "levels": [asdict(x) for x in results],
            "simulator_stats": served,
        }
        print(json.dumps(doc, indent=2))
    else:
        print(table(results))
        print(f"floor (bare asyncio socket, 1 concurrent, not the runner): {floor_ms[0]:.2f} / {floor_ms[1]:.2f} ms")
        for line in targets(results):
            print(line)
    return status


if __name__ == "__main__":
    sys.exit(main())
