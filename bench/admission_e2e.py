"""Rollout admission end to end: server-side dry-run Deployment creates through the API server, with and without
aigate's webhook configuration registered, and the latency the webhook adds.

    .venv/bin/python bench/admission_e2e.py [--clients 1,50,500] [--requests 3000] [--seconds 40] [--rounds 2]

What runs (on 127.0.0.1 and the pod bridge's 10.244.0.1): a local cluster built from source (etcd, kube-apiserver,
kube-controller-manager, a real node), the LLM API simulator, and aigate's operator with its webhook
configurations pointing at it over TLS. One AIWorkload (two models, a two-case suite, human approval on the write
tool) goes through a real gate Job and passes, so the operator holds signed PASS evidence for it: every measured
request takes the full allow path (index lookups, spec digest over the workload and its ConfigMap, DSSE/ECDSA
signature verification, expiry check), not a shortcut for a failing, warn or audit workload.

The clients: C concurrent closed-loop workers in one asyncio process (aiohttp, one HTTP/1.1 keep-alive connection
per worker, TLS with the admin client certificate from the kubeconfig) each sending
`POST /apis/apps/v1/namespaces/NS/deployments?dryRun=All` of a Deployment labelled for the workload, one after the
other, until --requests answers or --seconds have passed. Nothing is stored (dry run); the API server still runs
defaulting, validation and every admission plugin, webhooks included (the rollout webhook is `sideEffects: None`).
The admin user is in system:masters, so API Priority and Fairness puts it in the `exempt` level: no APF queueing.

Phases alternate off/on for --rounds rounds per client count (the configuration is deleted or applied, then a
probe waits until the API server's view agrees: a Deployment labelled for a workload that does not exist is
admitted without the webhook and denied with it). A warm-up of max(C, 100) requests per phase is not counted.

Reported per client count and phase: answers, errors, throughput, p50/p95/p99 in ms; then the difference (on - off)
of each percentile: the latency the webhook adds end to end, queueing included. Also, per "on" phase, the API
server's own mean webhook call time (apiserver_admission_webhook_admission_duration_seconds) and the operator's
mean decision time (aigate_admission_duration_seconds), both over the whole phase, warm-up included. With --rate R
the clients are paced: request i is due at t0 + i/R and its latency counts from then. All processes share the
machine's cores: closed-loop clients saturate it, so at high C the figures are throughput-bound queueing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hack"))
sys.path.insert(0, str(ROOT / "tests" / "cluster"))

from test_operator import PROFILE, deployment, setup_namespace, wait_decision, workload  # noqa: E402

from aigate.simulator.profile import SimProfile  # noqa: E402
from aigate.simulator.server import SimulatorServer  # noqa: E402
from localcluster.aigate_operator import (  # noqa: E402
    OperatorProcess,
    install_crd,
    prepare_operator,
    register_webhooks,
    unregister_webhooks,
)
from localcluster.testing import Cluster, cluster_session  # noqa: E402

WORKLOAD = "fraud-review"
MISSING = "no-such-workload"


def percentiles(xs: list[float]) -> dict[str, float]:
    if not xs:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "n": 0}
    s = sorted(xs)

    def at(q: float) -> float:
        return s[min(len(s) - 1, int(len(s) * q))] * 1000

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "n": len(s)}


def histogram_totals(text: str, metric: str, **labels: str) -> tuple[float, float]:
    """(sum, count) of a Prometheus histogram over the series matching LABELS."""
    total, count = 0.0, 0.0
    for line in text.splitlines():
        for suffix in ("_sum", "_count"):
            if not line.startswith((metric + suffix + "{", metric + suffix + " ")):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                value = float(line.rsplit(" ", 1)[1])
                if suffix == "_sum":
                    total += value
                else:
                    count += value
    return total, count


class Api:
    """The API server, as the admin client certificate sees it."""

    def __init__(self, cluster: Cluster) -> None:
        assert cluster.control_plane is not None, "this bench starts its own control plane"
        self.cp = cluster.control_plane
        self.server = self.cp.server
        self.ctx: ssl.SSLContext = self.cp.admin_ssl_context()

    def metrics(self) -> str:
        import urllib.request

        with urllib.request.urlopen(self.server + "/metrics", context=self.ctx, timeout=30) as r:
            return str(r.read().decode())


async def load(
    api: Api, ns: str, body: bytes, clients: int, requests: int, seconds: float, warmup: int, rate: float = 0.0
) -> dict[str, Any]:
    """CLIENTS workers; WARMUP answers first (not counted), then REQUESTS answers or SECONDS. Closed loop when
    RATE is 0; else request i is due at t0 + i/RATE, taken by the next free worker, and its latency counts from
    when it was due (so time waiting for a free worker is included)."""
    url = f"{api.server}/apis/apps/v1/namespaces/{ns}/deployments?dryRun=All"
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    connector = aiohttp.TCPConnector(limit=clients, ssl=api.ctx, force_close=False)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def one(due: float | None = None) -> tuple[float, str | None]:
            t = time.perf_counter() if due is None else due
            try:
                async with session.post(url, data=body, headers=headers) as r:
                    payload = await r.read()
                    if r.status != 201:
                        msg = payload[:160].decode(errors="replace")
                        return time.perf_counter() - t, f"HTTP {r.status}: {msg}"
            except Exception as e:
                return time.perf_counter() - t, f"{type(e).__name__}: {e}"[:160]
            return time.perf_counter() - t, None

        async def worker(budget: list[int], deadline: float, record: bool, t0: float = 0.0) -> None:
            while budget[0] > 0 and time.perf_counter() < deadline:
                budget[0] -= 1
                due = None
                if record and rate > 0:
                    due = t0 + (requests - budget[0] - 1) / rate
                    if due > time.perf_counter():
                        await asyncio.sleep(due - time.perf_counter())
                dt, err = await one(due)
                if not record:
                    continue
                if err is None:
                    latencies.append(dt)
                else:
                    errors[err] = errors.get(err, 0) + 1

        warm = [warmup]
        await asyncio.gather(*(worker(warm, time.perf_counter() + 60, False) for _ in range(clients)))
        budget = [requests]
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(budget, t0 + seconds, True, t0) for _ in range(clients)))
        elapsed = time.perf_counter() - t0
    return {
        "ok": len(latencies),
        "errors": sum(errors.values()),
        "error_kinds": dict(sorted(errors.items(), key=lambda kv: -kv[1])[:3]),
        "seconds": elapsed,
        "throughput": len(latencies) / elapsed if elapsed > 0 else 0.0,
        "latencies": latencies,
    }


def dry_run(cluster: Cluster, ns: str, wl: str) -> Any:
    doc = deployment(ns, "probe-app", wl)
    return cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(doc), check=False)


def set_webhook(cluster: Cluster, op: OperatorProcess, ns: str, on: bool) -> None:
    """Register or delete the configurations, then wait until the API server acts accordingly."""
    if on:
        register_webhooks(cluster.kubectl, op)
    else:
        unregister_webhooks(cluster.kubectl)

    def agrees() -> bool:
        denied = dry_run(cluster, ns, MISSING).returncode != 0
        return denied == on

    cluster.wait_for(
        agrees, timeout=60, interval=0.2, what=f"the API server to see the webhook {'on' if on else 'off'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--clients", default="1,50,500", help="comma-separated concurrent client counts")
    parser.add_argument("--requests", type=int, default=3000, help="counted answers per phase (cap)")
    parser.add_argument("--seconds", type=float, default=40.0, help="time cap per phase")
    parser.add_argument("--rounds", type=int, default=2, help="off/on alternations per client count")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="total requests/s, paced (0: closed loop, as fast as answered)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    client_counts = [int(c) for c in args.clients.split(",")]

    results: list[dict[str, Any]] = []
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="aigate-bench-")))
        print("starting a cluster with a real node ...", file=sys.stderr)
        cluster = stack.enter_context(cluster_session(tmp / "cp", by="bench/admission_e2e.py"))
        sim = stack.enter_context(
            SimulatorServer(SimProfile.model_validate(PROFILE), host=cluster.host_address or "127.0.0.1")
        )
        install_crd(cluster.kubectl)
        cluster.kubectl("create", "namespace", "aigate-system")
        op = prepare_operator(tmp / "operator", cluster.kubeconfig)
        op.start()
        stack.callback(op.stop)
        op.wait_ready()
        register_webhooks(cluster.kubectl, op)
        stack.callback(unregister_webhooks, cluster.kubectl)

        ns = cluster.create_namespace("bench")
        setup_namespace(cluster, ns, WORKLOAD)
        cluster.kubectl("apply", "-f", "-", input=json.dumps(workload(ns, WORKLOAD, sim)))
        print("waiting for the gate Job to pass ...", file=sys.stderr)
        wait_decision(cluster, ns, WORKLOAD, "PASS")
        ok = dry_run(cluster, ns, WORKLOAD)
        assert ok.returncode == 0, f"the passing workload's Deployment was refused: {ok.stderr}"
        refused = dry_run(cluster, ns, MISSING)
        assert refused.returncode != 0 and "denied the request" in refused.stderr, refused.stderr

        api = Api(cluster)
        body = json.dumps(deployment(ns, "fraud-app", WORKLOAD)).encode()
        for clients in client_counts:
            phases: dict[str, list[float]] = {"off": [], "on": []}
            summary: dict[str, dict[str, float]] = {
                p: {"ok": 0, "errors": 0, "seconds": 0.0, "api_sum": 0.0, "api_n": 0, "op_sum": 0.0, "op_n": 0}
                for p in phases
            }
            kinds: dict[str, int] = {}
            for _ in range(args.rounds):
                for phase in ("off", "on"):
                    set_webhook(cluster, op, ns, phase == "on")
                    before_api = histogram_totals(
                        api.metrics(),
                        "apiserver_admission_webhook_admission_duration_seconds",
                        name="rollouts.aigate.dev",
                    )
                    before_op = histogram_totals(op.webhook_http("/metrics")[1], "aigate_admission_duration_seconds")
                    print(f"  {clients} clients, webhook {phase} ...", file=sys.stderr)
                    r = asyncio.run(
                        load(
                            api,
                            ns,
                            body,
                            clients,
                            args.requests,
                            args.seconds,
                            warmup=max(clients, 100),
                            rate=args.rate,
                        )
                    )
                    after_api = histogram_totals(
                        api.metrics(),
                        "apiserver_admission_webhook_admission_duration_seconds",
                        name="rollouts.aigate.dev",
                    )
                    after_op = histogram_totals(op.webhook_http("/metrics")[1], "aigate_admission_duration_seconds")
                    phases[phase] += r["latencies"]
                    s = summary[phase]
                    s["ok"] += r["ok"]
                    s["errors"] += r["errors"]
                    s["seconds"] += r["seconds"]
                    s["api_sum"] += after_api[0] - before_api[0]
                    s["api_n"] += after_api[1] - before_api[1]
                    s["op_sum"] += after_op[0] - before_op[0]
                    s["op_n"] += after_op[1] - before_op[1]
                    for k, v in r["error_kinds"].items():
                        kinds[k] = kinds.get(k, 0) + v
            row: dict[str, Any] = {"clients": clients, "error_kinds": kinds}
            for phase, xs in phases.items():
                s = summary[phase]
                row[phase] = {
                    **percentiles(xs),
                    "errors": s["errors"],
                    "throughput": s["ok"] / s["seconds"] if s["seconds"] else 0.0,
                    "apiserver_webhook_mean_ms": 1000 * s["api_sum"] / s["api_n"] if s["api_n"] else None,
                    "operator_decision_mean_ms": 1000 * s["op_sum"] / s["op_n"] if s["op_n"] else None,
                }
            row["added"] = {q: row["on"][q] - row["off"][q] for q in ("p50", "p95", "p99")}
            results.append(row)
        load_avg = os.getloadavg()

    if args.json:
        print(json.dumps({"results": results, "loadavg": load_avg}, indent=2))
        return 0
    mode = f"paced at {args.rate:g} req/s" if args.rate > 0 else "closed loop"
    print(f"dry-run Deployment creates through the API server, {mode}, ms")
    print(
        f"{'clients':>7} {'webhook':>7} {'answers':>8} {'err':>5} {'req/s':>7} "
        f"{'p50':>8} {'p95':>8} {'p99':>8} {'apiserver->webhook mean':>24} {'operator decision mean':>23}"
    )
    for row in results:
        for phase in ("off", "on"):
            p = row[phase]
            api_mean = "-" if p["apiserver_webhook_mean_ms"] is None else f"{p['apiserver_webhook_mean_ms']:.2f}"
            op_mean = "-" if p["operator_decision_mean_ms"] is None else f"{p['operator_decision_mean_ms']:.2f}"
            print(
                f"{row['clients']:>7} {phase:>7} {p['n']:>8} {p['errors']:>5} {p['throughput']:>7.0f} "
                f"{p['p50']:>8.1f} {p['p95']:>8.1f} {p['p99']:>8.1f} {api_mean:>24} {op_mean:>23}"
            )
        a = row["added"]
        blank = ""
        print(f"{row['clients']:>7} {'added':>7} {blank:>22} {a['p50']:>8.1f} {a['p95']:>8.1f} {a['p99']:>8.1f}")
        if row["error_kinds"]:
            print(f"        errors: {row['error_kinds']}")
    target = next((r for r in results if r["clients"] == 50), None)
    if target is not None:
        verdict = "met" if target["added"]["p99"] <= 20 else "missed"
        print(f"target: added end-to-end p99 <= 20 ms at 50 clients: {target['added']['p99']:.1f} ms, {verdict}")
    print(f"load average at the end: {load_avg[0]:.2f} {load_avg[1]:.2f} {load_avg[2]:.2f}; {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
