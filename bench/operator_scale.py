"""Operator scale: N AIWorkloads against the simulator; time until every one has a decision, the operator's peak
memory, and the memory `aigate webhook` takes with the N workloads indexed.

    .venv/bin/python bench/operator_scale.py [--counts 100,300] [--max-inflight 100] [--timeout 1200]
        [--job-cpu-request 500m]

Per N, from scratch: a local cluster (etcd, kube-apiserver, kube-controller-manager, and a real node), the LLM API
simulator (two models, 5 ms fixed latency), aigate's operator (timer interval 60 s, its default) and `aigate webhook`
beside it (its own process, watching what it indexes; no webhook configuration is registered: nothing is admitted
here, the webhook's memory with N workloads indexed is what is measured). N/100 namespaces each get the credentials
Secret and 100 prompt ConfigMaps before the clock starts. Then N AIWorkloads (the cluster tests' workload as is: two
models, write tool with approval, two cases x 30 repeats = 60 samples per model, the least that judges a p95, so a
run can pass; the same input bench/gate_run.py measures) are created through the API; for each the operator creates
a ServiceAccount, Role, RoleBinding, result ConfigMap and gate Job, the node runs the Job's pod (`aigate run-gates`
in a container from the aigate image), and the operator turns the result into signed evidence and status.

N python gate processes at once do not fit this machine (CPU, ~60 MB each; bench/README.md's figures were measured
on the process node that preceded the real one, which had no pod cap). So the bench creates workloads in waves, at
most --max-inflight without a decision at any time (0: all at once). The node caps them too: each gate container
requests --job-cpu-request of CPU (the operator's AIGATE_JOB_CPU_REQUEST; its default 500m fits 3 gate pods on this
2-core node, while a run spends ~0.6 CPU-seconds over ~10 s of paced requests).

Reported per N:
  decided     = workloads whose phase is Passed, Failed or Error with lastRun.finishedAt set (Error listed apart)
  time        = from the first create to the last decision, s; per workload = time / N
  rss0        = the operator's VmRSS when ready with no workloads, MB
  peak        = the operator's VmHWM (peak resident set) at the end, MB
  rss_end     = VmRSS when all were decided
  restart_rss = VmRSS of a freshly restarted operator once ready and settled with the N workloads present
                (resume handlers run): minus the same figure at N=0 start (rss0) is what N workloads cost a
                steady operator
  webhook     = `aigate webhook`'s VmRSS when ready with no workloads, its VmHWM at the end, and its VmRSS at the
                end with the N workloads, their ConfigMaps and evidence indexed (the process and any children)
Bounded: --timeout seconds per N for the decisions, and a loop that polls every 3 s.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hack"))
sys.path.insert(0, str(ROOT / "tests" / "cluster"))

from flows import CANARY, profile, workload  # noqa: E402
from kubernetes import client as k8s  # noqa: E402

from aigate.simulator.profile import SimProfile  # noqa: E402
from aigate.simulator.server import SimulatorServer  # noqa: E402
from localcluster.aigate_operator import OperatorProcess, install_crd, prepare_operator  # noqa: E402
from localcluster.testing import Cluster, cluster_session  # noqa: E402

PER_NAMESPACE = 100
PROFILE = profile(5)
WORKLOADS = ("aigate.dev", "v1alpha1", "aiworkloads")


def proc_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of PID, MB."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return out


def tree_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM summed over PID and its descendants, MB (a server may run workers as child processes)."""
    total: dict[str, float] = {}
    todo = [pid]
    while todo:
        p = todo.pop()
        for key, value in proc_mb(p).items():
            total[key] = total.get(key, 0.0) + value
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            with suppress(OSError):
                todo.extend(int(c) for c in task.read_text().split())
    return total


def prepare_namespaces(cluster: Cluster, n: int) -> list[tuple[str, str]]:
    """Namespaces, Secrets and prompt ConfigMaps for N workloads; returns the (namespace, name) pairs."""
    pairs: list[tuple[str, str]] = []
    for i in range((n + PER_NAMESPACE - 1) // PER_NAMESPACE):
        ns = f"scale-{i:02d}"
        cluster.kubectl("create", "namespace", ns)
        count = min(PER_NAMESPACE, n - i * PER_NAMESPACE)
        items: list[dict[str, Any]] = [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "llm-keys", "namespace": ns},
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in CANARY.items()},
            }
        ]
        for j in range(count):
            name = f"wl-{j:03d}"
            pairs.append((ns, name))
            items.append(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": f"{name}-prompts", "namespace": ns},
                    "data": {"system.md": "You review fraud cases."},
                }
            )
        cluster.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    return pairs


def outcomes(custom: k8s.CustomObjectsApi) -> dict[str, int]:
    items = custom.list_cluster_custom_object(*WORKLOADS)["items"]
    counts = {"Passed": 0, "Failed": 0, "Error": 0, "other": 0}
    for wl in items:
        st = wl.get("status") or {}
        done = bool((st.get("lastRun") or {}).get("finishedAt")) or st.get("phase") == "Error"
        key = st.get("phase") if done and st.get("phase") in counts else "other"
        counts[str(key)] += 1
    return counts


def run_one(n: int, max_inflight: int, timeout: float, tmp: Path, job_cpu_request: str) -> dict[str, Any]:
    with ExitStack() as stack:
        print(f"N={n}: starting a cluster with a real node ...", file=sys.stderr)
        cluster = stack.enter_context(cluster_session(tmp / f"cp-{n}", by="bench/operator_scale.py"))
        sim = stack.enter_context(
            SimulatorServer(SimProfile.model_validate(PROFILE), host=cluster.host_address or "127.0.0.1")
        )
        install_crd(cluster.kubectl)
        cluster.kubectl("create", "namespace", "aigate-system")
        op: OperatorProcess = prepare_operator(
            tmp / f"operator-{n}",
            cluster.kubeconfig,
            timer_interval_s=60.0,
            extra_env={"AIGATE_JOB_CPU_REQUEST": job_cpu_request},
        )
        pairs = prepare_namespaces(cluster, n)
        op.start()
        stack.callback(op.stop)
        op.wait_ready()
        assert op.proc is not None and op.webhook_proc is not None
        time.sleep(3)
        rss0 = proc_mb(op.proc.pid)
        webhook_rss0 = tree_mb(op.webhook_proc.pid)
        api = stack.enter_context(cluster.api_client())
        custom = k8s.CustomObjectsApi(api)

        print(f"N={n}: creating workloads (at most {max_inflight or n} undecided at a time) ...", file=sys.stderr)
        t0 = time.monotonic()
        deadline = t0 + timeout
        created = 0
        counts = {"Passed": 0, "Failed": 0, "Error": 0, "other": 0}
        samples: list[tuple[float, int, float]] = []
        last_print = 0.0
        while True:
            decided = counts["Passed"] + counts["Failed"] + counts["Error"]
            room = n - created if max_inflight <= 0 else min(n - created, max_inflight - (created - decided))
            for ns, name in pairs[created : created + max(0, room)]:
                custom.create_namespaced_custom_object(*WORKLOADS[:2], ns, WORKLOADS[2], workload(ns, name, sim))
                created += 1
            counts = outcomes(custom)
            decided = counts["Passed"] + counts["Failed"] + counts["Error"]
            now = time.monotonic()
            mem = proc_mb(op.proc.pid)
            samples.append((now - t0, decided, mem.get("VmRSS", 0.0)))
            if now - last_print > 15:
                print(
                    f"  {now - t0:6.0f}s created {created} decided {decided} {counts} rss {mem.get('VmRSS', 0):.0f} MB",
                    file=sys.stderr,
                )
                last_print = now
            if decided >= n:
                break
            if now > deadline:
                print(f"N={n}: gave up after {timeout:.0f}s with {decided} decided", file=sys.stderr)
                break
            if not op.alive():
                raise RuntimeError(f"the operator exited: {op.tail()}")
            if not op.webhook_alive():
                raise RuntimeError(f"aigate webhook exited: {op.tail(webhook=True)}")
            time.sleep(3)
        elapsed = samples[-1][0]
        end = proc_mb(op.proc.pid)
        time.sleep(3)  # the webhook's watches deliver the last status and evidence writes
        webhook_end = tree_mb(op.webhook_proc.pid)

        print(f"N={n}: restarting the operator with {n} workloads present ...", file=sys.stderr)
        op.restart()
        op.wait_ready(timeout=300)
        ready_rss = proc_mb(op.proc.pid)
        time.sleep(20)  # resume handlers: one reconcile per workload, evidence valid
        settled = proc_mb(op.proc.pid)
        errors_in_log = sum(1 for line in op.log.read_text(errors="replace").splitlines() if " ERROR " in line)
        return {
            "n": n,
            "max_inflight": max_inflight,
            "decided": decided,
            "counts": counts,
            "seconds": elapsed,
            "per_workload_s": elapsed / max(decided, 1),
            "rss0_mb": rss0.get("VmRSS"),
            "peak_mb": end.get("VmHWM"),
            "rss_end_mb": end.get("VmRSS"),
            "restart_ready_rss_mb": ready_rss.get("VmRSS"),
            "restart_settled_rss_mb": settled.get("VmRSS"),
            "webhook_rss0_mb": webhook_rss0.get("VmRSS"),
            "webhook_peak_mb": webhook_end.get("VmHWM"),
            "webhook_rss_end_mb": webhook_end.get("VmRSS"),
            "operator_log_errors": errors_in_log,
            "loadavg": os.getloadavg(),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--counts", default="100,300", help="comma-separated workload counts, one cluster each")
    parser.add_argument("--max-inflight", type=int, default=100, help="undecided workloads at most (0: no cap)")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per N for the decisions")
    parser.add_argument(
        "--job-cpu-request", default="500m", help="the gate container's CPU request (AIGATE_JOB_CPU_REQUEST)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="aigate-scale-") as tmp:
        for n in (int(c) for c in args.counts.split(",")):
            results.append(run_one(n, args.max_inflight, args.timeout, Path(tmp), args.job_cpu_request))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print("operator scale: N AIWorkloads, one gate Job each, real node, simulator at 5 ms")
    print(
        f"{'N':>5} {'inflight':>8} {'decided':>8} {'pass/fail/err':>13} {'time s':>7} {'s/wl':>5} "
        f"{'rss0':>5} {'peak':>5} {'rss_end':>7} {'restart ready/settled':>21} {'webhook rss0/peak/end':>21}"
    )
    for r in results:
        c = r["counts"]
        pfe = f"{c['Passed']}/{c['Failed']}/{c['Error']}"
        print(
            f"{r['n']:>5} {r['max_inflight'] or 'all':>8} {r['decided']:>8} {pfe:>13} {r['seconds']:>7.0f} "
            f"{r['per_workload_s']:>5.2f} {r['rss0_mb']:>5.0f} {r['peak_mb']:>5.0f} {r['rss_end_mb']:>7.0f} "
            f"{r['restart_ready_rss_mb']:>10.0f}/{r['restart_settled_rss_mb']:<10.0f} "
            f"{r['webhook_rss0_mb']:>7.0f}/{r['webhook_peak_mb']:.0f}/{r['webhook_rss_end_mb']:.0f}"
        )
        print(f"      operator log ERROR lines {r['operator_log_errors']}; load {r['loadavg'][0]:.2f}")
    print(f"{os.cpu_count()} CPUs; memory figures are MB (VmRSS / VmHWM of the operator and webhook processes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
