"""Rollout admission latency: `rollout_decision` and the HTTP layer in front of it, at a fixed arrival rate.

Why: the API server waits for this webhook on every create/update of a labelled Deployment (timeoutSeconds 5,
failurePolicy Fail), so its latency is added to every rollout, and a slow webhook is a cluster-wide outage for
gated workloads.

    .venv/bin/python bench/admission.py [--rates 100,500,1000] [--seconds 5] [--json]
    .venv/bin/python bench/admission.py --client h2load --rates 500,1000,2000 [--server aigate|floor|cmd]

--server picks the webhook under test: `aigate` (`aigate webhook`'s server, below), `floor` (the
allow-all Go server hack/build-floor-webhook.sh builds: the cheapest a webhook can be), or `cmd` with --server-cmd, a
command line with {cert}, {key} and {port} (e.g. `aigate webhook ...` once it exists) that serves the rollout
webhook at /rollouts.aigate.dev. --client picks the load generator: `python` (aiohttp, one process, below) or
`h2load` (Debian's nghttp2-client, C; HTTP/2 with 32 streams on each of 8 connections when the server offers h2 by
ALPN, else HTTP/1.1 on 64 connections), --rps per connection so that the total is the rate, for --seconds after a
1 s warm-up; p50/p99 from its per-request log (time from a request's send to its answer). h2load sends late rather than
drop when every stream is busy; "dropped" counts the requests it started but did not see answered 2xx plus those it
held back (the rate times the counted window, less one per connection, minus those sent in it).

A server process runs `aigate webhook`'s real front door (aigate.webhook.server.App under Granian, as
bench/webhook_server.py builds it) over TLS on 127.0.0.1, its Reviewer deciding from an Index holding the
remediated example, its ConfigMap and passing signed evidence. A client process
sends AdmissionReviews (CREATE of a labelled Deployment, ~1.5 KB) open-loop: request i leaves at t0 + i/rate
whether or not earlier ones have returned (at most --max-inflight in flight; beyond that a request is counted as
dropped, not queued). Bounded: rate x seconds requests, then at most 10 s to drain.

Reported, in ms:
  decision = Reviewer.rollout: the index look-ups and rollout_decision (digest and signature warmed by the index)
  server   = the ASGI App: body read, JSON parse, decision, JSON answer (TLS and HTTP are Granian's, in Rust)
  client   = from the request's scheduled send time to its answer read (TLS, HTTP, queueing included)
  cold     = rollout_decision with no cache (digest and ECDSA verification every time), measured separately
  cpu/req  = the server process's CPU time (user + system: TLS, HTTP, App, decision) per request
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from admission_support import World  # noqa: E402
from aigate.kube.names import ROLLOUTS_WEBHOOK  # noqa: E402
from timing import cpu_seconds, machine_line, open_loop, percentiles_ms, timed  # noqa: E402
from webhook_app import review_body  # noqa: E402
from webhook_tls import Certs, serving_certs  # noqa: E402

# --- server process ---------------------------------------------------------------------------------------------


def server_main(certdir: str, conn: Connection) -> None:
    import uvloop

    uvloop.run(_server(Path(certdir), conn))


async def _server(certdir: Path, conn: Connection) -> None:
    from aigate.webhook.server import CertificateFiles, tls_server
    from webhook_app import build_app

    app = build_app()
    cpu = time.process_time()
    timings: dict[str, list[float]] = {"decision": [], "server": []}
    rollout = app.reviewer.rollout

    async def timed_rollout(request: Any, kind: str) -> Any:
        t = time.perf_counter()
        try:
            return await rollout(request, kind)
        finally:
            timings["decision"].append(time.perf_counter() - t)

    app.reviewer.rollout = timed_rollout

    async def timed(scope: Any, receive: Any, send: Any) -> None:
        t = time.perf_counter()
        try:
            await app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                timings["server"].append(time.perf_counter() - t)

    port = free_port()
    files = CertificateFiles(certdir / "webhook.crt", certdir / "webhook.key")
    server = tls_server(timed, address="127.0.0.1", port=port, files=files)
    task = asyncio.create_task(server.serve())
    await asyncio.sleep(0.5)
    loop = asyncio.get_running_loop()
    conn.send(f"https://127.0.0.1:{port}")
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "reset":
            timings["decision"].clear()
            timings["server"].clear()
            cpu = time.process_time()
            conn.send("ok")
        elif command == "collect":
            conn.send({**timings, "cpu": [time.process_time() - cpu]})
        else:
            server.stop()
            await asyncio.wait([task], timeout=5)
            return


# --- client -----------------------------------------------------------------------------------------------------


async def run_rate(
    url: str, certs: Certs, rate: float, seconds: float, max_inflight: int, body: bytes
) -> dict[str, Any]:
    n = int(rate * seconds)
    latencies: list[float] = []
    outcome = {"ok": 0, "errors": 0, "dropped": 0, "unexpected": 0}
    inflight = 0
    ctx = certs.client_context()
    connector = aiohttp.TCPConnector(limit=max_inflight, ssl=ctx)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def one(scheduled: float) -> None:
            nonlocal inflight
            inflight += 1
            try:
                async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                    answer = await r.json()
                latencies.append(time.perf_counter() - scheduled)
                if r.status == 200 and answer["response"]["allowed"] is True:
                    outcome["ok"] += 1
                else:
                    outcome["unexpected"] += 1
            except Exception:
                outcome["errors"] += 1
            finally:
                inflight -= 1

        # warm the connections (TLS handshakes) so the run measures steady state
        await asyncio.gather(*(session.post(url, data=body) for _ in range(min(20, max_inflight))))
        tasks = []
        t0 = time.perf_counter() + 0.05
        async for at in open_loop(n, rate, start_in=0.05):
            if inflight >= max_inflight:
                outcome["dropped"] += 1
                continue
            tasks.append(asyncio.create_task(one(at)))
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        elapsed = time.perf_counter() - t0
    return {"rate": rate, "sent": len(tasks), "achieved": outcome["ok"] / elapsed, **outcome, "client": latencies}


def cold_decisions(iterations: int) -> dict[str, float]:
    """rollout_decision with no cache: the spec digest and the ECDSA check every time."""
    world = World()
    world.cache = None

    def decide() -> None:
        assert world.decide().allowed

    return percentiles_ms(timed(decide, iterations))


# --- servers under test: a URL, the process to charge CPU to, and its own timings when it has any -----------------


@dataclass
class Served:
    url: str
    pid: int
    h2: bool
    timings: Any = None
    """The aigate server's pipe (reset/collect), else None."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def aigate_server(tmp: str) -> Iterator[Served]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=server_main, args=(tmp, child), daemon=True)
    proc.start()
    try:
        base = parent.recv()
        assert proc.pid is not None
        yield Served(f"{base.rstrip('/')}/{ROLLOUTS_WEBHOOK}", proc.pid, h2=True, timings=parent)
        parent.send("stop")
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()


@contextmanager
def command_server(argv: list[str], port: int, h2: bool) -> Iterator[Served]:
    """A server started from ARGV, ready once its port takes a TLS connection."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise SystemExit(f"the webhook server exited ({proc.returncode}): {err.strip()[-500:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the webhook server did not listen on 127.0.0.1:{port} within 60 s") from None
                time.sleep(0.1)
        yield Served(f"https://127.0.0.1:{port}/{ROLLOUTS_WEBHOOK}", proc.pid, h2=h2)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def floor_binary() -> str:
    out = subprocess.run(
        ["bash", str(ROOT / "hack" / "build-floor-webhook.sh")], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"building the floor webhook failed: {out.stderr.strip()[-500:]}")
    return out.stdout.strip().splitlines()[-1]


# --- the h2load client ------------------------------------------------------------------------------------------

H2LOAD_HINT = "h2load is not installed: apt-get install -y nghttp2-client (Debian's nghttp2 load generator)"


def run_h2load(served: Served, rate: float, seconds: float, body: bytes, workdir: Path) -> dict[str, Any]:
    """One rate through h2load; latencies from its per-request log, the warm-up second left out."""
    conns, streams = (8, 32) if served.h2 else (64, 1)
    body_file, log_file = workdir / "review.json", workdir / f"h2load-{rate:g}.log"
    body_file.write_bytes(body)
    log_file.unlink(missing_ok=True)
    warm = 1.0
    argv = [
        "h2load", "-c", str(conns), "-m", str(streams), "--rps", f"{rate / conns:g}", "-D", f"{seconds + warm:g}",
        "-d", str(body_file), "-H", "content-type: application/json", f"--log-file={log_file}",
    ]  # fmt: skip
    if not served.h2:
        argv.append("--h1")
    cpu0, t0 = cpu_seconds(served.pid), time.time()
    out = subprocess.run([*argv, served.url], capture_output=True, text=True, check=False)
    cpu = cpu_seconds(served.pid) - cpu0
    if out.returncode != 0:
        raise SystemExit(f"h2load failed ({out.returncode}): {(out.stderr or out.stdout).strip()[-800:]}")
    rows = [line.split("\t") for line in log_file.read_text().splitlines() if line.strip()]
    if os.environ.get("AIGATE_BENCH_KEEP_LOG"):
        shutil.copy(log_file, os.environ["AIGATE_BENCH_KEEP_LOG"])
    starts = [int(r[0]) / 1e6 for r in rows]
    begin = (min(starts) if starts else t0) + warm
    counted = [(int(r[1]), int(r[2]) / 1e6) for r, st in zip(rows, starts, strict=True) if st >= begin]
    ok = [dt for status, dt in counted if status == 200]
    # h2load's own count over the whole run (warm-up included): requests it started, and those answered 2xx
    summary = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded", out.stdout)
    started, succeeded = (int(summary.group(2)), int(summary.group(4))) if summary else (len(rows), len(rows))
    # offered in the counted window (first to last send after the warm-up), less one per connection at the edges;
    # fewer sent means h2load held requests back because every stream was busy (it never drops one): they count as
    # dropped, like the unanswered ones
    span = max((st for st in starts if st >= begin), default=begin) - begin
    dropped = (started - succeeded) + max(0, int(rate * span) - conns - len(counted))
    proto = "h2" if "h2" in out.stdout.split("Application protocol:", 1)[-1][:8] else "http/1.1"
    return {
        "rate": rate,
        "sent": len(counted),
        "ok": len(ok),
        "errors": len(counted) - len(ok),
        "dropped": dropped,
        "achieved": len(ok) / seconds,
        "client": percentiles_ms(ok),
        "server_cpu_ms_per_request": 1000 * cpu / max(1, len(rows)),
        "protocol": proto,
        "connections": conns,
        "streams": streams,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rates", default="100,500,1000")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--max-inflight", type=int, default=256, help="the python client's cap")
    parser.add_argument(
        "--server", default="aigate", help="comma-separated: aigate, floor, cmd; several take turns at each rate"
    )
    parser.add_argument("--server-cmd", help="with --server cmd: a command line with {cert}, {key} and {port}")
    parser.add_argument("--server-h2", action="store_true", help="with --server cmd: the server offers HTTP/2")
    parser.add_argument("--client", choices=("python", "h2load"), default="python")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",")]
    servers = args.server.split(",")
    if unknown := [x for x in servers if x not in ("aigate", "floor", "cmd")]:
        raise SystemExit(f"--server: unknown {', '.join(unknown)} (choose among aigate, floor, cmd)")
    if args.client == "h2load" and shutil.which("h2load") is None:
        raise SystemExit(H2LOAD_HINT)
    if "cmd" in servers and not args.server_cmd:
        raise SystemExit("--server cmd needs --server-cmd 'COMMAND {cert} {key} {port}'")

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        certs = serving_certs(Path(tmp))
        started: dict[str, Served] = {}
        for name in servers:
            port = free_port()
            if name == "aigate":
                started[name] = stack.enter_context(aigate_server(tmp))
            elif name == "floor":
                argv_ = [floor_binary(), "-cert", str(certs.cert), "-key", str(certs.key), "-port", str(port)]
                started[name] = stack.enter_context(command_server(argv_, port, h2=True))
            else:
                fields = {"cert": str(certs.cert), "key": str(certs.key), "port": str(port)}
                cmd = [a.format(**fields) for a in args.server_cmd.split()]
                started[name] = stack.enter_context(command_server(cmd, port, h2=args.server_h2))
        body = review_body()
        for rate in rates:
            for name, served in started.items():  # side by side: each server at this rate before the next rate
                if served.timings is not None:
                    served.timings.send("reset")
                    served.timings.recv()
                if args.client == "h2load":
                    r = run_h2load(served, rate, args.seconds, body, Path(tmp))
                    warm = 0
                else:
                    cpu0 = cpu_seconds(served.pid)
                    r = asyncio.run(run_rate(served.url, certs, rate, args.seconds, args.max_inflight, body))
                    r["client"] = percentiles_ms(r["client"])
                    warm = min(20, args.max_inflight)
                    r["server_cpu_ms_per_request"] = 1000 * (cpu_seconds(served.pid) - cpu0) / max(1, r["sent"] + warm)
                    r["protocol"] = "http/1.1"
                if served.timings is not None:
                    served.timings.send("collect")
                    timings = served.timings.recv()
                    # the python client's warm-up requests are in the server's timings too; drop them
                    r["decision"] = percentiles_ms(timings["decision"][warm:])
                    r["server"] = percentiles_ms(timings["server"][warm:])
                r["webhook"] = name
                results.append(r)
    cold = cold_decisions(200)
    load = os.getloadavg()

    if args.json:
        print(json.dumps({"client": args.client, "results": results, "cold_decision": cold, "loadavg": load}, indent=2))
        return
    print(f"rollout admission, client {args.client}, {args.seconds:g}s per rate and webhook, TLS on 127.0.0.1 (ms)")
    print(
        f"{'rate/s':>7} {'webhook':>7} {'achieved':>9} {'ok':>6} {'err':>4} {'drop':>5} {'proto':>8} "
        f"{'decision p50/p99':>17} {'server p50/p99':>15} {'client p50/p99':>15} {'cpu/req':>7} {'p99/floor':>9}"
    )
    nan = {"p50": float("nan"), "p99": float("nan")}
    floor = {r["rate"]: r["client"]["p99"] for r in results if r["webhook"] == "floor"}
    for r in results:
        d, s, c = r.get("decision", nan), r.get("server", nan), r["client"]
        ratio = f"{c['p99'] / floor[r['rate']]:.2f}x" if floor.get(r["rate"]) else "-"
        print(
            f"{r['rate']:>7.0f} {r['webhook']:>7} {r['achieved']:>9.1f} {r['ok']:>6} "
            f"{r['errors'] + r.get('unexpected', 0):>4} {r['dropped']:>5} {r['protocol']:>8} "
            f"{d['p50']:>8.3f}/{d['p99']:<8.3f} {s['p50']:>7.3f}/{s['p99']:<7.3f} "
            f"{c['p50']:>7.3f}/{c['p99']:<7.3f} {r['server_cpu_ms_per_request']:>7.3f} {ratio:>9}"
        )
    print(f"cold decision (no cache, ECDSA P-256 verify each time): p50 {cold['p50']:.3f} ms, p99 {cold['p99']:.3f} ms")
    print(machine_line())


if __name__ == "__main__":
    main()
