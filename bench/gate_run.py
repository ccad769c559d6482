"""Where a gate run's CPU goes: the gate process part by part, and the operator's per-run work around it.

    .venv/bin/python bench/gate_run.py [--runs 5] [--tree DIR] [--profile FILE]

The gate process runs as a gate Job's container runs it (`aigate run-gates`, a fresh Python process) on the input the
operator writes (`controller.jobs.run_input` of the cluster tests' workload: two models on the simulator, 30 repeats
of a two-case suite, fault injection, a read and a write tool), against a loopback HTTPS server that serves its
input and result ConfigMaps as the API server does (tests/configmap_api.py; a kubeconfig with a token points at it)
and the simulator (5 ms fixed latency here, so the suite's wall time stays short). The child times each part with
`time.process_time()` (user + system CPU of the process) by wrapping rungates' own steps:

    start     interpreter start-up and site (CPU used before the first line of the child runs)
    imports   `import aigate.cli, aigate.rungates` (what `python -m aigate.cli run-gates` imports before running)
    client    the API client's configuration (kubeconfig, TLS context)
    input     reading the input ConfigMap, parsing and resolving it
    digest    the spec digest the run checks
    suite     the baseline runs of every model (from the start of `measure` to the last model's last case)
    faults    fault injection and the human route (the rest of `measure`)
    result    building and bounding the result JSON
    write     patching the result ConfigMap
    other     the rest (argument handling, the event loop, interpreter shutdown up to the last measurement)

On the operator's side, per run, in this process (same workload; median of --runs): building the run's objects
(ServiceAccount, Role, RoleBinding, input/result ConfigMaps, Secret, Job as JSON), reading the result, judging the
six gates and signing the evidence. The operator's own API calls need a cluster and are counted, not timed.

With --tree DIR the gate process imports aigate from DIR/operator (e.g. /work/main to compare with main). With
--profile FILE the last gate process also writes a cProfile of itself to FILE (open it with `python -m pstats`).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

from timing import main_or_child

ROOT = Path(__file__).resolve().parents[1]
GATES = "aigate-gates"
TOKEN = "bench-gate-token"
PARTS = ("start", "imports", "client", "input", "digest", "suite", "faults", "result", "write", "other")


# ---- the child: one gate process, instrumented ----------------------------------------------------------------------


def child(args: list[str]) -> None:
    """Run `aigate run-gates` in this process with its steps wrapped; print the CPU per part as JSON."""
    start = time.process_time()
    profile_out = os.environ.get("AIGATE_BENCH_PROFILE")
    prof = None
    if profile_out:
        import cProfile

        prof = cProfile.Profile()
    if prof is not None:
        prof.enable()
    t = time.process_time()
    import aigate.cli
    import aigate.rungates as rg

    parts: dict[str, float] = {p: 0.0 for p in PARTS}
    parts["start"] = start
    parts["imports"] = time.process_time() - t
    marks: list[tuple[float, str]] = []

    def timed(name: str, part: str) -> None:
        fn = getattr(rg, name, None)
        if fn is None:
            return

        def wrapper(*a: Any, **kw: Any) -> Any:
            t0 = time.process_time()
            try:
                return fn(*a, **kw)
            finally:
                parts[part] += time.process_time() - t0

        setattr(rg, name, wrapper)

    timed("connect", "client")  # this branch
    timed("load_api_client", "client")  # before: the kubernetes client
    timed("_read_input", "input")
    timed("digest_of", "digest")
    timed("bound_result", "result")
    timed("_write_result", "write")
    measure = rg.measure

    async def measured(*a: Any, **kw: Any) -> Any:
        t0 = time.process_time()
        marks.append((t0, "measure"))
        try:
            return await measure(*a, **kw)
        finally:
            t1 = time.process_time()
            suite_end = max((m for m, line in marks if line.startswith("baseline")), default=t0)
            parts["suite"] += suite_end - t0
            parts["faults"] += t1 - suite_end

    rg.measure = measured  # type: ignore[assignment]
    ns, input_name, result_name, digest, run_id = args
    code = rg.run_gates(
        ns,
        input_name,
        result_name,
        digest,
        run_id,
        environ=dict(os.environ),
        progress=lambda line: marks.append((time.process_time(), line)),
    )
    if prof is not None and profile_out:
        prof.disable()
        prof.dump_stats(profile_out)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    total = usage.ru_utime + usage.ru_stime
    parts["other"] = max(0.0, total - sum(v for k, v in parts.items() if k != "other"))
    print(json.dumps({"code": code, "total": total, "parts": parts, "aigate": str(Path(aigate.cli.__file__).parent)}))


# ---- the parent -----------------------------------------------------------------------------------------------------


def _children_cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def main(argv: list[str] | None = None) -> int:
    import argparse
    import base64
    import statistics
    import subprocess
    import tempfile

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="gate processes (and operator repetitions); medians")
    parser.add_argument("--tree", type=Path, help="import aigate from TREE/operator in the gate process")
    parser.add_argument("--profile", type=Path, help="cProfile of the last gate process, to this file")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT / "tests" / "cluster"))
    sys.path.insert(0, str(ROOT / "hack"))
    from flows import CANARY, profile, workload

    from aigate.api.digest import spec_digest
    from aigate.api.load import resolve, workload_from_api
    from aigate.controller import jobs
    from aigate.evidence.keys import generate_key, private_key_from_pem
    from aigate.kube import names
    from aigate.kube.gaterun import read_result
    from aigate.pipeline import judge, sign_predicate
    from aigate.simulator.profile import SimProfile
    from aigate.simulator.server import SimulatorServer
    from configmap_api import serving

    fast = profile(5)
    with tempfile.TemporaryDirectory(prefix="aigate-bench-gate-") as d, serving(Path(d)) as api:
        tmp = Path(d)
        api.tokens.add(TOKEN)
        sim = SimulatorServer(SimProfile.model_validate(fast)).start()
        try:
            ns, name = "bench", "fraud-review"
            doc = workload(ns, name, sim)
            doc["metadata"]["uid"] = "0b9f6c5e-0000-4000-8000-000000000001"
            wl = workload_from_api(doc)
            configmaps = {f"{name}-prompts": {"system.md": "You review fraud cases."}}
            resolved = resolve(wl, lambda ref: configmaps[ref.name][ref.key])
            digest = spec_digest(resolved)
            run = jobs.GateRun.of(wl, GATES, digest, "r0")
            input_name, result_name = names.run_input(run.job), names.run_result(run.job)
            api.put(GATES, input_name, {names.INPUT_KEY: jobs.run_input(wl, configmaps)})
            api.readable = {input_name, result_name}
            kubeconfig = tmp / "kubeconfig"
            kubeconfig.write_text(
                json.dumps(
                    {
                        "apiVersion": "v1",
                        "kind": "Config",
                        "current-context": "bench",
                        "contexts": [{"name": "bench", "context": {"cluster": "c", "user": "gate"}}],
                        "clusters": [
                            {
                                "name": "c",
                                "cluster": {
                                    "server": api.url,
                                    "certificate-authority-data": base64.b64encode(
                                        api.ca.pair.cert.read_bytes()
                                    ).decode(),
                                },
                            }
                        ],
                        "users": [{"name": "gate", "user": {"token": TOKEN}}],
                    }
                )
            )
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AIGATE_", "KUBERNETES_"))}
            env["KUBECONFIG"] = str(kubeconfig)
            env[names.JOB_NAME_ENV] = run.job
            for key, value in CANARY.items():
                env[names.secret_env_name("llm-keys", key)] = value
            if args.tree is not None:
                env["PYTHONPATH"] = str(args.tree.resolve() / "operator")

            # the bare interpreter, for scale: what any Python process costs to start and stop
            before = _children_cpu()
            for _ in range(args.runs):
                subprocess.run([sys.executable, "-c", "pass"], check=True, env=env)
            bare = (_children_cpu() - before) / args.runs

            def sim_requests() -> int:
                return sum(int(m["requests"]) for m in sim.stats()["models"].values())

            gate_runs: list[dict[str, Any]] = []
            sim_before = sim_requests()
            for i in range(args.runs):
                api.put(GATES, result_name, {})
                if args.profile is not None and i == args.runs - 1:
                    env["AIGATE_BENCH_PROFILE"] = str(args.profile)
                t0, c0 = time.perf_counter(), _children_cpu()
                out = subprocess.run(
                    [sys.executable, __file__, "--child", GATES, input_name, result_name, digest, f"r{i}"],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                wall, cpu = time.perf_counter() - t0, _children_cpu() - c0
                if out.returncode != 0 or not out.stdout.strip():
                    print(out.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"the gate process failed (exit {out.returncode})")
                r = json.loads(out.stdout.strip().splitlines()[-1])
                if r["code"] != 0:
                    print(out.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"the gate run did not measure (exit {r['code']})")
                r.update(wall=wall, rusage_children=cpu)
                gate_runs.append(r)
            requests = (sim_requests() - sim_before) // args.runs  # every call a gate run makes: suite, faults
            result = read_result(api.configmaps[(GATES, result_name)], spec_digest=digest)
            assert result.outcome == "measured", result.error
            assert result.measurements is not None
            cases = sum(len(mm.runs) for mm in result.measurements.models.values())

            # the operator's share per run, in this process
            key = private_key_from_pem(generate_key("ecdsa-p256")[0])
            credentials = {("llm-keys", k): v for k, v in CANARY.items()}
            cm = api.configmaps[(GATES, result_name)]
            op: dict[str, list[float]] = {"objects": [], "read result": [], "judge": [], "sign": []}
            n_objects = 0
            for _ in range(args.runs):
                t = time.process_time()
                objs = [
                    *jobs.run_rbac(run),
                    jobs.input_configmap(run, jobs.run_input(wl, configmaps)),
                    jobs.result_configmap(run),
                    jobs.credentials_secret(run, credentials),
                    jobs.gate_job(run, wl, image="aigate:dev", active_deadline_s=600, ttl_after_finished_s=3600,
                                  backoff_limit=0),
                ]  # fmt: skip
                wire = [json.dumps(o) for o in objs]
                n_objects = len(wire)
                op["objects"].append(time.process_time() - t)
                t = time.process_time()
                got = read_result(json.loads(json.dumps(cm)), spec_digest=digest)
                op["read result"].append(time.process_time() - t)
                assert got.measurements is not None
                t = time.process_time()
                _, predicate, dg = judge(resolved, got.measurements, now=got.finished_at, key_id="bench")
                op["judge"].append(time.process_time() - t)
                t = time.process_time()
                json.dumps(sign_predicate(resolved, dg, predicate, key), separators=(",", ":"))
                op["sign"].append(time.process_time() - t)
        finally:
            sim.stop()

    med = {p: statistics.median(r["parts"][p] for r in gate_runs) for p in PARTS}
    total = statistics.median(r["total"] for r in gate_runs)
    op_med = {k: statistics.median(v) for k, v in op.items()}
    report = {
        "aigate": gate_runs[0]["aigate"],
        "runs": args.runs,
        "bare_python_cpu_s": bare,
        "gate_cpu_s": med,
        "gate_total_cpu_s": total,
        "gate_wall_s": statistics.median(r["wall"] for r in gate_runs),
        "gate_rusage_children_s": statistics.median(r["rusage_children"] for r in gate_runs),
        "model_requests": requests,
        "suite_case_runs": cases,
        "result_bytes": len(cm["data"][names.RESULT_KEY]),
        "operator_cpu_s": op_med,
        "operator_objects": n_objects,
        "loadavg": os.getloadavg(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"gate process (aigate from {report['aigate']}), median of {args.runs}, CPU ms:")
    for p in PARTS:
        share = 100 * med[p] / total if total else 0.0
        print(f"  {p:<8} {1000 * med[p]:8.1f}  {share:5.1f} %")
    print(f"  {'total':<8} {1000 * total:8.1f}  (wall {1000 * report['gate_wall_s']:.0f} ms)")
    print(f"  bare `python -c pass`: {1000 * bare:.1f} ms CPU")
    print(
        f"  {requests} model requests per run ({cases} suite case runs, the rest fault injection); "
        f"result {report['result_bytes']} bytes"
    )
    print(f"operator per run, median of {args.runs}, CPU ms ({n_objects} objects created, API calls not timed):")
    for k, v in op_med.items():
        print(f"  {k:<12} {1000 * v:8.1f}")
    la = report["loadavg"]
    print(f"load average at the end: {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}; {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    main_or_child(main, child)
