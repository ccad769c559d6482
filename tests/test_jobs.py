"""The gate Job's objects as the operator creates them in the gate namespace (names, labels, the Role's exact rules,
env without secret material, the input and the per-run Secret) and the result format the Job hands back (bounded
size, strict parsing)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from aigate.api.load import configmap_names, resolve
from aigate.api.models import AIWorkload
from aigate.controller import jobs
from aigate.kube import names
from aigate.kube.gaterun import MAX_RESULT_BYTES, TEXT_LIMIT, GateRunResult, ResultError, bound_result, read_result
from aigate.measurements import CaseRun, Measurements, ModelMeasurement
from aigate.rungates import _for_the_job
from jobs_support import CANARY, CASES, DIGEST, UID, workload

NAME_63 = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


GATES = "aigate-gates"


def run(wl: AIWorkload | None = None, run_id: str = "r1a2b3") -> jobs.GateRun:
    return jobs.GateRun.of(wl or workload(), GATES, DIGEST, run_id)


def job(wl: AIWorkload | None = None, run_id: str = "r1a2b3", **kw: Any) -> dict[str, Any]:
    wl = wl or workload()
    return jobs.gate_job(
        run(wl, run_id),
        wl,
        image="ghcr.io/aigate/aigate:1.0",
        active_deadline_s=1800,
        ttl_after_finished_s=3600,
        backoff_limit=1,
        **kw,
    )


def test_owner_reference_is_the_controller() -> None:
    ref = jobs.owner_reference(workload())
    assert ref == {
        "apiVersion": "aigate.dev/v1alpha1",
        "kind": "AIWorkload",
        "name": "fraud-review",
        "uid": UID,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    wl = workload()
    wl.metadata.uid = None
    with pytest.raises(ValueError, match="uid"):
        jobs.owner_reference(wl)


def test_referenced_configmaps_and_secret_refs() -> None:
    wl = workload()
    assert configmap_names(wl) == ["prompts", "suite", "tools"]
    assert [(r.name, r.key) for r in jobs.secret_refs(wl)] == [
        ("anthropic", "api-key"),
        ("mcp", "t"),
        ("openai", "api-key"),
    ]


def test_rbac_is_exactly_what_the_job_needs() -> None:
    """Read its input, write its result: nothing in the workload's namespace, nothing of any other run."""
    r = run()
    sa, role, binding = jobs.run_rbac(r)
    assert [o["kind"] for o in (sa, role, binding)] == ["ServiceAccount", "Role", "RoleBinding"]
    for o in (sa, role, binding):
        assert o["metadata"]["name"] == r.job
        assert o["metadata"]["namespace"] == GATES
        assert "ownerReferences" not in o["metadata"]  # cannot cross namespaces: cleanup is by label
        assert o["metadata"]["labels"] == {names.RUN_LABEL: "r1a2b3", names.WORKLOAD_UID_LABEL: UID}
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [names.run_input(r.job)], "verbs": ["get"]},
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [names.run_result(r.job)],
            "verbs": ["get", "update", "patch"],
        },
    ]
    assert all(rule.get("resourceNames") for rule in role["rules"])  # an empty list would grant every name
    assert "secrets" not in json.dumps(role) and "aiworkloads" not in json.dumps(role)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": r.job}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": r.job, "namespace": GATES}]


def test_input_carries_the_resolved_spec_and_only_referenced_keys() -> None:
    wl = workload()
    r = run(wl)
    payload = jobs.run_input(wl, {"prompts": {"system.md": "You are careful."}, "suite": {"cases.yaml": CASES}})
    cm = jobs.input_configmap(r, payload)
    assert cm["metadata"]["name"] == names.run_input(r.job) and cm["metadata"]["namespace"] == GATES
    assert cm["immutable"] is True
    doc = json.loads(cm["data"][names.INPUT_KEY])
    meta = doc["workload"]["metadata"]
    assert (meta["name"], meta["namespace"], meta["uid"]) == ("fraud-review", "fraud", UID)
    assert doc["configMaps"] == {"prompts": {"system.md": "You are careful."}, "suite": {"cases.yaml": CASES}}


def test_credentials_secret_holds_the_named_keys_under_their_env_names() -> None:
    r = run()
    secret = jobs.credentials_secret(r, {("openai", "api-key"): CANARY})
    assert secret["metadata"]["name"] == names.run_credentials(r.job) and secret["metadata"]["namespace"] == GATES
    assert secret["metadata"]["labels"][names.RUN_LABEL] == "r1a2b3"
    assert list(secret["data"]) == [names.secret_env_name("openai", "api-key")]
    assert CANARY not in json.dumps(secret)  # base64, as the API wants it


def test_result_configmap_is_empty_and_labelled() -> None:
    r = run()
    cm = jobs.result_configmap(r)
    assert cm["metadata"]["name"] == names.run_result(r.job)
    assert cm["metadata"]["labels"] == {
        names.RUN_LABEL: "r1a2b3",
        names.WORKLOAD_UID_LABEL: UID,
        names.ROLE_LABEL: "gate-result",
    }
    assert cm["data"] == {}


def test_job_shape() -> None:
    j = job()
    meta, spec = j["metadata"], j["spec"]
    assert (j["apiVersion"], j["kind"]) == ("batch/v1", "Job")
    assert meta["name"] == names.gate_job("fraud-review", DIGEST, "r1a2b3")
    assert meta["namespace"] == GATES
    assert meta["labels"] == {names.RUN_LABEL: "r1a2b3", names.WORKLOAD_UID_LABEL: UID, names.ROLE_LABEL: "gate-job"}
    assert meta["annotations"] == {
        names.FOR_NAMESPACE_ANNOTATION: "fraud",
        names.FOR_NAME_ANNOTATION: "fraud-review",
        names.DIGEST_ANNOTATION: DIGEST,
        names.RUN_ANNOTATION: "r1a2b3",
    }
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"], spec["ttlSecondsAfterFinished"]) == (1, 1800, 3600)
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == meta["name"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert names.WORKLOAD_LABEL not in spec["template"]["metadata"]["labels"]
    [c] = pod["containers"]
    assert c["image"] == "ghcr.io/aigate/aigate:1.0"
    assert c["command"] == [
        "aigate",
        "run-gates",
        "--namespace",
        GATES,
        "--input",
        names.run_input(meta["name"]),
        "--result",
        names.run_result(meta["name"]),
        "--spec-digest",
        DIGEST,
        "--run-id",
        "r1a2b3",
    ]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert c["imagePullPolicy"] == "IfNotPresent"
    # nothing is mounted but a scratch /tmp on the read-only root filesystem
    assert c["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]


def test_same_template_tells_a_replaced_command_or_env() -> None:
    mine = job()
    assert jobs.same_template(mine, json.loads(json.dumps(mine)))
    stored = json.loads(json.dumps(mine))  # as the API server returns it: defaults filled in
    [c] = stored["spec"]["template"]["spec"]["containers"]
    c.update(imagePullPolicy="IfNotPresent", terminationMessagePath="/dev/termination-log")
    c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] = "v1"
    assert jobs.same_template(stored, mine)
    forged = json.loads(json.dumps(mine))
    forged["spec"]["template"]["spec"]["containers"][0]["command"] = ["true"]
    assert not jobs.same_template(forged, mine)
    forged = json.loads(json.dumps(mine))
    forged["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:latest"
    assert not jobs.same_template(forged, mine)


def test_job_env_one_secret_key_ref_per_distinct_secret_and_nothing_else_secret() -> None:
    [c] = job()["spec"]["template"]["spec"]["containers"]
    secret_env = {
        e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"] if "secretKeyRef" in e.get("valueFrom", {})
    }
    run_secret = names.run_credentials(names.gate_job("fraud-review", DIGEST, "r1a2b3"))
    assert secret_env == {
        env: {"name": run_secret, "key": env}
        for env in (
            names.secret_env_name("anthropic", "api-key"),
            names.secret_env_name("openai", "api-key"),
            names.secret_env_name("mcp", "t"),
        )
    }
    assert len(c["env"]) == len({e["name"] for e in c["env"]})
    job_name = [e for e in c["env"] if e["name"] == names.JOB_NAME_ENV]
    assert job_name == [
        {"name": "AIGATE_JOB_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['job-name']"}}}
    ]
    text = json.dumps(job()).lower()
    assert "signing" not in text and "private" not in text and ".key" not in text
    assert all("value" not in e or e["name"] == "PYTHONDONTWRITEBYTECODE" for e in c["env"])


def test_job_command_prefix_and_name_limits() -> None:
    c = job(command=["python", "-m", "aigate.cli"])["spec"]["template"]["spec"]["containers"][0]
    assert c["command"][:4] == ["python", "-m", "aigate.cli", "run-gates"]
    long = workload(name="a" * 200 + ".b-c")
    j = job(long, run_id="r" + "9" * 40)
    assert NAME_63.match(j["metadata"]["name"]), j["metadata"]["name"]
    for o in jobs.run_rbac(run(long, "r" + "9" * 40)):
        assert len(o["metadata"]["name"]) <= 253
    with pytest.raises(ValueError, match="run id"):
        job(run_id="Run_1")


def test_a_canary_is_a_gate_job_of_its_own_role_in_canary_mode_with_its_cases_in_the_input() -> None:
    gate, canary = job(), job(canary=True)
    assert canary["metadata"]["labels"][names.ROLE_LABEL] == names.CANARY_JOB_ROLE
    assert canary["spec"]["template"]["metadata"]["labels"][names.ROLE_LABEL] == names.CANARY_JOB_ROLE
    [g], [c] = gate["spec"]["template"]["spec"]["containers"], canary["spec"]["template"]["spec"]["containers"]
    assert c["command"] == [*g["command"], "--canary"] and "--canary" not in g["command"]
    # the same image, ServiceAccount, credentials path and security context as any run
    assert (c["image"], c["env"], c["securityContext"]) == (g["image"], g["env"], g["securityContext"])
    assert not jobs.same_template(canary, gate)  # a gate run's template is not a canary's, nor the other way
    cm = jobs.input_configmap(run(), "{}", jobs.canary_input(("b", "c"), 0.25))
    assert json.loads(cm["data"][names.CANARY_KEY]) == {"cases": ["b", "c"], "maxUSD": 0.25}
    assert names.CANARY_KEY not in jobs.input_configmap(run(), "{}")["data"]


# ---- result format ------------------------------------------------------------------------------------------------

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def measurements(text: str = "answer", runs: int = 2) -> Measurements:
    mm = ModelMeasurement(
        model="primary",
        provider="anthropic",
        requested_model="claude-sonnet-4-5",
        runs=[CaseRun(case=f"c{i}", model="primary", ok=True, latency_ms=12.5, text=text) for i in range(runs)],
    )
    return Measurements(started_at=T0, finished_at=T0, runner_version="test", concurrency=1, models={"primary": mm})


def result(**kw: Any) -> GateRunResult:
    doc: dict[str, Any] = {
        "run_id": "r1",
        "spec_digest": DIGEST,
        "job": "aigate-x",
        "started_at": T0,
        "finished_at": T0,
        "outcome": "measured",
        "measurements": measurements(),
    }
    doc.update(kw)
    return GateRunResult(**doc)


def cm(payload: str | None) -> dict[str, Any]:
    return {
        "metadata": {"name": "x-aigate-result", "namespace": "fraud"},
        "data": {} if payload is None else {"result.json": payload},
    }


def test_result_round_trip_and_camel_case() -> None:
    bounded, text = bound_result(result())
    doc = json.loads(text)
    assert {"runId", "specDigest", "job", "startedAt", "finishedAt", "outcome", "measurements", "textLimit"} <= set(doc)
    assert doc["textLimit"] == TEXT_LIMIT
    back = read_result(cm(text), run_id="r1", spec_digest=DIGEST)
    assert back == bounded
    assert back.measurements is not None
    assert back.measurements.models["primary"].runs[0].latency_ms == 12.5


def test_result_texts_are_cut_then_dropped_to_fit() -> None:
    _, text = bound_result(result(measurements=measurements("x" * 5000)))
    runs = json.loads(text)["measurements"]["models"]["primary"]["runs"]
    assert {len(r["text"]) for r in runs} == {TEXT_LIMIT}

    big = measurements("y" * 3000, runs=400)  # 400 x 2,000 chars: > 700 KB cut, still under the bound
    _, text = bound_result(result(measurements=big), limit=200_000)
    doc = json.loads(text)
    assert doc["outcome"] == "measured"
    assert doc["textLimit"] == 0
    assert len(text.encode()) <= 200_000
    assert {r["text"] for r in doc["measurements"]["models"]["primary"]["runs"]} == {""}

    bounded, text = bound_result(result(measurements=big), limit=1000)
    assert bounded.outcome == "error"
    assert "do not fit" in (bounded.error or "")
    assert "measurements" not in json.loads(text)
    assert MAX_RESULT_BYTES < 1024 * 1024


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (None, "has no result.json"),
        ("{not json", "not JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"runId": "r1"}', "malformed: specDigest"),
        (result().to_json().replace('"measured"', '"stale"'), "without an error"),
        (
            result(outcome="error", error="boom", measurements=None).to_json().replace('"error"', '"measured"', 1),
            "without measurements",
        ),
        (result().to_json()[:-1] + ', "extra": 1}', "unknown field"),
    ],
)
def test_read_result_rejects_malformed(payload: str | None, message: str) -> None:
    with pytest.raises(ResultError, match=message):
        read_result(cm(payload))


def test_read_result_checks_run_and_digest() -> None:
    text = result().to_json()
    with pytest.raises(ResultError, match="run 'r1', not 'r2'"):
        read_result(cm(text), run_id="r2")
    with pytest.raises(ResultError, match="not sha256:other"):
        read_result(cm(text), spec_digest="sha256:other")


def test_secret_refs_are_read_from_the_job_env_and_registered() -> None:
    from aigate.redact import redact

    wl = workload(
        prompts=[],
        tools=[],
        mcpServers=[],
        fallback={},
        suite={"cases": [{"name": "c", "messages": [{"role": "user", "content": "x"}]}]},
    )
    resolved = resolve(wl, lambda ref: "")
    env = {
        names.secret_env_name("anthropic", "api-key"): CANARY,
        names.secret_env_name("openai", "api-key"): CANARY + "-openai\n",
        "OPENAI_API_KEY": "laptop-key-not-used",
    }
    runnable, job_env = _for_the_job(resolved, env)
    creds = {m.name: m.credentials for m in runnable.workload.spec.models}
    assert creds["primary"] is not None and creds["primary"].env == names.secret_env_name("anthropic", "api-key")
    assert creds["backup"] is not None and creds["backup"].secret_ref is None
    assert job_env == {
        names.secret_env_name("anthropic", "api-key"): CANARY,
        names.secret_env_name("openai", "api-key"): CANARY + "-openai",
    }
    assert CANARY not in redact(f"key {CANARY} leaked")
    # the original workload is untouched: its digest is what the operator compares
    assert resolved.workload.spec.models[0].credentials is not None
    assert resolved.workload.spec.models[0].credentials.secret_ref is not None

    from aigate.api.errors import WorkloadError

    with pytest.raises(
        WorkloadError, match=r"spec.models\[0\].credentials.secretRef: Secret 'anthropic' key 'api-key' did"
    ):
        _for_the_job(resolved, {})
    laptop = workload()  # its human route's credential is an env variable, which a gate Job does not have
    with pytest.raises(WorkloadError, match=r"spec.fallback.humanRoute.credentials: in a cluster .* set secretRef"):
        _for_the_job(
            resolve(laptop, lambda ref: CASES if ref.name == "suite" else "{}"),
            {**env, names.secret_env_name("mcp", "t"): "mcp-token"},
        )


def test_run_gates_without_api_configuration_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from aigate.rungates import run_gates

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # not in a pod: no in-cluster configuration
    code = run_gates("ns", "in", "out", DIGEST, "r1", environ={"AIGATE_SECRET_X_1": CANARY})  # quiet: no progress
    assert code == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("aigate run-gates: error: no Kubernetes API configuration")
    assert CANARY not in line


def test_job_requests_cpu_and_never_limits_it() -> None:
    [c] = job()["spec"]["template"]["spec"]["containers"]
    assert c["resources"] == {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
    custom = {"requests": {"cpu": "2"}}
    [c] = job(resources=custom)["spec"]["template"]["spec"]["containers"]
    assert c["resources"] == custom


def test_job_resources_from_the_environment() -> None:
    from aigate.api.errors import UsageError
    from aigate.kube.config import from_env

    key = {"AIGATE_SIGNING_KEY": "/keys/signing.pem"}
    assert from_env(key).job_resources == {
        "requests": {"cpu": "500m", "memory": "256Mi"},
        "limits": {"memory": "1Gi"},
    }
    env = {**key, "AIGATE_JOB_CPU_REQUEST": "1.5", "AIGATE_JOB_MEMORY_REQUEST": "", "AIGATE_JOB_MEMORY_LIMIT": "2G"}
    assert from_env(env).job_resources == {"requests": {"cpu": "1.5"}, "limits": {"memory": "2G"}}
    with pytest.raises(UsageError, match=r"AIGATE_JOB_CPU_REQUEST: not a Kubernetes quantity .*'half a core'"):
        from_env({**key, "AIGATE_JOB_CPU_REQUEST": "half a core"})
    with pytest.raises(UsageError, match=r"AIGATE_JOB_MEMORY_REQUEST \(2Gi\) is above AIGATE_JOB_MEMORY_LIMIT \(1Gi\)"):
        from_env({**key, "AIGATE_JOB_MEMORY_REQUEST": "2Gi"})
    assert from_env({**key, "AIGATE_JOB_MEMORY_REQUEST": "950Mi", "AIGATE_JOB_MEMORY_LIMIT": "1G"}).job_resources
    with pytest.raises(UsageError, match="1000Mi"):  # 1000Mi is 1,048,576,000 bytes, 1G is 10**9
        from_env({**key, "AIGATE_JOB_MEMORY_REQUEST": "1000Mi", "AIGATE_JOB_MEMORY_LIMIT": "1G"})
