"""Operator scale: N AIWorkloads against the simulator; time until every one has a decision, the operator's peak
memory, and the memory its webhook indexes take.

    .venv/bin/python bench/operator_scale.py [--counts 100,300] [--max-inflight 100] [--timeout 1200]

Per N, from scratch: a local cluster (etcd, kube-apiserver, kube-controller-manager, and a real node), the LLM API
simulator (two models, 5 ms fixed latency), aigate's operator (timer interval 60 s, its default). N/100 namespaces
each get the credentials Secret and 100 prompt ConfigMaps before the clock starts. Then N AIWorkloads (the cluster
tests' workload: two models, write tool with approval, a one-case suite, repeats 1) are created through the API; for
each the operator creates a ServiceAccount, Role, RoleBinding, result ConfigMap and gate Job, the node runs the
Job's pod (`aigate run-gates` in a container from the aigate image), and the operator turns the result into signed
evidence and status.

N python gate processes at once do not fit this machine (CPU, ~60 MB each; bench/README.md's figures were measured
on the process node that preceded the real one, which had no pod cap). So the bench creates workloads in waves, at
most --max-inflight without a decision at any time (0: all at once). That caps concurrent gate runs, as a real
cluster's node capacity would.

Reported per N:
  decided     = workloads whose phase is Passed, Failed or Error with lastRun.finishedAt set (Error listed apart)
  time        = from the first create to the last decision, s; per workload = time / N
  rss0        = the operator's VmRSS when ready with no workloads, MB
  peak        = the operator's VmHWM (peak resident set) at the end, MB
  rss_end     = VmRSS when all were decided
  restart_rss = VmRSS of a freshly restarted operator once ready and settled with the N workloads present
                (indexes rebuilt, resume handlers run): minus the same figure at N=0 start (rss0) is what N
                workloads cost a steady operator, indexes included
  index_est   = tracemalloc size of the two index structures (workload bodies as JSON, trimmed ConfigMaps),
                built in the bench process from the same API listings the operator indexes; kopf's own
                per-object bookkeeping is not in it
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
import tracemalloc
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hack"))
sys.path.insert(0, str(ROOT / "tests" / "cluster"))

from kubernetes import client as k8s  # noqa: E402
from test_operator import ANSWER, CANARY, workload  # noqa: E402

from aigate.simulator.profile import SimProfile  # noqa: E402
from aigate.simulator.server import SimulatorServer  # noqa: E402
from localcluster.aigate_operator import OperatorProcess, install_crd, prepare_operator  # noqa: E402
from localcluster.testing import Cluster, cluster_session  # noqa: E402

PER_NAMESPACE = 100
PROFILE = {
    "seed": 1,
    "models": {
        "sim-claude": {"provider": "anthropic", "latency": {"fixedMs": 5}, "responses": [{"content": ANSWER}]},
        "sim-gpt": {"provider": "openai", "latency": {"fixedMs": 5}, "responses": [{"content": ANSWER}]},
    },
}
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


def tiny_workload(ns: str, name: str, sim: SimulatorServer) -> dict[str, Any]:
    doc = workload(ns, name, sim)
    doc["spec"]["suite"] = {
        "repeats": 1,
        "cases": [
            {
                "name": "review",
                "messages": [{"role": "user", "content": "Review case 1."}],
                "expect": {"contains": ["risk"]},
            }
        ],
    }
    return doc


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


def index_estimate(api: k8s.ApiClient) -> dict[str, float]:
    """What the operator's two indexes hold, rebuilt here from the same listings, measured with tracemalloc."""
    custom, core = k8s.CustomObjectsApi(api), k8s.CoreV1Api(api)
    raw_wls = custom.list_cluster_custom_object(*WORKLOADS)["items"]
    raw_cms = api.sanitize_for_serialization(core.list_config_map_for_all_namespaces().items)
    wl_text, cm_text = json.dumps(raw_wls), json.dumps(raw_cms)
    del raw_wls, raw_cms
    tracemalloc.start()
    wl_index = {(w["metadata"]["namespace"], w["metadata"]["name"]): w for w in json.loads(wl_text)}
    wl_bytes = tracemalloc.get_traced_memory()[0]
    cm_index = {}
    for cm in json.loads(cm_text):
        meta = cm.get("metadata") or {}
        cm_index[(meta.get("namespace", ""), meta["name"])] = {
            "metadata": {
                "name": meta["name"],
                "namespace": meta.get("namespace", ""),
                "labels": dict(meta.get("labels") or {}),
                "annotations": {
                    k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith("aigate.dev/")
                },
            },
            "data": dict(cm.get("data") or {}),
        }
    total = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    # cm_index kept alive until here; the parsed ConfigMap list is garbage by now but may still be counted
    # once: take the figure as an upper bound
    return {
        "workloads": len(wl_index),
        "configmaps": len(cm_index),
        "workload_index_mb": wl_bytes / 2**20,
        "configmap_index_mb": (total - wl_bytes) / 2**20,
    }


def run_one(n: int, max_inflight: int, timeout: float, tmp: Path) -> dict[str, Any]:
    with ExitStack() as stack:
        print(f"N={n}: starting a cluster with a real node ...", file=sys.stderr)
        cluster = stack.enter_context(cluster_session(tmp / f"cp-{n}", by="bench/operator_scale.py"))
        sim = stack.enter_context(
            SimulatorServer(SimProfile.model_validate(PROFILE), host=cluster.host_address or "127.0.0.1")
        )
        install_crd(cluster.kubectl)
        cluster.kubectl("create", "namespace", "aigate-system")
        op: OperatorProcess = prepare_operator(tmp / f"operator-{n}", cluster.kubeconfig, timer_interval_s=60.0)
        pairs = prepare_namespaces(cluster, n)
        op.start()
        stack.callback(op.stop)
        op.wait_ready()
        assert op.proc is not None
        time.sleep(3)
        rss0 = proc_mb(op.proc.pid)
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
                custom.create_namespaced_custom_object(*WORKLOADS[:2], ns, WORKLOADS[2], tiny_workload(ns, name, sim))
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
            time.sleep(3)
        elapsed = samples[-1][0]
        end = proc_mb(op.proc.pid)
        index = index_estimate(api)

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
            "index": index,
            "operator_log_errors": errors_in_log,
            "loadavg": os.getloadavg(),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--counts", default="100,300", help="comma-separated workload counts, one cluster each")
    parser.add_argument("--max-inflight", type=int, default=100, help="undecided workloads at most (0: no cap)")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per N for the decisions")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="aigate-scale-") as tmp:
        for n in (int(c) for c in args.counts.split(",")):
            results.append(run_one(n, args.max_inflight, args.timeout, Path(tmp)))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print("operator scale: N AIWorkloads, one gate Job each, real node, simulator at 5 ms")
    print(
        f"{'N':>5} {'inflight':>8} {'decided':>8} {'pass/fail/err':>13} {'time s':>7} {'s/wl':>5} "
        f"{'rss0':>5} {'peak':>5} {'rss_end':>7} {'restart ready/settled':>21} {'index wl+cm MB':>15}"
    )
    for r in results:
        c, ix = r["counts"], r["index"]
        pfe = f"{c['Passed']}/{c['Failed']}/{c['Error']}"
        print(
            f"{r['n']:>5} {r['max_inflight'] or 'all':>8} {r['decided']:>8} {pfe:>13} {r['seconds']:>7.0f} "
            f"{r['per_workload_s']:>5.2f} {r['rss0_mb']:>5.0f} {r['peak_mb']:>5.0f} {r['rss_end_mb']:>7.0f} "
            f"{r['restart_ready_rss_mb']:>10.0f}/{r['restart_settled_rss_mb']:<10.0f} "
            f"{ix['workload_index_mb']:>6.2f}+{ix['configmap_index_mb']:<6.2f}"
        )
        print(f"      index: {ix['workloads']} workloads, {ix['configmaps']} ConfigMaps; load {r['loadavg'][0]:.2f}")
    print(f"{os.cpu_count()} CPUs; memory figures are MB (VmRSS / VmHWM of the operator process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
