"""`kubectl aigate` without a cluster: its command line, its one-line errors, and a remedy for every failing
finding code. tests/cluster/test_kubectl_plugin.py asks a real API server."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from aigate.gates.result import Finding, FindingCode, GateResult
from aigate.kubectl_plugin import Cluster, build_parser, cmd_why, main
from aigate.policy.kinds import GatedKind
from aigate.report.remedies import GATE_ADVICE, REMEDIES, remedies
from gatedexamples import CUSTOM, gated_object

NOT_FAILING: set[str] = {
    "cost.usageEstimated",
    "reliability.caseFailed",
    "fallback.drift",
    "fallback.faultCase",
    "toolControl.note",
    "providerDependency.drift",
}
"""Codes gates only ever use for warnings and notes."""


def test_every_failing_finding_code_says_what_to_change() -> None:
    assert set(REMEDIES) == set(get_args(FindingCode)) - NOT_FAILING


def test_remedies_follow_the_findings_once_each() -> None:
    g = GateResult(
        gate="reliability",
        status="FAIL",
        reason="r",
        findings=[
            Finding(severity="fail", code="reliability.timeoutUndefined", message="a"),
            Finding(severity="info", code="reliability.caseFailed", message="b"),
            Finding(severity="fail", code="reliability.p95Latency", message="c"),
            Finding(severity="fail", code="reliability.p95Latency", message="d"),
        ],
    )
    assert remedies(g) == [REMEDIES["reliability.timeoutUndefined"], REMEDIES["reliability.p95Latency"]]
    assert remedies(GateResult(gate="cost", status="FAIL", reason="r")) == [GATE_ADVICE["cost"]]


def test_kubectl_flags_before_or_after_the_command() -> None:
    p = build_parser()
    a = p.parse_args(["-n", "fraud", "why", "w"])
    assert (a.command, a.name, a.namespace) == ("why", "w", "fraud")
    a = p.parse_args(["report", "w", "-o", "r.html", "--namespace", "x", "--context", "c", "--kubeconfig", "k"])
    assert (a.output, a.namespace, a.context, a.kubeconfig) == ("r.html", "x", "c", "k")


def test_verify_looks_for_the_published_key_in_the_operators_namespace() -> None:
    p = build_parser()
    a = p.parse_args(["evidence", "w", "--verify"])
    assert (a.operator_namespace, a.key, a.key_secret) == ("aigate-system", None, None)
    a = p.parse_args(["evidence", "w", "--verify", "--operator-namespace", "platform"])
    assert a.operator_namespace == "platform"


def test_usage_errors_exit_2_in_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main([]) == 2
    with pytest.raises(SystemExit) as e:
        main(["evidence"])
    assert e.value.code == 2
    assert "error: the following arguments are required: name" in capsys.readouterr().err
    assert main(["why", "w", "--kubeconfig", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err == f"error: --kubeconfig {tmp_path / 'none'}: no such file\n"


def test_no_kubeconfig_and_no_cluster(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["why", "w"]) == 2
    err = capsys.readouterr().err
    assert (
        err == "error: no kubeconfig (/nonexistent/kubeconfig does not exist) and not in a cluster; pass --kubeconfig\n"
    )


class OneWorkload(Cluster):
    """A cluster holding one AIWorkload and no evidence ConfigMap."""

    def __init__(self, status: dict[str, Any]) -> None:
        super().__init__(api=None, namespace="fraud")
        self.status = status

    def get_workload(self, name: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": self.namespace, "generation": 1}, "status": self.status}

    def get_configmap(self, namespace: str, name: str) -> dict[str, str] | None:
        return None


@pytest.mark.parametrize(
    ("policy", "line"),
    [
        (
            {"names": ["platform-default"], "digest": "sha256:x", "enforcement": "enforce", "maxValidFor": "720h"},
            "Policy: the platform default: enforcement floor enforce, evidence valid at most 720h",
        ),
        (
            {"names": ["adopting", "platform-default"], "digest": "sha256:y", "enforcement": "warn"},
            "Policy: AIGatePolicy adopting and the platform default: enforcement floor warn",
        ),
        (None, "Policy: none recorded yet (status records it when the gates are judged)"),
    ],
    ids=["platform-default", "policy-and-default", "not-judged"],
)
def test_why_says_which_policy_the_workload_was_judged_under(
    policy: dict[str, Any] | None, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status: dict[str, Any] = {"decision": "FAIL", "phase": "Failed", "observedGeneration": 1}
    if policy is not None:
        status["policy"] = policy
    assert cmd_why(argparse.Namespace(name="w"), OneWorkload(status)) == 1
    lines = capsys.readouterr().out.splitlines()
    assert line in lines and lines[-1] == "Evidence: none"
    assert lines.index(line) == len(lines) - 3  # then a blank line, then the evidence


class DeclaringWorkload(OneWorkload):
    """A passing AIWorkload declaring `servers` in spec.mcpServers."""

    def __init__(self, servers: list[dict[str, str]]) -> None:
        super().__init__(PASSED)
        self.servers = servers

    def get_workload(self, name: str) -> dict[str, Any]:
        return {**super().get_workload(name), "spec": {"mcpServers": self.servers}}


PASSED: dict[str, Any] = {"decision": "PASS", "phase": "Passed", "observedGeneration": 1}


def manifest(tmp_path: Path, *docs: dict[str, Any]) -> str:
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


@pytest.mark.parametrize("kind", CUSTOM, ids=lambda k: k.kind)
def test_why_f_answers_for_a_refused_object_of_each_custom_kind(
    kind: GatedKind, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The object the API server refused is not stored: `why -f` reads the manifest the team applied, finds the
    AIWorkload its label names (in the object's namespace) and explains that workload."""
    obj = gated_object(kind, "team", "casetools", "fraud-review")
    unrelated = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    status = {"decision": "FAIL", "phase": "Failed", "observedGeneration": 1}
    cluster = OneWorkload(status)
    assert cmd_why(argparse.Namespace(name=None, filename=manifest(tmp_path, unrelated, obj)), cluster) == 1
    out = capsys.readouterr().out.splitlines()
    image = obj["spec"].get("image") or "registry.example/fraud-model:1.0"
    runs = "" if kind.kind == "Rollout" else f" (runs {image})"  # a workloadRef: the Deployment's template runs
    assert out[0] == f"{kind.kind} team/casetools{runs} is labelled for AIWorkload team/fraud-review"
    assert "AIWorkload team/fraud-review: decision FAIL (phase Failed)" in out
    assert cluster.namespace == "team"


def test_why_f_says_an_unlabelled_object_is_not_gated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kind = CUSTOM[1]
    obj = gated_object(kind, "team", "isvc", None)
    assert cmd_why(argparse.Namespace(name=None, filename=manifest(tmp_path, obj)), OneWorkload(PASSED)) == 0
    assert (
        capsys.readouterr().out == f"{kind.kind} team/isvc has no aigate.dev/workload label: aigate does not gate it\n"
    )


def test_why_f_names_an_mcpserver_the_workload_does_not_declare(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [kind] = [k for k in CUSTOM if k.mcp is not None]
    path = manifest(tmp_path, gated_object(kind, "team", "shell-tools", "fraud-review"))
    declared = [{"name": "casetools", "url": "http://mcp-casetools-proxy.team.svc.cluster.local:8080/mcp"}]
    assert cmd_why(argparse.Namespace(name=None, filename=path), DeclaringWorkload(declared)) == 1
    out = capsys.readouterr().out
    assert "  refused: MCPServer team/shell-tools (image ghcr.io/example/casetools-mcp:1.2.0, served at " in out
    assert "is not one of the MCP servers the workload declares in spec.mcpServers (casetools (http://" in out
    ok = manifest(tmp_path, gated_object(kind, "team", "casetools", "fraud-review"))
    assert cmd_why(argparse.Namespace(name=None, filename=ok), DeclaringWorkload(declared)) == 0
    assert "refused" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (None, "error: -f {path}: No such file or directory"),
        ("a: [", "error: -f {path}: not YAML: "),
        ("kind: ConfigMap\napiVersion: v1\n", "error: -f {path}: no object of a kind aigate gates (CronJob, DaemonSet"),
    ],
    ids=["missing", "not-yaml", "no-gated-kind"],
)
def test_why_f_bad_input_is_one_line(
    content: str | None, error: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.yaml"
    if content is not None:
        path.write_text(content)
    monkeypatch.setattr("aigate.kubectl_plugin.connect", lambda *a: OneWorkload(PASSED))
    assert main(["why", "-f", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(error.format(path=path)) and err.count("\n") == 1, err
    assert main(["why", "w", "-f", str(path)]) == 2
    assert capsys.readouterr().err == "error: give the AIWorkload's NAME or -f FILE, not both\n"


def test_why_explains_a_drift_refusal_and_refuses(capsys: pytest.CaptureFixture[str]) -> None:
    drift = {
        "type": "Drift",
        "status": "True",
        "reason": "ModelChanged",
        "message": "path primary answered as sim-claude-v2, the evidence records sim-claude (canary at T); re-gating",
        "lastTransitionTime": "2026-12-06T12:00:00Z",
    }
    status: dict[str, Any] = {
        "decision": "PASS",
        "phase": "Testing",
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "True", "reason": "EvidencePassed"}, drift],
        "lastRun": {"job": "aigate-x-1", "namespace": "aigate-gates", "finishedAt": None},
    }
    assert cmd_why(argparse.Namespace(name="w"), OneWorkload(status)) == 1
    lines = capsys.readouterr().out.splitlines()
    i = lines.index(f"Drift: ModelChanged since 2026-12-06T12:00:00Z: {drift['message']}")
    assert lines[i + 1].startswith("  the evidence no longer describes what answers: new rollouts are refused")
    assert lines[i + 2] == "  re-gate running: Job aigate-gates/aigate-x-1"
    calm = {**drift, "status": "False", "reason": "NoDrift", "message": "last canary at T: same model identities"}
    status["conditions"] = [status["conditions"][0], calm]
    status["lastRun"]["finishedAt"] = "2026-12-06T12:05:00Z"
    status["phase"] = "Passed"
    assert cmd_why(argparse.Namespace(name="w"), OneWorkload(status)) == 0
    assert "Canary: NoDrift: last canary at T: same model identities" in capsys.readouterr().out.splitlines()
