"""An operator stopped in the middle of starting a gate run must, once back, leave exactly one gate Job that its
status points to. The reconciler runs in this process against the real API server (no operator process here,
so nothing else reconciles the workload); the stop is an exception raised where the process would have died."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from aigate.controller.reconcile import Reconciler, Signer
from aigate.evidence.keys import key_id
from aigate.kube import names
from aigate.kube.client import JSON, Kube
from aigate.kube.config import OperatorConfig
from localcluster.aigate_operator import install_crd
from localcluster.testing import Cluster, cluster_image


class Stopped(BaseException):
    """Where the operator process would have been killed (BaseException: nothing may catch it)."""


class StopsBeforeJob(Kube):
    def create(self, obj: JSON) -> JSON:
        if obj["kind"] == "Job":
            raise Stopped(obj["metadata"]["name"])
        return super().create(obj)


def workload(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "aigate.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": "interrupted", "namespace": ns},
        "spec": {
            "owner": "fraud-platform-team",
            "models": [
                {
                    "name": "primary",
                    "role": "primary",
                    "provider": "openai",
                    "model": "gpt-4.1-mini",
                    "endpoint": "http://127.0.0.1:9/v1",
                    "credentials": {"secretRef": {"name": "llm-keys", "key": "openai"}},
                }
            ],
            "traffic": {"requestsPerDay": 1000, "peakRequestsPerSecond": 2},
            "budget": {"monthlyUSD": 100},
            "slo": {"p95LatencyMs": 2000},
            "suite": {
                "cases": [
                    {"name": "c1", "messages": [{"role": "user", "content": "hello"}], "expect": {"contains": ["hi"]}}
                ]
            },
        },
    }


@pytest.fixture
def reconciler_parts(cluster: Cluster, tmp_path: Any) -> Iterator[tuple[OperatorConfig, Signer]]:
    install_crd(cluster.kubectl)
    key = ec.generate_private_key(ec.SECP256R1())
    signer = Signer(key=key, key_id=key_id(key.public_key()), public_key=key.public_key())
    gates = cluster.create_namespace("g")
    # a gate Job that cannot run far: this test is about which Jobs exist, not what they measure
    config = OperatorConfig(
        signing_key=tmp_path / "unused",
        gate_image=cluster_image(),
        gate_command=["false"],
        job_deadline_s=60,
        gate_namespace=gates,
    )
    yield config, signer
    cluster.delete_namespace(gates)


def gate_jobs(cluster: Cluster, ns: str, config: OperatorConfig) -> list[str]:
    uid = cluster.get_json("aiworkload", "interrupted", "-n", ns)["metadata"]["uid"]
    selector = f"{names.WORKLOAD_UID_LABEL}={uid}"
    found = cluster.get_json("jobs", "-n", config.gate_namespace, "-l", selector)["items"]
    return sorted(j["metadata"]["name"] for j in found)


def test_stopped_between_status_and_job_starts_exactly_one_job_after(
    cluster: Cluster, namespace: str, reconciler_parts: tuple[OperatorConfig, Signer]
) -> None:
    config, signer = reconciler_parts
    cluster.kubectl("create", "secret", "generic", "llm-keys", "-n", namespace, "--from-literal=openai=sk-x")
    cluster.kubectl("apply", "-f", "-", input=json.dumps(workload(namespace)))
    body = cluster.get_json("aiworkload", "interrupted", "-n", namespace)

    with pytest.raises(Stopped) as stopped:
        Reconciler(StopsBeforeJob(cluster.api_client()), config, signer).reconcile(body)
    recorded = cluster.get_json("aiworkload", "interrupted", "-n", namespace)["status"]
    assert recorded["phase"] == "Testing"
    assert recorded["lastRun"]["job"] == str(stopped.value)
    assert gate_jobs(cluster, namespace, config) == []

    # back up: the recorded run has no Job, so the run starts again, once, whichever handler gets there first
    after = Reconciler(Kube(cluster.api_client()), config, signer)
    outcomes: list[str] = []
    callers = [
        threading.Thread(target=lambda: outcomes.append(after.reconcile(body))),
        threading.Thread(target=lambda: outcomes.append(after.tick(body))),
        threading.Thread(target=lambda: outcomes.append(after.reconcile(body))),
    ]
    for t in callers:
        t.start()
    for t in callers:
        t.join(timeout=60)
    jobs = gate_jobs(cluster, namespace, config)
    assert len(jobs) == 1, f"{len(jobs)} gate Jobs after the restart: {jobs} ({outcomes})"
    assert sorted(outcomes) == sorted([f"started {jobs[0]}", "gate run in progress", "gate run in progress"])
    status = cluster.get_json("aiworkload", "interrupted", "-n", namespace)["status"]
    assert status["lastRun"]["job"] == jobs[0] != recorded["lastRun"]["job"]


def test_a_run_past_its_deadline_leaves_no_secret(
    cluster: Cluster, namespace: str, reconciler_parts: tuple[OperatorConfig, Signer]
) -> None:
    """The gate Job outlives its activeDeadlineSeconds: the Job fails, the run ends in an error, and the Secret the
    keys were copied into is gone with the rest of the run's material."""
    config, signer = reconciler_parts
    slow = config.model_copy(update={"gate_command": ["sh", "-c", "sleep 300"], "job_deadline_s": 2})
    cluster.kubectl("create", "secret", "generic", "llm-keys", "-n", namespace, "--from-literal=openai=sk-x")
    cluster.kubectl("apply", "-f", "-", input=json.dumps(workload(namespace)))
    body = cluster.get_json("aiworkload", "interrupted", "-n", namespace)
    reconciler = Reconciler(Kube(cluster.api_client()), slow, signer)
    assert reconciler.reconcile(body).startswith("started ")
    uid = body["metadata"]["uid"]
    selector = f"{names.WORKLOAD_UID_LABEL}={uid}"

    def secrets() -> list[str]:
        found = cluster.get_json("secrets", "-n", slow.gate_namespace, "-l", selector)["items"]
        return [s["metadata"]["name"] for s in found]

    assert len(secrets()) == 1, "the keys travel to the gate namespace for the run"
    [job] = gate_jobs(cluster, namespace, slow)
    failed = cluster.wait_for_condition("job", job, slow.gate_namespace, "Failed", timeout=120)
    assert {c["reason"] for c in failed["status"]["conditions"] if c["type"] == "Failed"} == {"DeadlineExceeded"}
    outcome = reconciler.job_done(failed)
    assert outcome == "run error"
    status = cluster.get_json("aiworkload", "interrupted", "-n", namespace)["status"]
    assert status["phase"] == "Error" and status["lastRun"]["finishedAt"]
    assert secrets() == [], "the run Secret outlived its run"
