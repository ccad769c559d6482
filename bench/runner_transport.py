"""HTTP clients side by side as the runner would use them: CPU per request and added latency at 50 concurrent.

Why: issue 12 asks for the runner's CPU per request <= 0.3 ms; today's runner spends ~0.8 ms, nearly all of it in
httpx/httpcore/anyio (bench/runner_overhead.py). Before changing the runner's transport, measure what each candidate
costs doing only what the runner's transport does: POST an OpenAI chat body (the runner's bytes), read the answer,
parse its JSON.

    .venv/bin/python bench/runner_transport.py [--concurrency 50] [--rate 900] [--requests 6000] [--json]

`aigate simulate --profile examples/profiles/faults.yaml` runs as a separate process (model bench-openai answers
after exactly 50 ms). Each candidate runs in a fresh Python process of its own (so imports, pools and the event loop
are its own): open loop, request i due at t0 + i/rate, at most --concurrency in flight (a semaphore), after a
discarded 200-request warm-up. Candidates: httpx.AsyncClient on the runner's ShardedTransport (pools of 8), httpcore
pools sharded the same way (what httpx runs on, without httpx's request/response models), aiohttp.ClientSession,
and bare asyncio streams (HTTP/1.1 by hand, one keep-alive connection per slot: a floor, not a client); each on
asyncio's default loop and, when installed, uvloop.

Reported: cpu/req = the client process's CPU (user + system) over the measured requests / their number; added
p50/p99 = answer time - 50 ms (the simulator's own share included; it is the same for every candidate); late
p99 = how late requests left against their due time (the client's queue).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import itertools
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from timing import machine_line, main_or_child, open_loop, percentile

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "examples" / "profiles" / "faults.yaml"
CONFIGURED_MS = 50.0
CANDIDATES = ("httpx", "httpcore", "aiohttp", "streams")
BODY = json.dumps(
    {
        "model": "bench-openai",
        "messages": [
            {"role": "system", "content": "You are a fraud review assistant. Answer in JSON."},
            {"role": "user", "content": "Transaction 4411: 3 cards, 1 device, 9 countries in an hour."},
        ],
        "max_tokens": 256,
    },
    separators=(",", ":"),
).encode()
HEADERS = {"content-type": "application/json", "authorization": "Bearer k"}


# ---- one candidate, in its own process ------------------------------------------------------------------------------


async def _drive(send: Any, n: int, rate: float, concurrency: int) -> tuple[list[float], list[float]]:
    sem = asyncio.Semaphore(concurrency)
    added: list[float] = []
    late: list[float] = []

    async def one(due: float) -> None:
        async with sem:
            start = time.perf_counter()
            late.append((start - due) * 1000)
            doc = await send()
            assert doc.get("choices"), doc
            added.append((time.perf_counter() - start) * 1000 - CONFIGURED_MS)

    tasks = [asyncio.create_task(one(due)) async for due in open_loop(n, rate, start_in=0.01)]
    await asyncio.gather(*tasks)
    return added, late


async def _candidate(name: str, url: str, n: int, rate: float, concurrency: int) -> dict[str, Any]:
    endpoint = url + "/v1/chat/completions"
    closers: list[Any] = []
    if name == "httpx":
        import httpx

        from aigate.probes.transport import ShardedTransport

        client = httpx.AsyncClient(transport=ShardedTransport(concurrency), timeout=30)  # the runner's transport
        closers.append(client.aclose)

        async def send() -> Any:
            r = await client.post(endpoint, content=BODY, headers=HEADERS)
            return r.json()

    elif name == "httpcore":
        import httpcore

        from aigate.probes.transport import SHARD_CONNECTIONS

        # sharded as the runner shards httpx (httpcore's pool does work linear in its size per request)
        pools = [
            httpcore.AsyncConnectionPool(max_connections=SHARD_CONNECTIONS, max_keepalive_connections=SHARD_CONNECTIONS)
            for _ in range(-(-concurrency // SHARD_CONNECTIONS))
        ]
        closers.extend(p.aclose for p in pools)
        headers = [(k.encode(), v.encode()) for k, v in HEADERS.items()]
        turn = itertools.cycle(pools).__next__

        async def send() -> Any:
            r = await turn().request("POST", endpoint, headers=headers, content=BODY)
            return json.loads(r.content)

    elif name == "aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
        closers.append(session.close)

        async def send() -> Any:
            async with session.post(endpoint, data=BODY, headers=HEADERS) as r:
                return json.loads(await r.read())

    else:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        head = "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
        request = (
            f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}\r\n{head}content-length: {len(BODY)}\r\n\r\n".encode()
            + BODY
        )
        idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

        async def send() -> Any:
            conn = idle.pop() if idle else await asyncio.open_connection(host, int(port))
            reader, writer = conn
            writer.write(request)
            got = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", got)
            doc = json.loads(await reader.readexactly(int(length.group(1)) if length else 0))
            idle.append(conn)
            return doc

    try:
        await _drive(send, 200, rate, concurrency)  # warm-up: connections, imports on first use
        cpu0, t0 = time.process_time(), time.perf_counter()
        added, late = await _drive(send, n, rate, concurrency)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    finally:
        for close in closers:
            await close()
    return {"cpu_ms_per_req": 1000 * cpu / n, "rps": n / wall, "added": added, "late": late}


def child(argv: list[str]) -> None:
    name, loop, url, n, rate, concurrency = argv[0], argv[1], argv[2], int(argv[3]), float(argv[4]), int(argv[5])
    coro = _candidate(name, url, n, rate, concurrency)
    if loop == "uvloop":
        import uvloop

        r = uvloop.run(coro)
    else:
        r = asyncio.run(coro)
    print(json.dumps(r))


# ---- the parent -----------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT / "bench"))
    from runner_overhead import Simulator

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rate", type=float, default=900.0)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    loops = ["asyncio"] + (["uvloop"] if importlib.util.find_spec("uvloop") else [])
    sim = Simulator(PROFILE)
    rows: list[dict[str, Any]] = []
    try:
        for name in args.candidates.split(","):
            for loop in loops:
                sim_cpu0 = sim.cpu_s()
                out = subprocess.run(
                    [sys.executable, __file__, "--child", name, loop, sim.url, str(args.requests), str(args.rate),
                     str(args.concurrency)],
                    capture_output=True, text=True, check=False,
                )  # fmt: skip
                if out.returncode != 0:
                    print(out.stderr[-2000:], file=sys.stderr)
                    raise SystemExit(f"candidate {name} on {loop} failed")
                r = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(
                    {
                        "candidate": name,
                        "loop": loop,
                        "cpu_ms_per_req": r["cpu_ms_per_req"],
                        "rps": r["rps"],
                        "added_p50": percentile(r["added"], 0.5),
                        "added_p99": percentile(r["added"], 0.99),
                        "late_p99": percentile(r["late"], 0.99),
                        "sim_cpu_ms_per_req": 1000 * (sim.cpu_s() - sim_cpu0) / (args.requests + 200),
                    }
                )
    finally:
        sim.stop()
    load = os.getloadavg()
    if args.json:
        print(json.dumps({"rows": rows, "loadavg": load}, indent=2))
        return 0
    print(
        f"{args.requests} requests per candidate, {args.concurrency} concurrent, {args.rate:g}/s offered, "
        f"simulator at {CONFIGURED_MS:g} ms (ms)"
    )
    print(
        f"{'candidate':>9} {'loop':>7} {'cpu/req':>8} {'rps':>6} {'added p50':>9} {'p99':>7} {'late p99':>8} {'sim':>6}"
    )
    for r in rows:
        print(
            f"{r['candidate']:>9} {r['loop']:>7} {r['cpu_ms_per_req']:>8.3f} {r['rps']:>6.0f} {r['added_p50']:>9.2f} "
            f"{r['added_p99']:>7.2f} {r['late_p99']:>8.2f} {r['sim_cpu_ms_per_req']:>6.3f}"
        )
    print(machine_line())
    return 0


if __name__ == "__main__":
    main_or_child(main, child)
