"""Rollout admission latency: `rollout_decision` and the HTTP layer in front of it, at a fixed arrival rate.

Why: the API server waits for this webhook on every create/update of a labelled Deployment (timeoutSeconds 5,
failurePolicy Fail), so its latency is added to every rollout, and a slow webhook is a cluster-wide outage for
gated workloads.

    .venv/bin/python bench/admission.py [--rates 100,500,1000] [--seconds 5] [--json]

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
import sys
import tempfile
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from aigate.controller import names  # noqa: E402
from aigate.controller.admission import rollout_decision  # noqa: E402
from aigate.controller.webhooks import ROLLOUTS_WEBHOOK  # noqa: E402
from test_admission import NAME, NOW, NS, PUB, World  # noqa: E402
from webhook_tls import Certs, serving_certs  # noqa: E402


def percentiles(xs: list[float]) -> dict[str, float]:
    if not xs:
        return {"p50": float("nan"), "p99": float("nan"), "n": 0}
    s = sorted(xs)
    return {
        "p50": s[len(s) // 2] * 1000,
        "p99": s[min(len(s) - 1, int(len(s) * 0.99))] * 1000,
        "n": len(s),
    }


# --- server process ---------------------------------------------------------------------------------------------


def server_main(certdir: str, conn: Connection) -> None:
    import uvloop

    uvloop.run(_server(Path(certdir), conn))


async def _server(certdir: Path, conn: Connection) -> None:
    from aigate.webhook.server import CertificateFiles, tls_server
    from webhook_server import build_app

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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- client -----------------------------------------------------------------------------------------------------


def review_body(deny: bool = False) -> bytes:
    labels = {"app": "fraud", names.WORKLOAD_LABEL: "nope" if deny else NAME}
    container = {"name": "app", "image": "registry.example/fraud-assistant:1.4.2", "ports": [{"containerPort": 8080}]}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "fraud-assistant", "namespace": NS, "labels": labels},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "fraud"}},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "requestKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "requestResource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": "fraud-assistant",
            "namespace": NS,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:argocd:argocd-application-controller", "groups": []},
            "object": deployment,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }
    return json.dumps(review).encode()


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
        for i in range(n):
            at = t0 + i / rate
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if inflight >= max_inflight:
                outcome["dropped"] += 1
                continue
            tasks.append(asyncio.create_task(one(at)))
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        elapsed = time.perf_counter() - t0
    return {"rate": rate, "sent": len(tasks), "achieved": outcome["ok"] / elapsed, **outcome, "client": latencies}


def cold_decisions(iterations: int) -> dict[str, float]:
    world = World()
    now = NOW
    xs = []
    for _ in range(iterations):
        t = time.perf_counter()
        d = rollout_decision(
            kind="Deployment",
            namespace=NS,
            labels=world.labels,
            workload=world.workload,
            evidence_cm=world.evidence,
            configmaps=world.configmaps,
            public_key=PUB,
            now=now,
            verify_cache=None,
        )
        xs.append(time.perf_counter() - t)
        assert d.allowed
    return percentiles(xs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="100,500,1000")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--max-inflight", type=int, default=256)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",")]

    with tempfile.TemporaryDirectory() as tmp:
        certs = serving_certs(Path(tmp))
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=server_main, args=(tmp, child), daemon=True)
        proc.start()
        try:
            base = parent.recv()
            url = f"{base.rstrip('/')}/{ROLLOUTS_WEBHOOK}"
            body = review_body()
            results = []
            for rate in rates:
                parent.send("reset")
                parent.recv()
                r = asyncio.run(run_rate(url, certs, rate, args.seconds, args.max_inflight, body))
                parent.send("collect")
                timings = parent.recv()
                # the warm-up requests are in the server's timings too; drop them
                warm = min(20, args.max_inflight)
                r["decision"] = percentiles(timings["decision"][warm:])
                r["server"] = percentiles(timings["server"][warm:])
                r["client"] = percentiles(r["client"])
                r["server_cpu_ms_per_request"] = timings["cpu"][0] * 1000 / max(1, r["sent"] + warm)
                results.append(r)
            parent.send("stop")
        finally:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
    cold = cold_decisions(200)

    if args.json:
        print(json.dumps({"results": results, "cold_decision": cold}, indent=2))
        return
    print(f"rollout admission, {args.seconds:g}s per rate, TLS on 127.0.0.1, open-loop (ms)")
    print(
        f"{'rate/s':>7} {'achieved':>9} {'ok':>6} {'err':>4} {'drop':>5} "
        f"{'decision p50/p99':>17} {'server p50/p99':>15} {'client p50/p99':>15} {'cpu/req':>7}"
    )
    for r in results:
        d, s, c = r["decision"], r["server"], r["client"]
        print(
            f"{r['rate']:>7.0f} {r['achieved']:>9.1f} {r['ok']:>6} {r['errors'] + r['unexpected']:>4} "
            f"{r['dropped']:>5} {d['p50']:>8.3f}/{d['p99']:<8.3f} {s['p50']:>7.3f}/{s['p99']:<7.3f} "
            f"{c['p50']:>7.3f}/{c['p99']:<7.3f} {r['server_cpu_ms_per_request']:>7.3f}"
        )
    print(f"cold decision (no cache, ECDSA P-256 verify each time): p50 {cold['p50']:.3f} ms, p99 {cold['p99']:.3f} ms")
    print(f"python {sys.version.split()[0]}, {mp.cpu_count()} CPUs (server and client are separate processes)")


if __name__ == "__main__":
    main()
