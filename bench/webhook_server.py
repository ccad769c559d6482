"""Candidate servers for `aigate webhook`, side by side: the same ASGI app (aigate.webhook.server.App, the real
Reviewer over an Index holding the remediated example, its ConfigMap and passing signed evidence) served over TLS
on 127.0.0.1 by each candidate, driven by h2load (Debian's nghttp2-client, C: not the bottleneck).

    .venv/bin/python bench/webhook_server.py [--servers hypercorn,hypercorn-uvloop,granian] [--rate 2000]
        [--seconds 10] [--clients 4] [--h1]

Each run: the server in a process of its own (warmed), then h2load with `--rps` per client at the given total
rate for --seconds, one POST of a labelled-Deployment AdmissionReview (~1.5 KB) per request. Reported: h2load's
request latency (p50 and p99 from h2load's per-request --log-file; mean, max), requests done/failed, and
the server process's CPU time per request. Figures and the date go in bench/README.md ("Webhook server").
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from timing import cpu_seconds, percentile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))


def serve(kind: str, certdir: str, port: int) -> None:
    from webhook_app import build_app

    app = build_app()
    cert, key = Path(certdir) / "webhook.crt", Path(certdir) / "webhook.key"
    if kind.startswith("hypercorn"):
        from hypercorn.asyncio import serve as hserve
        from hypercorn.config import Config

        c = Config()
        c.bind = [f"127.0.0.1:{port}"]
        c.certfile, c.keyfile = str(cert), str(key)
        c.accesslog = None
        c.alpn_protocols = ["h2", "http/1.1"]
        c.h2_max_concurrent_streams = 250
        c.keep_alive_max_requests = 10**9  # default 1000: it closes the connection, and h2load does not reconnect
        if kind.endswith("uvloop"):
            import uvloop

            uvloop.run(hserve(app, c, mode="asgi"))
        else:
            asyncio.run(hserve(app, c, mode="asgi"))
    elif kind.startswith("granian"):
        from aigate.webhook.server import CertificateFiles, tls_server

        async def main() -> None:  # the server exactly as `aigate webhook` configures it
            await tls_server(app, address="127.0.0.1", port=port, files=CertificateFiles(cert, key)).serve()

        if kind.endswith("uvloop"):
            import uvloop

            uvloop.run(main())
        else:
            asyncio.run(main())
    else:
        raise SystemExit(f"unknown server {kind}")


def certs(directory: Path) -> None:
    sys.path.insert(0, str(ROOT / "hack"))
    from localcluster.pki import CA

    ca = CA.create(directory, "bench-ca")
    ca.issue(directory, "webhook", "127.0.0.1", dns_names=("localhost",), ips=("127.0.0.1",), server=True)


def run(kind: str, rate: int, seconds: int, clients: int, h1: bool, tmp: Path) -> dict[str, Any]:
    from webhook_app import review_body

    port = 20000 + os.getpid() % 20000
    proc = mp.get_context("spawn").Process(target=serve, args=(kind, str(tmp), port), daemon=True)
    proc.start()
    body = tmp / "review.json"
    body.write_bytes(review_body())
    url = f"https://127.0.0.1:{port}/rollouts.aigate.dev"
    base = ["h2load", "-H", "content-type: application/json", "-d", str(body)] + (["--h1"] if h1 else [])
    for _ in range(100):  # until it answers
        if subprocess.run([*base, "-n", "1", "-c", "1", url], capture_output=True, text=True).stdout.count(
            "1 succeeded"
        ):
            break
        time.sleep(0.1)
    subprocess.run([*base, "-n", "2000", "-c", str(clients), "-m", "10", url], capture_output=True)  # warm
    assert proc.pid is not None
    before = cpu_seconds(proc.pid)
    per_client = max(1, rate // clients)
    log = tmp / f"{kind}.log"
    out = subprocess.run(
        [*base, "-c", str(clients), "-m", "100", f"--rps={per_client}", "-D", str(seconds), f"--log-file={log}", url],
        capture_output=True,
        text=True,
    ).stdout
    cpu = cpu_seconds(proc.pid) - before
    proc.kill()
    proc.join()
    done = int(re.search(r"(\d+) succeeded", out).group(1))  # type: ignore[union-attr]
    failed = int(re.search(r"(\d+) failed", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", out)
    proto = re.search(r"Application protocol: (\S+)", out)
    durations = sorted(int(line.split("\t")[2]) / 1000 for line in log.read_text().splitlines() if line.strip())
    p50, p99 = percentile(durations, 0.5), percentile(durations, 0.99)
    return {
        "server": kind,
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
        "protocol": proto.group(1) if proto else "?",
        "offered_rps": per_client * clients,
        "done": done,
        "failed": failed,
        "rps": round(done / seconds),
        "min": m.group(1) if m else "?",
        "max": m.group(2) if m else "?",
        "mean": m.group(3) if m else "?",
        "sd": m.group(4) if m else "?",
        "cpu_ms_per_req": round(cpu * 1000 / max(1, done), 3),
    }


def index_rss(n: int) -> None:
    """The webhook process's resident memory with `n` workloads indexed (the example's spec, 50 namespaces, each
    with the example's ConfigMaps), every decision warmed as the watches warm them."""
    import copy

    import granian  # noqa: F401 - what the process holds
    import kubernetes  # noqa: F401

    import aigate.webhook.server  # noqa: F401
    from admission_support import PUB, World
    from aigate.policy.governance import PlatformDefault
    from aigate.webhook.admission import VerifyCache
    from aigate.webhook.index import Index

    def rss_mb() -> float:
        return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) / 1024

    print(f"after imports: {rss_mb():.1f} MB")
    world = World()
    index = Index(
        operator_namespace="aigate-system",
        public_key=PUB,
        verify_cache=VerifyCache(),
        platform_default=PlatformDefault(),
    )
    started = time.perf_counter()
    for i in range(n):
        ns = f"team-{i % 50}"
        for cm in world.configmaps.values():
            c = copy.deepcopy(cm)
            c["metadata"].update(namespace=ns, uid=f"c-{ns}", resourceVersion="1")
            index.apply_configmap("ADDED", c)
        wl = copy.deepcopy(world.workload)
        wl["metadata"].update(name=f"wl-{i}", namespace=ns, uid=f"u-{i}", resourceVersion="1")
        index.apply_workload("ADDED", wl)
    index.configmaps_listed()
    print(f"{n} workloads indexed and warmed in {time.perf_counter() - started:.1f} s: {rss_mb():.1f} MB")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--servers", default="hypercorn,hypercorn-uvloop,granian,granian-uvloop")
    p.add_argument("--rate", type=int, default=2000)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--h1", action="store_true")
    p.add_argument("--index-rss", type=int, metavar="N", help="instead: RSS with N workloads indexed")
    args = p.parse_args()
    if args.index_rss:
        index_rss(args.index_rss)
        return
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        certs(tmp)
        for kind in args.servers.split(","):
            print(run(kind, args.rate, args.seconds, args.clients, args.h1, tmp), flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
