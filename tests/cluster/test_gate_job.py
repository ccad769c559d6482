"""The gate Job end to end on the real API server, built as the operator builds it, in a gate namespace apart from
the workload's: the run's RBAC, its input (the resolved spec), the empty result ConfigMap, the per-run credentials
Secret and the Job; the node runs `aigate run-gates` under the run's ServiceAccount, which reads its input through
the API, measures two models on the simulator (two wire formats; served from this machine on the pod bridge's
gateway address) with keys that arrive as secretKeyRef env, and
writes the result. The key shows up nowhere; the Role is exact and reaches nothing in the workload's namespace; an
input for another digest and a missing input end as results the operator can read, and as failed Jobs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flows import aiworkload

from aigate.api.digest import spec_digest
from aigate.api.errors import WorkloadError
from aigate.api.load import configmap_refs, resolve
from aigate.api.models import AIWorkload, ConfigMapKeyRef
from aigate.controller import jobs
from aigate.kube import names
from aigate.kube.gaterun import GateRunResult, read_result
from localcluster.testing import Cluster, cluster_image

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "aiworkloads.aigate.dev.yaml"
CANARY_ANTHROPIC = "sk-ant-canary-4d1c8e2f9a7b6c5d"
CANARY_OPENAI = "sk-canary-openai-8b3e1f0a2c9d"
ANSWER = '{"risk": "low", "summary": "nothing unusual"}'
SCHEMA = {"type": "object", "required": ["risk"], "properties": {"risk": {"enum": ["low", "high"]}}}
PROMPT = "You are a fraud analyst. Answer in JSON."


@pytest.fixture(scope="module")
def crd(cluster: Cluster) -> None:
    """The AIWorkload CRD, applied once (left in place: other suites use it too)."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    cluster.kubectl("wait", "--for=condition=Established", "crd/aiworkloads.aigate.dev", "--timeout=60s")


@pytest.fixture(scope="module")
def sim_url(cluster: Cluster) -> Iterator[str]:
    from aigate.simulator.profile import SimProfile
    from aigate.simulator.server import SimulatorServer

    def model(provider: str, fixed_ms: float) -> dict[str, Any]:
        return {
            "provider": provider,
            "latency": {"fixedMs": fixed_ms},
            "usage": {"inputTokens": 100, "outputTokens": 20},
            "responses": [{"match": {"regex": ".*"}, "content": ANSWER}],
        }

    profile = SimProfile.model_validate(
        {"seed": 7, "models": {"claude-sonnet-4-5": model("anthropic", 5), "gpt-4.1-mini": model("openai", 8)}}
    )
    if cluster.host_address is None:
        pytest.skip("serves the simulator from this machine to the cluster's pods")
    server = SimulatorServer(profile, host=cluster.host_address).start()
    try:
        yield str(server.url)
    finally:
        server.stop()


def workload_doc(
    name: str, namespace: str, url: str, *, prompt_cm: str = "prompts", suite: dict[str, Any] | None = None
) -> dict[str, Any]:
    return aiworkload(
        namespace,
        name,
        {
            "owner": "fraud-platform-team",
            "models": [
                {
                    "name": "primary",
                    "provider": "anthropic",
                    "model": "claude-sonnet-4-5",
                    "endpoint": url,
                    "credentials": {"secretRef": {"name": "llm-keys", "key": "anthropic"}},
                    "pricing": {"inputPerMTokUSD": 3, "outputPerMTokUSD": 15},
                },
                {
                    "name": "backup",
                    "role": "fallback",
                    "provider": "openai-compatible",
                    "model": "gpt-4.1-mini",
                    "endpoint": url,
                    "credentials": {"secretRef": {"name": "llm-keys", "key": "openai"}},
                    "pricing": {"inputPerMTokUSD": 0.4, "outputPerMTokUSD": 1.6},
                },
            ],
            "traffic": {"requestsPerDay": 1000, "peakRequestsPerSecond": 1},
            "budget": {"monthlyUSD": 1000, "gateRunMaxUSD": 1},
            "slo": {"p95LatencyMs": 2000, "timeoutMs": 500},
            "fallback": {"safeStop": {"message": "Routed to an analyst."}},
            "prompts": [{"configMapRef": {"name": prompt_cm, "key": "system.md"}}],
            "suite": suite
            or {
                "cases": [
                    {
                        "name": "summarize",
                        "messages": [{"role": "user", "content": "summarize case 1"}],
                        "expect": {"jsonSchema": SCHEMA},
                    },
                    {"name": "risk", "messages": [{"role": "user", "content": "rate case 2"}]},
                ]
            },
        },
    )


def apply(cluster: Cluster, namespace: str, *objs: dict[str, Any]) -> None:
    cluster.kubectl(
        "create",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}),
    )


def setup_workload(
    cluster: Cluster, namespace: str, url: str, name: str = "fraud-review", **kw: Any
) -> tuple[AIWorkload, str | None]:
    """Secret, prompt ConfigMap and AIWorkload; returns the workload as the API serves it and its spec digest
    (None when a reference is missing), as the operator would compute them."""
    cluster.kubectl(
        "create", "secret", "generic", "llm-keys", "-n", namespace,
        f"--from-literal=anthropic={CANARY_ANTHROPIC}", f"--from-literal=openai={CANARY_OPENAI}",
    )  # fmt: skip
    cluster.kubectl("create", "configmap", "prompts", "-n", namespace, f"--from-literal=system.md={PROMPT}")
    apply(cluster, namespace, workload_doc(name, namespace, url, **kw))
    wl = AIWorkload.model_validate(cluster.get_json("aiworkload", name, "-n", namespace))

    def lookup(ref: ConfigMapKeyRef) -> str:
        got = cluster.kubectl("get", "configmap", ref.name, "-n", namespace, "-o", "json", check=False)
        if got.returncode != 0:
            raise WorkloadError(f"ConfigMap {ref.name!r} not found")
        return str(json.loads(got.stdout)["data"][ref.key])

    try:
        digest: str | None = spec_digest(resolve(wl, lookup))
    except WorkloadError:
        digest = None
    return wl, digest


@pytest.fixture
def gates(cluster: Cluster) -> Iterator[str]:
    """A gate namespace of the test's own (the operator's is `aigate-gates`)."""
    name = cluster.create_namespace("g")
    yield name
    cluster.delete_namespace(name)


def start_gate_job(
    cluster: Cluster, wl: AIWorkload, digest: str, run_id: str, gates: str, *, with_input: bool = True
) -> jobs.GateRun:
    """What the operator does for one run, in the gate namespace: RBAC, the input, the empty result ConfigMap,
    the credentials Secret (the keys the workload names, copied), the Job."""
    run = jobs.GateRun.of(wl, gates, digest, run_id)
    ns = wl.metadata.namespace
    configmaps: dict[str, dict[str, str]] = {}
    for ref in configmap_refs(wl):
        data = cluster.get_json("configmap", ref.name, "-n", ns)["data"]
        configmaps.setdefault(ref.name, {})[ref.key] = data[ref.key]
    keys = {("llm-keys", "anthropic"): CANARY_ANTHROPIC, ("llm-keys", "openai"): CANARY_OPENAI}
    objs = [*jobs.run_rbac(run), jobs.result_configmap(run), jobs.credentials_secret(run, keys)]
    if with_input:
        objs.append(jobs.input_configmap(run, jobs.run_input(wl, configmaps)))
    apply(cluster, gates, *objs)
    job = jobs.gate_job(
        run,
        wl,
        image=cluster_image(),
        active_deadline_s=600,
        ttl_after_finished_s=3600,
        backoff_limit=0,
    )
    apply(cluster, gates, job)
    return run


def result_of(cluster: Cluster, run: jobs.GateRun, **check: str) -> tuple[GateRunResult, dict[str, Any]]:
    cm = cluster.get_json("configmap", names.run_result(run.job), "-n", run.gate_namespace)
    return read_result(cm, **check), cm


def pod_log(cluster: Cluster, namespace: str, job: str) -> str:
    [pod] = cluster.get_json("pods", "-n", namespace, "-l", f"job-name={job}")["items"]
    return cluster.pod_log(namespace, pod["metadata"]["name"])


@pytest.mark.usefixtures("crd")
def test_gate_job_measures_both_models_and_leaks_no_key(
    cluster: Cluster, namespace: str, gates: str, sim_url: str
) -> None:
    wl, digest = setup_workload(cluster, namespace, sim_url)
    assert digest is not None
    run = start_gate_job(cluster, wl, digest, "r1", gates)
    job = run.job
    cluster.wait_for_condition("job", job, gates, "Complete", timeout=300)

    result, cm = result_of(cluster, run, run_id="r1", spec_digest=digest)
    assert result.outcome == "measured", result.error
    assert (result.spec_digest, result.observed_digest, result.job) == (digest, digest, job)
    assert result.started_at <= result.finished_at
    m = result.measurements
    assert m is not None
    assert set(m.models) == {"primary", "backup"}
    for name, provider in (("primary", "anthropic"), ("backup", "openai-compatible")):
        mm = m.models[name]
        assert mm.provider == provider
        assert [r.case for r in mm.runs] == ["summarize", "risk"]
        assert all(r.ok and r.passed and r.text == ANSWER for r in mm.runs), mm.runs
        assert all(r.latency_ms > 0 and r.usage.input_tokens == 100 and r.cost_usd for r in mm.runs)
    assert {f.mode for f in m.faults} == {"timeout", "http_5xx", "http_429", "connection_reset", "malformed_body"}
    assert m.spent_usd > 0 and m.timeout_ms == 500
    assert m.rbac is None  # the operator probes RBAC, not the Job

    job_obj = cluster.get_json("job", job, "-n", gates)
    log = pod_log(cluster, gates, job)
    assert "written to" in log and "Traceback" not in log
    for where, text in (("result ConfigMap", json.dumps(cm)), ("Job", json.dumps(job_obj)), ("pod log", log)):
        for canary in (CANARY_ANTHROPIC, CANARY_OPENAI):
            assert canary not in text, f"an API key leaked into the {where}"


@pytest.mark.usefixtures("crd")
def test_gate_service_account_has_exactly_its_role(cluster: Cluster, namespace: str, gates: str) -> None:
    """Its input (read), its result (read, write): nothing else in the gate namespace, nothing in the workload's."""
    wl, digest = setup_workload(cluster, namespace, "http://127.0.0.1:9")
    run = jobs.GateRun.of(wl, gates, digest or "sha256:" + "1" * 64, "r9")
    other = jobs.GateRun.of(wl, gates, digest or "sha256:" + "1" * 64, "r8")
    apply(
        cluster,
        gates,
        *jobs.run_rbac(run),
        jobs.result_configmap(run),
        jobs.input_configmap(run, "{}"),
        jobs.result_configmap(other),
        jobs.credentials_secret(run, {("llm-keys", "openai"): CANARY_OPENAI}),
    )
    sa = f"system:serviceaccount:{gates}:{run.job}"
    result_cm, other_cm = names.run_result(run.job), names.run_result(other.job)

    def may(ns: str, *args: str) -> bool:
        done = cluster.kubectl(*args, "-n", ns, as_user=sa, check=False)
        assert done.returncode == 0 or "forbidden" in done.stderr.lower(), done.stderr
        return done.returncode == 0

    patch = '{"data": {"x": "1"}}'
    assert may(gates, "get", "configmap", names.run_input(run.job))
    assert may(gates, "get", "configmap", result_cm)
    assert may(gates, "patch", "configmap", result_cm, "--type=merge", "-p", patch)
    assert not may(gates, "patch", "configmap", names.run_input(run.job), "--type=merge", "-p", patch)
    assert not may(gates, "get", "configmap", other_cm)
    assert not may(gates, "patch", "configmap", other_cm, "--type=merge", "-p", patch)
    assert not may(gates, "get", "secret", names.run_credentials(run.job))
    assert not may(gates, "get", "secrets")
    assert not may(gates, "get", "configmaps")
    assert not may(gates, "create", "configmap", "new", "--from-literal=a=b")
    assert not may(gates, "delete", "configmap", result_cm)
    assert not may(gates, "run", "p", "--image=x", "--restart=Never")
    # nothing in the workload's namespace: not the workload, its ConfigMaps, or its Secrets
    assert not may(namespace, "get", "aiworkload", "fraud-review")
    assert not may(namespace, "get", "configmap", "prompts")
    assert not may(namespace, "get", "secret", "llm-keys")
    # update (a full replace) of the result ConfigMap, as well as patch
    updated = cluster.get_json("configmap", result_cm, "-n", gates)
    updated["data"]["y"] = "2"
    done = cluster.kubectl("replace", "-n", gates, "-f", "-", as_user=sa, input=json.dumps(updated), check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.usefixtures("crd")
def test_input_for_another_digest_writes_stale_and_fails_the_job(cluster: Cluster, namespace: str, gates: str) -> None:
    wl, digest = setup_workload(cluster, namespace, "http://127.0.0.1:9")
    assert digest is not None
    stale = "sha256:" + "0" * 64
    run = start_gate_job(cluster, wl, stale, "r2", gates)
    cluster.wait_for_condition("job", run.job, gates, "Failed", timeout=300)

    result, _ = result_of(cluster, run, run_id="r2", spec_digest=stale)
    assert result.outcome == "stale"
    assert result.observed_digest == digest
    assert result.measurements is None
    assert result.error is not None and "stale" in result.error and digest in result.error
    assert "Traceback" not in pod_log(cluster, gates, run.job)


@pytest.mark.usefixtures("crd")
def test_missing_input_is_an_error_result_naming_it(cluster: Cluster, namespace: str, gates: str) -> None:
    wl, digest = setup_workload(cluster, namespace, "http://127.0.0.1:9")
    assert digest is not None
    run = start_gate_job(cluster, wl, digest, "r3", gates, with_input=False)
    cluster.wait_for_condition("job", run.job, gates, "Failed", timeout=300)

    result, _ = result_of(cluster, run, run_id="r3")
    assert result.outcome == "error"
    where = f"input ConfigMap {gates}/{names.run_input(run.job)} not found"
    assert result.error is not None and where in result.error
    log = pod_log(cluster, gates, run.job)
    assert where in log and "Traceback" not in log


PROMPTFOO_CONFIG = """\
prompts: ["Review case {{n}}. Answer in JSON."]
tests:
  - description: js-regex
    vars: {n: 1}
    assert:
      - {type: regex, value: '"risk":\\s*"low"'}
      - {type: not-regex, value: '^\\w+$'}
  - description: transform
    vars: {n: 2}
    options: {transform: JSON.parse(output).risk}
    assert: [{type: equals, value: low}]
  - description: fails
    vars: {n: 3}
    assert: [{type: regex, value: '(?<level>high)'}]
"""


@pytest.mark.usefixtures("crd")
def test_gate_job_judges_an_imported_promptfoo_suite_in_its_javascript_sandbox(
    cluster: Cluster, namespace: str, gates: str, sim_url: str
) -> None:
    """The promptfoo import's regex and transform run in the embedded V8 inside the gate pod (the image carries
    mini-racer; the pod's security context lets it run): JavaScript's verdicts come back in the result."""
    cluster.kubectl(
        "create", "configmap", "pf", "-n", namespace, f"--from-literal=promptfooconfig.yaml={PROMPTFOO_CONFIG}"
    )
    suite = {"import": {"promptfoo": {"configMapRef": {"name": "pf", "key": "promptfooconfig.yaml"}}}}
    wl, digest = setup_workload(cluster, namespace, sim_url, suite=suite)
    assert digest is not None
    run = start_gate_job(cluster, wl, digest, "r1", gates)
    cluster.wait_for_condition("job", run.job, gates, "Complete", timeout=300)
    result, _ = result_of(cluster, run, run_id="r1", spec_digest=digest)
    assert result.outcome == "measured", result.error
    m = result.measurements
    assert m is not None
    for name in ("primary", "backup"):
        verdicts = {r.case: r.passed for r in m.models[name].runs}
        assert verdicts == {"js-regex": True, "transform": True, "fails": False}, m.models[name].runs
        [failed] = [r for r in m.models[name].runs if r.case == "fails"]
        assert [a.detail for a in failed.assertions] == [
            "tests[2].assert[0] regex: expected output to match /(?<level>high)/"
        ]
    assert "Traceback" not in pod_log(cluster, gates, run.job)
