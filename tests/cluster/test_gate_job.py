"""The gate Job end to end on the real API server, built as the operator builds it: the RBAC, the empty result
ConfigMap and the Job; the node runs `aigate run-gates` in a container from the aigate image, under the Job's
securityContext (non-root, read-only root filesystem) and the gate ServiceAccount, which reads the AIWorkload and its
ConfigMap through the API, measures two models on the simulator (two wire formats; served from this machine on the
pod bridge's gateway address) with keys
that arrive as secretKeyRef env, and writes the result. The key shows up nowhere; the Role is exact; a stale
digest and a missing ConfigMap end as results the operator can read, and as failed Jobs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aigate.api.digest import spec_digest
from aigate.api.errors import WorkloadError
from aigate.api.load import configmap_names, resolve
from aigate.api.models import AIWorkload, ConfigMapKeyRef
from aigate.controller import jobs, names
from aigate.rungates import GateRunResult, read_result
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


def workload_doc(name: str, namespace: str, url: str, *, prompt_cm: str = "prompts") -> dict[str, Any]:
    return {
        "apiVersion": "aigate.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
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
            "suite": {
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
    }


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


def start_gate_job(cluster: Cluster, wl: AIWorkload, digest: str, run_id: str) -> str:
    """What the operator does for one run: RBAC, the empty result ConfigMap, the Job."""
    owner = jobs.owner_reference(wl)
    ns = wl.metadata.namespace
    apply(cluster, ns, *jobs.gate_rbac(wl, configmap_names(wl), owner), jobs.result_configmap(wl, owner))
    job = jobs.gate_job(
        wl,
        digest,
        run_id,
        owner,
        image=cluster_image(),
        active_deadline_s=600,
        ttl_after_finished_s=3600,
        backoff_limit=0,
    )
    apply(cluster, ns, job)
    return str(job["metadata"]["name"])


def result_of(cluster: Cluster, wl: AIWorkload, **check: str) -> tuple[GateRunResult, dict[str, Any]]:
    cm = cluster.get_json("configmap", names.result_configmap(wl.metadata.name), "-n", wl.metadata.namespace)
    return read_result(cm, **check), cm


def pod_log(cluster: Cluster, namespace: str, job: str) -> str:
    [pod] = cluster.get_json("pods", "-n", namespace, "-l", f"job-name={job}")["items"]
    return cluster.pod_log(namespace, pod["metadata"]["name"])


@pytest.mark.usefixtures("crd")
def test_gate_job_measures_both_models_and_leaks_no_key(cluster: Cluster, namespace: str, sim_url: str) -> None:
    wl, digest = setup_workload(cluster, namespace, sim_url)
    assert digest is not None
    job = start_gate_job(cluster, wl, digest, "r1")
    cluster.wait_for_condition("job", job, namespace, "Complete", timeout=300)

    result, cm = result_of(cluster, wl, run_id="r1", spec_digest=digest)
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

    job_obj = cluster.get_json("job", job, "-n", namespace)
    log = pod_log(cluster, namespace, job)
    assert "written to" in log and "Traceback" not in log
    for where, text in (("result ConfigMap", json.dumps(cm)), ("Job", json.dumps(job_obj)), ("pod log", log)):
        for canary in (CANARY_ANTHROPIC, CANARY_OPENAI):
            assert canary not in text, f"an API key leaked into the {where}"


@pytest.mark.usefixtures("crd")
def test_gate_service_account_has_exactly_its_role(cluster: Cluster, namespace: str) -> None:
    wl, _ = setup_workload(cluster, namespace, "http://127.0.0.1:9")
    owner = jobs.owner_reference(wl)
    apply(cluster, namespace, *jobs.gate_rbac(wl, configmap_names(wl), owner), jobs.result_configmap(wl, owner))
    cluster.kubectl("create", "configmap", "other", "-n", namespace, "--from-literal=a=b")
    sa = f"system:serviceaccount:{namespace}:{names.gate_service_account(wl.metadata.name)}"
    result_cm = names.result_configmap(wl.metadata.name)

    def may(*args: str) -> bool:
        done = cluster.kubectl(*args, "-n", namespace, as_user=sa, check=False)
        assert done.returncode == 0 or "forbidden" in done.stderr.lower(), done.stderr
        return done.returncode == 0

    patch = '{"data": {"x": "1"}}'
    assert may("get", "aiworkload", "fraud-review")
    assert may("get", "configmap", "prompts")
    assert may("get", "configmap", result_cm)
    assert may("patch", "configmap", result_cm, "--type=merge", "-p", patch)
    assert not may("get", "secret", "llm-keys")
    assert not may("get", "secrets")
    assert not may("patch", "configmap", "other", "--type=merge", "-p", patch)
    assert not may("patch", "configmap", "prompts", "--type=merge", "-p", patch)
    assert not may("get", "configmap", "other")
    assert not may("get", "configmaps")
    assert not may("create", "configmap", "new", "--from-literal=a=b")
    assert not may("delete", "configmap", result_cm)
    assert not may("patch", "aiworkload", "fraud-review", "--type=merge", "-p", '{"spec": {"owner": "x"}}')
    assert not may("run", "p", "--image=x", "--restart=Never")
    # update (a full replace) of the result ConfigMap, as well as patch
    updated = cluster.get_json("configmap", result_cm, "-n", namespace)
    updated["data"]["y"] = "2"
    done = cluster.kubectl("replace", "-n", namespace, "-f", "-", as_user=sa, input=json.dumps(updated), check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.usefixtures("crd")
def test_stale_digest_writes_stale_and_fails_the_job(cluster: Cluster, namespace: str) -> None:
    wl, digest = setup_workload(cluster, namespace, "http://127.0.0.1:9")
    assert digest is not None
    stale = "sha256:" + "0" * 64
    job = start_gate_job(cluster, wl, stale, "r2")
    cluster.wait_for_condition("job", job, namespace, "Failed", timeout=300)

    result, _ = result_of(cluster, wl, run_id="r2", spec_digest=stale)
    assert result.outcome == "stale"
    assert result.observed_digest == digest
    assert result.measurements is None
    assert result.error is not None and "stale" in result.error and digest in result.error
    assert "Traceback" not in pod_log(cluster, namespace, job)


@pytest.mark.usefixtures("crd")
def test_missing_configmap_is_an_error_result_naming_it(cluster: Cluster, namespace: str) -> None:
    wl, digest = setup_workload(cluster, namespace, "http://127.0.0.1:9", prompt_cm="gone")
    assert digest is None
    job = start_gate_job(cluster, wl, "sha256:" + "1" * 64, "r3")
    cluster.wait_for_condition("job", job, namespace, "Failed", timeout=300)

    result, _ = result_of(cluster, wl, run_id="r3")
    assert result.outcome == "error"
    assert result.error is not None and f"ConfigMap {namespace}/gone not found" in result.error
    log = pod_log(cluster, namespace, job)
    assert f"ConfigMap {namespace}/gone not found" in log and "Traceback" not in log
