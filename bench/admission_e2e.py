"""Rollout admission end to end: server-side dry-run Deployment creates through the API server, with and without
aigate's webhook configuration registered, and the latency the webhook adds.

    .venv/bin/python bench/admission_e2e.py [--clients 1,50,500] [--requests 3000] [--seconds 40] [--rounds 2]
        [--phases off,on,floor] [--webhook operator|aigate] [--rate 0,200]

What runs (on 127.0.0.1 and the pod bridge's 10.244.0.1): a local cluster built from source (etcd, kube-apiserver,
kube-controller-manager, a real node), the LLM API simulator, aigate's operator and `aigate webhook` (its own process),
with aigate's webhook configurations pointing at the webhook over TLS. One AIWorkload (two models, a two-case suite,
human approval on the write tool) goes through a real gate Job and passes, so the operator holds signed PASS evidence
for it: every measured request takes the full allow path (index lookups, spec digest over the workload and its
ConfigMap, DSSE/ECDSA signature verification, expiry check), not a shortcut for a failing, warn or audit workload.

The clients: C concurrent closed-loop workers in one asyncio process (aiohttp, one HTTP/1.1 keep-alive connection
per worker, TLS with the admin client certificate from the kubeconfig) each sending
`POST /apis/apps/v1/namespaces/NS/deployments?dryRun=All` of a Deployment labelled for the workload, one after the
other, until --requests answers or --seconds have passed. Nothing is stored (dry run); the API server still runs
defaulting, validation and every admission plugin, webhooks included (the rollout webhook is `sideEffects: None`).
The admin user is in system:masters, so API Priority and Fairness puts it in the `exempt` level: no APF queueing.

Three phases take turns for --rounds rounds per client count: `off` (no webhook configuration), `on` (aigate's
configurations pointing at the webhook under test) and `floor` (the very same configurations, same TLS certificate
and caBundle, objectSelector, namespaceSelector, timeout and failurePolicy, pointing instead at the allow-all Go
server hack/build-floor-webhook.sh builds: the cheapest a webhook can be, HTTP/2 by ALPN). Before each phase the
configuration is deleted or applied and a probe waits until the API server's view agrees: a Deployment labelled for a
workload that does not exist is admitted with no webhook (and the floor's answered count does not move), denied by
aigate's, admitted by the floor's (and its count moves). A warm-up of max(C, 100) requests per phase is not counted.

The webhook under test (--webhook): `operator`, aigate's operator serving both webhooks itself (kopf's server, as
on main before `aigate webhook`), or `aigate`, the separate `aigate webhook` process, once the harness starts one
(hack/localcluster/aigate_operator.py); the default is whichever this tree's harness serves.

Reported per client count and phase: answers, errors, throughput, p50/p95/p99 in ms; then per percentile the latency
each webhook adds end to end over `off` (queueing included), and aigate's added latency as a ratio to the floor's. Also,
per phase, the API server's own mean webhook call time (apiserver_admission_webhook_admission_duration_seconds) and
aigate's mean decision time (aigate_admission_duration_seconds), both over the whole phase, warm-up included, and the
webhook process's CPU time (/proc: TLS, HTTP, the app and the decision) per call the API server made to it (aigate's in
`on`, the Go floor's in `floor`); at the end, the HTTP versions the API server negotiated with aigate. With --rate R the
clients are paced (several rates: each in turn, in the same cluster; 0 is closed loop): request i is due at t0 + i/R and
its latency counts from then. All processes share the machine's cores: closed-loop clients saturate it, so at high C the
figures are throughput-bound queueing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hack"))
sys.path.insert(0, str(ROOT / "tests" / "cluster"))

from flows import PROFILE, deployment, setup_namespace, wait_decision, workload  # noqa: E402

from aigate.simulator.profile import SimProfile  # noqa: E402
from aigate.simulator.server import SimulatorServer  # noqa: E402
from aigate.webhook.configurations import mutating_configuration, validating_configuration  # noqa: E402
from localcluster.aigate_operator import (  # noqa: E402
    OPERATOR_NAMESPACE,
    OperatorProcess,
    install_crd,
    prepare_operator,
    register_webhooks,
    unregister_webhooks,
)
from localcluster.controlplane import free_ports  # noqa: E402
from localcluster.testing import Cluster, cluster_session  # noqa: E402
from timing import cpu_seconds, percentiles_ms  # noqa: E402

WORKLOAD = "fraud-review"
MISSING = "no-such-workload"


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


class Floor:
    """The allow-all Go webhook with the operator's serving certificate, on its own port."""

    def __init__(self, op: OperatorProcess, log: Path) -> None:
        out = subprocess.run(
            ["bash", str(ROOT / "hack" / "build-floor-webhook.sh")], capture_output=True, text=True, check=False
        )
        if out.returncode != 0:
            raise SystemExit(f"building the floor webhook failed: {out.stderr.strip()[-500:]}")
        [self.port] = free_ports(1)
        self.ctx = ssl.create_default_context(cadata=op.ca_pem.decode())
        self.ca_pem = op.ca_pem
        with open(log, "ab") as f:
            self.proc = subprocess.Popen(
                [out.stdout.strip().splitlines()[-1], "-cert", op.env["AIGATE_WEBHOOK_CERT"], "-key",
                 op.env["AIGATE_WEBHOOK_KEY"], "-port", str(self.port)],
                stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                self.count()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the floor webhook did not start (see {log})") from None
                time.sleep(0.1)

    def count(self) -> int:
        """Reviews answered so far."""
        url = f"https://127.0.0.1:{self.port}/count"
        with urllib.request.urlopen(url, context=self.ctx, timeout=5) as r:
            return int(r.read())

    def configurations(self) -> list[dict[str, Any]]:
        """aigate's configurations, only the URL changed."""
        client = {"url": f"https://127.0.0.1:{self.port}", "caBundle": base64.b64encode(self.ca_pem).decode()}
        return [
            validating_configuration(client, operator_namespace=OPERATOR_NAMESPACE),
            mutating_configuration(client, operator_namespace=OPERATOR_NAMESPACE),
        ]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def http_versions(text: str) -> dict[str, float]:
    """aigate_admission_http_requests_total for the rollout webhook, by negotiated HTTP version."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("aigate_admission_http_requests_total{") and 'webhook="rollouts.aigate.dev"' in line:
            version = line.split('http_version="', 1)[1].split('"', 1)[0]
            out[version] = out.get(version, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def decision_metrics(op: OperatorProcess) -> str:
    """aigate's /metrics from the process that decides: `aigate webhook` when the harness runs one, else the
    operator."""
    webhook_http = getattr(op, "webhook_http", None)
    return str((webhook_http or op.http)("/metrics")[1])


def dry_run(cluster: Cluster, ns: str, wl: str) -> Any:
    doc = deployment(ns, "probe-app", wl)
    return cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(doc), check=False)


def set_webhook(cluster: Cluster, op: OperatorProcess, floor: Floor | None, ns: str, phase: str) -> None:
    """Register aigate's configurations (on), the floor's (floor) or none (off), then wait until the API server
    acts accordingly."""
    if phase == "on":
        register_webhooks(cluster.kubectl, op)
    elif phase == "floor":
        assert floor is not None
        items = floor.configurations()
        doc = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=doc)
    else:
        unregister_webhooks(cluster.kubectl)

    def agrees() -> bool:
        before = floor.count() if floor is not None else 0
        denied = dry_run(cluster, ns, MISSING).returncode != 0
        floor_saw = floor is not None and floor.count() > before
        if phase == "on":
            return denied
        return not denied and floor_saw == (phase == "floor")

    cluster.wait_for(agrees, timeout=60, interval=0.2, what=f"the API server to see the webhook {phase}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--clients", default="1,50,500", help="comma-separated concurrent client counts")
    parser.add_argument("--requests", type=int, default=3000, help="counted answers per phase (cap)")
    parser.add_argument("--seconds", type=float, default=40.0, help="time cap per phase")
    parser.add_argument("--rounds", type=int, default=2, help="off/on alternations per client count")
    parser.add_argument(
        "--rate",
        default="0",
        help="comma-separated total requests/s, paced (0: closed loop, as fast as answered); each rate in turn, "
        "one cluster",
    )
    parser.add_argument("--phases", default="off,on,floor", help="which of off, on, floor take turns (off needed)")
    parser.add_argument(
        "--webhook", choices=("operator", "aigate"), help="the webhook under test (default: what the harness serves)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    client_counts = [int(c) for c in args.clients.split(",")]
    rates = [float(r) for r in str(args.rate).split(",")]
    phase_names = args.phases.split(",")
    if "off" not in phase_names or not set(phase_names) <= {"off", "on", "floor"}:
        raise SystemExit("--phases: a comma-separated subset of off,on,floor that includes off")
    separate = hasattr(OperatorProcess, "webhook_alive")  # the harness starts `aigate webhook` beside the operator
    webhook = args.webhook or ("aigate" if separate else "operator")
    if webhook == "aigate" and not separate:
        raise SystemExit("--webhook aigate: this tree's harness has no `aigate webhook` process (not landed yet)")
    if webhook == "operator" and separate:
        raise SystemExit("--webhook operator: in this tree the operator no longer serves webhooks; use aigate")

    results: list[dict[str, Any]] = []
    start_load = os.getloadavg()
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
        floor = Floor(op, tmp / "floor.log") if "floor" in phase_names else None
        if floor is not None:
            stack.callback(floor.stop)

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
        for rate, clients in ((r, c) for r in rates for c in client_counts):
            phases: dict[str, list[float]] = {p: [] for p in phase_names}
            summary: dict[str, dict[str, float]] = {
                p: {
                    "ok": 0,
                    "errors": 0,
                    "seconds": 0.0,
                    "api_sum": 0.0,
                    "api_n": 0,
                    "op_sum": 0.0,
                    "op_n": 0,
                    "cpu": 0.0,
                }
                for p in phases
            }
            kinds: dict[str, int] = {}
            for _ in range(args.rounds):
                for phase in phase_names:
                    set_webhook(cluster, op, floor, ns, phase)
                    before_api = histogram_totals(
                        api.metrics(),
                        "apiserver_admission_webhook_admission_duration_seconds",
                        name="rollouts.aigate.dev",
                    )
                    before_op = histogram_totals(decision_metrics(op), "aigate_admission_duration_seconds")
                    server_pid = {"on": op.proc, "floor": floor.proc if floor else None}.get(phase)
                    if phase == "on" and webhook == "aigate":
                        server_pid = op.webhook_proc
                    before_cpu = cpu_seconds(server_pid.pid) if server_pid is not None else 0.0
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
                            rate=rate,
                        )
                    )
                    after_api = histogram_totals(
                        api.metrics(),
                        "apiserver_admission_webhook_admission_duration_seconds",
                        name="rollouts.aigate.dev",
                    )
                    after_op = histogram_totals(decision_metrics(op), "aigate_admission_duration_seconds")
                    after_cpu = cpu_seconds(server_pid.pid) if server_pid is not None else 0.0
                    phases[phase] += r["latencies"]
                    s = summary[phase]
                    s["ok"] += r["ok"]
                    s["errors"] += r["errors"]
                    s["seconds"] += r["seconds"]
                    s["api_sum"] += after_api[0] - before_api[0]
                    s["api_n"] += after_api[1] - before_api[1]
                    s["op_sum"] += after_op[0] - before_op[0]
                    s["op_n"] += after_op[1] - before_op[1]
                    s["cpu"] += after_cpu - before_cpu
                    for k, v in r["error_kinds"].items():
                        kinds[k] = kinds.get(k, 0) + v
            row: dict[str, Any] = {"clients": clients, "rate": rate, "error_kinds": kinds, "webhook": webhook}
            for phase, xs in phases.items():
                s = summary[phase]
                row[phase] = {
                    **percentiles_ms(xs, (50, 95, 99)),
                    "errors": s["errors"],
                    "throughput": s["ok"] / s["seconds"] if s["seconds"] else 0.0,
                    "apiserver_webhook_mean_ms": 1000 * s["api_sum"] / s["api_n"] if s["api_n"] else None,
                    "operator_decision_mean_ms": 1000 * s["op_sum"] / s["op_n"] if s["op_n"] else None,
                    # the webhook process's CPU per call the API server made to it (TLS, HTTP, app, decision)
                    "webhook_cpu_ms": 1000 * s["cpu"] / s["api_n"] if s["api_n"] and phase != "off" else None,
                }
            qs = ("p50", "p95", "p99")
            for phase in phase_names[1:]:
                row[f"added_{phase}"] = {q: row[phase][q] - row["off"][q] for q in qs}
            if "on" in row and "floor" in row:
                row["ratio_to_floor"] = {
                    q: row["added_on"][q] / row["added_floor"][q] if row["added_floor"][q] > 0 else None for q in qs
                }
            results.append(row)
        load_avg = os.getloadavg()
        versions = http_versions(decision_metrics(op)) if webhook == "aigate" else {}

    if args.json:
        print(json.dumps({"results": results, "loadavg": load_avg, "http_versions": versions}, indent=2))
        return 0
    print(f"dry-run Deployment creates through the API server, webhook under test: {webhook}, ms")
    print(
        f"{'clients':>7} {'phase':>13} {'answers':>8} {'err':>5} {'req/s':>7} "
        f"{'p50':>8} {'p95':>8} {'p99':>8} {'apiserver->webhook mean':>24} {'aigate decision mean':>21} "
        f"{'webhook cpu/call':>16}"
    )
    for i, row in enumerate(results):
        if i == 0 or results[i - 1]["rate"] != row["rate"]:
            print(f"-- paced at {row['rate']:g} req/s" if row["rate"] > 0 else "-- closed loop")
        for phase in phase_names:
            p = row[phase]
            api_mean = "-" if p["apiserver_webhook_mean_ms"] is None else f"{p['apiserver_webhook_mean_ms']:.2f}"
            op_mean = (
                "-"
                if p["operator_decision_mean_ms"] is None or phase != "on"
                else (f"{p['operator_decision_mean_ms']:.2f}")
            )
            cpu = "-" if p["webhook_cpu_ms"] is None else f"{p['webhook_cpu_ms']:.3f}"
            print(
                f"{row['clients']:>7} {phase:>13} {p['n']:>8} {p['errors']:>5} {p['throughput']:>7.0f} "
                f"{p['p50']:>8.1f} {p['p95']:>8.1f} {p['p99']:>8.1f} {api_mean:>24} {op_mean:>21} {cpu:>16}"
            )
        blank = ""
        for phase in phase_names[1:]:
            a = row[f"added_{phase}"]
            label = f"added {phase}"
            print(f"{row['clients']:>7} {label:>13} {blank:>22} {a['p50']:>8.1f} {a['p95']:>8.1f} {a['p99']:>8.1f}")
        if "ratio_to_floor" in row:
            r = row["ratio_to_floor"]
            cells = " ".join(f"{'-' if r[q] is None else f'{r[q]:.2f}x':>8}" for q in ("p50", "p95", "p99"))
            print(f"{row['clients']:>7} {'on / floor':>13} {blank:>22} {cells}")
        if row["error_kinds"]:
            print(f"        errors: {row['error_kinds']}")
    for target in (r for r in results if r["clients"] == 50 and "added_on" in r):
        mode = f"paced at {target['rate']:g}/s" if target["rate"] > 0 else "closed loop"
        added = target["added_on"]["p99"]
        # `off` is measured apart from `on`: a tail in off above on's leaves nothing to judge
        verdict = "not measurable (off's p99 above on's)" if added <= 0 else "met" if added <= 20 else "missed"
        print(f"target ({mode}): added end-to-end p99 <= 20 ms at 50 clients: {added:.1f} ms, {verdict}")
        ratio = (target.get("ratio_to_floor") or {}).get("p99")
        if ratio is not None and added > 0 and target["added_floor"]["p99"] > 0:
            print(
                f"target ({mode}): <= 2x the floor's added p99 at 50 clients: {ratio:.2f}x, "
                f"{'met' if ratio <= 2 else 'missed'}"
            )
        if target["rate"] <= 0:  # paced, both phases carry the rate they are given: no throughput to compare
            tp = target["on"]["throughput"] / target["off"]["throughput"] if target["off"]["throughput"] else 0.0
            verdict = "met" if tp >= 0.8 else "missed"
            print(f"target: throughput with the webhook >= 0.8x without at 50 clients: {tp:.2f}x, {verdict}")
    if versions:
        print(f"rollout reviews aigate webhook received, by negotiated HTTP version: {versions}")
    print(f"load average at the start: {start_load[0]:.2f} {start_load[1]:.2f} {start_load[2]:.2f}")
    print(f"load average at the end: {load_avg[0]:.2f} {load_avg[1]:.2f} {load_avg[2]:.2f}; {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
