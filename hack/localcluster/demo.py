"""`make cluster-demo`: aigate's demo on a real (local) Kubernetes control plane.

    hack/cluster-demo.sh [--state-dir DIR] [--time-scale 1.0] [--keep]

Starts a local cluster with a real node (state in ~/.cache/aigate/clusters/demo), the LLM API simulator
with examples/profiles/fraud-demo.yaml, installs the CRD, starts aigate's operator and registers its webhook
configurations, then applies the two example workloads into namespace `fraud`:

    fraud-review-assistant              examples/fraud-review-assistant.yaml, as the team first wrote it
    fraud-review-assistant-remediated   examples/fraud-review-assistant-remediated.yaml, renamed so both coexist

The examples name `credentials: {env: ...}` and endpoints on 127.0.0.1:8788 for `aigate check`; on the cluster the
demo rewrites them on the fly: credentials become `secretRef`s to a Secret `llm-keys` it creates (placeholder keys:
the simulator checks none), endpoints point at the simulator, which listens on the pod bridge's gateway address (the
host end of the pod network: reachable from pods, not from outside the machine). The gate Jobs run as containers on
the node, from the image `make image` built; with the demo profile's latencies (p50 4.5 s for the first primary)
both runs take a couple of minutes (--time-scale 0.1 runs the simulator ten times faster; the latency gate then
judges faster answers).

Then it shows `kubectl get aiworkloads`, and a `kubectl apply` of a Deployment labelled for each workload: the
failing one is denied by the API server (aigate's webhook), the remediated one is admitted.

On exit (the end, an error, Ctrl-C) it stops everything it started. With --keep it waits after the demo, printing
the `export KUBECONFIG=...` line to explore from another shell, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import yaml

from localcluster import host
from localcluster.aigate_operator import (
    ROOT,
    grant_public_key_readers,
    install_crd,
    prepare_operator,
    register_webhooks,
)
from localcluster.controlplane import ControlPlane, ControlPlaneError
from localcluster.testing import Cluster, cluster_image
from localcluster.versions import BinariesMissing, cache_dir

NAMESPACE = "fraud"
EXAMPLES = ROOT / "examples"
PROFILE = EXAMPLES / "profiles" / "fraud-demo.yaml"
FAILING = "fraud-review-assistant"
REMEDIATED = "fraud-review-assistant-remediated"
SECRET = "llm-keys"
# placeholders: the simulator accepts any key, and the demo shows that none of them leaks into status or logs
KEYS = {"anthropic": "sk-ant-demo-placeholder", "openai": "sk-demo-placeholder"}
STATE_DIR = cache_dir() / "clusters" / "demo"


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def show(cluster: Cluster, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run kubectl, printing the command line and everything it printed."""
    print(f"$ kubectl {' '.join(shlex.quote(a) for a in args)}", flush=True)
    done = cluster.kubectl(*args, input=input, check=False)
    for stream in (done.stdout, done.stderr):
        if stream.strip():
            print(stream.rstrip(), flush=True)
    if done.returncode != 0:
        print(f"(kubectl exited {done.returncode})", flush=True)
    return done


def cluster_workloads(sim_url: str) -> list[dict[str, Any]]:
    """The two example workloads and their ConfigMap, rewritten for the cluster (see the module docstring)."""
    docs: list[dict[str, Any]] = []
    seen_cms: set[str] = set()
    for path, name in ((EXAMPLES / f"{FAILING}.yaml", FAILING), (EXAMPLES / f"{REMEDIATED}.yaml", REMEDIATED)):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            doc = copy.deepcopy(doc)
            doc["metadata"]["namespace"] = NAMESPACE
            if doc["kind"] == "ConfigMap":
                if doc["metadata"]["name"] not in seen_cms:
                    seen_cms.add(doc["metadata"]["name"])
                    docs.append(doc)
                continue
            doc["metadata"]["name"] = name
            for model in doc["spec"]["models"]:
                provider = model["provider"]
                model["endpoint"] = sim_url + ("/v1" if provider == "openai" else "")
                model["credentials"] = {"secretRef": {"name": SECRET, "key": provider}}
            docs.append(doc)
    return docs


def secret() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET, "namespace": NAMESPACE},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in KEYS.items()},
    }


def app_deployment(name: str, workload: str) -> dict[str, Any]:
    labels = {"app": name, "aigate.dev/workload": workload}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                # a stand-in for the team's service: aigate's own image, sleeping
                "spec": {
                    "containers": [{"name": "app", "image": cluster_image(), "command": ["sleep", "3600"]}],
                    "securityContext": {"runAsNonRoot": True},
                },
            },
        },
    }


def wait_for_decisions(cluster: Cluster, timeout: float) -> dict[str, dict[str, Any]]:
    """Poll both workloads until each has a finished run; print progress as it changes and every 15 s."""
    started = time.monotonic()
    last_line, last_print = "", 0.0
    while True:
        items = cluster.get_json("aiworkloads", "-n", NAMESPACE)["items"]
        status = {wl["metadata"]["name"]: wl.get("status") or {} for wl in items}
        parts = []
        for name in (FAILING, REMEDIATED):
            st = status.get(name, {})
            parts.append(
                f"{name}: {st.get('phase') or 'Pending'}" + (f" ({st['decision']})" if st.get("decision") else "")
            )
        line = "; ".join(parts)
        elapsed = time.monotonic() - started
        if line != last_line or elapsed - last_print >= 15:
            print(f"  [{elapsed:5.0f}s] {line}", flush=True)
            last_line, last_print = line, elapsed
        done = {
            n: st
            for n, st in status.items()
            if (st.get("lastRun") or {}).get("finishedAt") or st.get("phase") == "Error"
        }
        if len(done) == 2:
            return done
        if elapsed > timeout:
            raise TimeoutError(f"no decision after {timeout:.0f}s: {line}")
        time.sleep(3)


def run(args: argparse.Namespace) -> int:
    from aigate.simulator import load_profile
    from aigate.simulator.server import SimulatorServer

    state_dir: Path = args.state_dir.resolve()
    cp = ControlPlane(state_dir)
    with ExitStack() as stack:
        say(f"starting a local cluster (control plane and a real node) in {state_dir}")
        cp.start(node=True, by="make cluster-demo")
        stack.callback(cp.stop)
        stack.callback(say, "stopping the cluster: its pods, the node, the control plane")
        cluster = Cluster(cp.kubeconfig, cp)
        print(f"kube-apiserver at {cp.server}; logs in {state_dir / 'logs'}", flush=True)

        profile = load_profile(PROFILE)
        if args.time_scale != 1.0:
            profile = profile.with_time_scale(args.time_scale)
        sim = stack.enter_context(SimulatorServer(profile, host=host.GATEWAY))
        say(f"LLM API simulator on {sim.url} ({PROFILE.relative_to(ROOT)}, time scale {args.time_scale:g})")

        say("installing the AIWorkload CRD")
        install_crd(cluster.kubectl)
        cluster.kubectl("create", "namespace", "aigate-system")
        grant_public_key_readers(cluster.kubectl)

        say("starting aigate's operator and its webhook server (aigate webhook)")
        op = prepare_operator(state_dir / "aigate-operator", cp.kubeconfig)
        op.start()
        stack.callback(op.stop)
        stack.callback(say, "stopping aigate's operator and webhook")
        op.wait_ready()
        print(f"operator and webhook ready; their logs: {op.log}, {op.webhook_log}", flush=True)
        say("registering aigate's admission webhooks (validating: rollouts, AIWorkloads; mutating: acceptances)")
        register_webhooks(cluster.kubectl, op)
        show(
            cluster,
            "get",
            "validatingwebhookconfigurations,mutatingwebhookconfigurations",
            "-l",
            "app.kubernetes.io/name=aigate",
        )

        say(f"applying the example workloads into namespace {NAMESPACE} (credentials from Secret {SECRET})")
        cluster.kubectl("create", "namespace", NAMESPACE)
        docs = [secret(), *cluster_workloads(sim.url)]
        show(cluster, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))

        say("the operator starts a gate Job per workload; waiting for both decisions (a couple of minutes)")
        done = wait_for_decisions(cluster, args.timeout)
        show(cluster, "get", "aiworkloads", "-n", NAMESPACE)
        show(cluster, "get", "jobs", "-n", NAMESPACE, "-l", "aigate.dev/role=gate-job")
        failing = done.get(FAILING, {})
        failed = [
            f"  {c['type']}: {c.get('message', '')}"
            for c in failing.get("conditions") or []
            if c.get("status") == "False" and c["type"] != "Ready"
        ]
        if failed:
            print(f"why {FAILING} failed:", *failed, sep="\n", flush=True)

        say("a rollout of the failing workload: the API server asks aigate, which denies it")
        denied = show(cluster, "apply", "-f", "-", input=json.dumps(app_deployment("fraud-app", FAILING)))
        say("a rollout of the remediated workload: admitted (its signed evidence verifies)")
        admitted = show(cluster, "apply", "-f", "-", input=json.dumps(app_deployment("fraud-app-v2", REMEDIATED)))
        if admitted.returncode == 0:
            show(cluster, "rollout", "status", "deployment/fraud-app-v2", "-n", NAMESPACE, "--timeout=60s")
        show(cluster, "get", "deployments,pods", "-n", NAMESPACE, "-l", "app in (fraud-app, fraud-app-v2)")

        ok = denied.returncode != 0 and admitted.returncode == 0
        say("demo " + ("done: denied, then admitted" if ok else "finished, but not as expected (see above)"))
        if args.keep:
            print(
                f"the cluster keeps running; in another shell:\n  export KUBECONFIG={shlex.quote(str(cp.kubeconfig))}"
            )
            print("  kubectl get aiworkloads -n fraud -o yaml\npress Ctrl-C here to stop everything", flush=True)
            with suppress(KeyboardInterrupt):
                signal.pause()
        return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hack/cluster-demo.sh", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR, help=f"default: {STATE_DIR}")
    parser.add_argument("--time-scale", type=float, default=1.0, help="simulator latency multiplier (0.1: faster)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the decisions")
    parser.add_argument("--keep", action="store_true", help="after the demo, keep everything running until Ctrl-C")
    args = parser.parse_args(argv)
    # Ctrl-C and SIGTERM unwind through the ExitStack, which stops what was started

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\ninterrupted; everything started was stopped", file=sys.stderr)
        return 130
    except (ControlPlaneError, BinariesMissing, TimeoutError, RuntimeError, AssertionError) as e:
        print(f"cluster-demo: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    os.environ.pop("KUBECONFIG", None)
    sys.exit(main())
