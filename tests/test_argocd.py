"""Argo CD: the AIWorkload health check, run in Argo CD's own Lua VM, and the example Application's sync waves.

The runner (hack/argocd-lua: gopher-lua at the version Argo CD pins, opening the libraries Argo CD opens) is
built by `bash hack/build-argocd-lua.sh`. Without it the Lua tests skip, except in CI (CI=true or
AIGATE_REQUIRE_CLUSTER=1), where a missing runner is a failure. The layout and sync-wave tests need nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from aigate.api.load import load_and_resolve
from aigate.gates.result import GateResult
from aigate.policy.conditions import (
    GATE_CONDITIONS,
    expired_condition,
    gate_conditions,
    merge_conditions,
    pending_conditions,
    ready_condition,
)

ROOT = Path(__file__).resolve().parent.parent
ARGOCD = ROOT / "deploy" / "argocd"
CHECK = ARGOCD / "resource_customizations" / "aigate.dev" / "AIWorkload"
SCRIPT = CHECK / "health.lua"
RUNNER_SRC = ROOT / "hack" / "argocd-lua"
NOW = datetime(2026, 11, 30, 9, 13, 51, tzinfo=UTC)
WAVE = "argocd.argoproj.io/sync-wave"
MODES = ["argocd-cm", "open-libs"]
"""argocd-cm: a customization in argocd-cm without useOpenLibs (base, table, package only); open-libs: as
Argo CD runs its built-in scripts and its own health tests. The check must answer the same in both."""


def _runner_path() -> Path:
    if os.environ.get("AIGATE_ARGOCD_LUA"):
        return Path(os.environ["AIGATE_ARGOCD_LUA"])
    gomod = (RUNNER_SRC / "go.mod").read_text()
    m = re.search(r"^require github\.com/yuin/gopher-lua (v[0-9.]+)$", gomod, re.M)
    assert m, f"no gopher-lua pin in {RUNNER_SRC / 'go.mod'}"
    digest = hashlib.sha256(b"".join((RUNNER_SRC / f).read_bytes() for f in ("go.mod", "go.sum", "main.go")))
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower(), "unknown")
    cache = Path(os.environ.get("AIGATE_CACHE_DIR") or Path.home() / ".cache" / "aigate")
    name = f"argocd-lua-{m.group(1)}-{digest.hexdigest()[:12]}-{platform.system().lower()}-{arch}"
    return cache / "bin" / name / "argocd-lua-health"


@pytest.fixture(scope="module")
def runner() -> Path:
    path = _runner_path()
    if os.access(path, os.X_OK):
        return path
    why = f"argocd-lua-health not found at {path} (build it: bash hack/build-argocd-lua.sh, or set AIGATE_ARGOCD_LUA)"
    if os.environ.get("AIGATE_REQUIRE_CLUSTER") == "1" or os.environ.get("CI") == "true":
        pytest.fail(f"{why}; CI must build it")
    pytest.skip(why)


def _health(runner: Path, objects: list[dict[str, Any]], mode: str, script: Path = SCRIPT) -> list[dict[str, str]]:
    args = [str(runner), *(["-open-libs"] if mode == "open-libs" else []), str(script)]
    done = subprocess.run(args, input=json.dumps(objects), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    out: list[dict[str, str]] = json.loads(done.stdout)
    assert len(out) == len(objects)
    return out


def _cases() -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = yaml.safe_load((CHECK / "health_test.yaml").read_text())["tests"]
    return tests


# ---- the health check in Argo CD's VM --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_every_case_of_health_test_yaml(runner: Path, mode: str) -> None:
    cases = _cases()
    objects = [yaml.safe_load((CHECK / c["inputPath"]).read_text()) for c in cases]
    got = _health(runner, objects, mode)
    for case, result in zip(cases, got, strict=True):
        assert result == case["healthStatus"], case["inputPath"]


def test_health_test_yaml_covers_each_case_in_argo_cds_layout() -> None:
    cases = _cases()
    paths = [c["inputPath"] for c in cases]
    on_disk = sorted(f"testdata/{p.name}" for p in (CHECK / "testdata").glob("*.yaml"))
    assert sorted(paths) == on_disk, "every testdata file has a case in health_test.yaml, and no case lacks its file"
    for c in cases:
        assert set(c) == {"healthStatus", "inputPath"}
        assert set(c["healthStatus"]) == {"status", "message"}
        # Argo CD's convention: the file name starts with the health it expects
        assert Path(c["inputPath"]).name.split("_")[0] == c["healthStatus"]["status"].lower(), c["inputPath"]
    assert {c["healthStatus"]["status"] for c in cases} == {"Progressing", "Degraded", "Healthy"}


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI's `nullable: true` is JSON Schema's null type; the rest of a structural schema reads the same."""
    if isinstance(node, dict):
        out = {k: _openapi_to_jsonschema(v) for k, v in node.items()}
        if out.get("nullable") and "type" in out:
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(node, list):
        return [_openapi_to_jsonschema(v) for v in node]
    return node


def test_testdata_is_what_the_api_server_stores() -> None:
    """Every case's status fits the CRD's status schema (crds/, generated from the models), and its object is
    an AIWorkload: the health check is tested on objects Argo CD can really see."""
    [crd] = _docs(ROOT / "crds" / "aiworkloads.aigate.dev.yaml")
    [version] = [v for v in crd["spec"]["versions"] if v.get("storage")]
    schema = _openapi_to_jsonschema(version["schema"]["openAPIV3Schema"]["properties"]["status"])
    validator = jsonschema.Draft7Validator(schema)
    for case in _cases():
        obj = yaml.safe_load((CHECK / case["inputPath"]).read_text())
        assert (obj["apiVersion"], obj["kind"]) == (f"aigate.dev/{version['name']}", "AIWorkload")
        errors = [
            f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj.get("status", {}))
        ]
        assert errors == [], case["inputPath"]


def test_the_check_names_the_conditions_the_operator_writes() -> None:
    """The Lua maps condition types to gate names by hand: it must be the operator's mapping, in its order."""
    pairs = re.findall(r'\{"(\w+Gate)", "(\w+)"\}', SCRIPT.read_text())
    assert pairs == [(cond, gate) for gate, cond in GATE_CONDITIONS.items()]


def _workload(generation: int, status: dict[str, Any] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "aigate.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": "w", "namespace": "team", "generation": generation},
        "spec": {"owner": "team"},
    }
    if status is not None:
        obj["status"] = status
    return obj


def _results(statuses: dict[str, str]) -> list[GateResult]:
    return [
        GateResult(gate=g, status=statuses.get(g, "PASS"), reason=f"{g} said {statuses.get(g, 'PASS')}")
        for g in GATE_CONDITIONS
    ]


def _judged(results: list[GateResult], decision: str, generation: int = 2) -> dict[str, Any]:
    """The status fields reconcile.write_results sets, from the operator's own condition builders."""
    expires = datetime(2026, 12, 30, tzinfo=UTC)
    conds = [*gate_conditions(results, generation, NOW), ready_condition(results, decision, expires, generation, NOW)]
    return {
        "observedGeneration": generation,
        "phase": "Passed" if decision == "PASS" else "Failed",
        "decision": decision,
        "conditions": merge_conditions([], conds),
    }


@pytest.mark.parametrize("mode", MODES)
def test_statuses_built_by_the_operator(runner: Path, mode: str) -> None:
    """Statuses made by policy/conditions.py, not by hand: a change of shape there breaks the check here."""
    failing = _results({"cost": "FAIL", "toolControl": "ERROR", "providerDependency": "ACCEPTED"})
    passing = _results({"providerDependency": "ACCEPTED"})
    running = {
        "observedGeneration": 2,
        "phase": "Testing",
        "conditions": pending_conditions("gate Job aigate-w-1 running", 2, NOW),
        "lastRun": {"job": "aigate-w-1", "startedAt": "2026-11-30T09:12:04Z", "finishedAt": None},
    }
    expired = _judged(_results({}), "PASS")
    expired["conditions"] = merge_conditions(expired["conditions"], [expired_condition("2026-11-30T09:00:00Z", 2, NOW)])
    objects = [
        _workload(2, _judged(failing, "FAIL")),
        _workload(2, _judged(passing, "PASS")),
        _workload(2, running),
        _workload(3, _judged(passing, "PASS")),
        _workload(2, expired),
    ]
    got = _health(runner, objects, mode)
    assert got[0] == {
        "status": "Degraded",
        "message": "Gates failed: cost, toolControl. cost: cost said FAIL; toolControl: toolControl said ERROR",
    }
    assert got[1] == {
        "status": "Healthy",
        "message": "all gates pass; evidence valid until 2026-12-30T00:00:00Z; risk accepted: providerDependency",
    }
    assert got[2] == {"status": "Progressing", "message": "Gate run in progress (Job aigate-w-1)"}
    assert got[3] == {
        "status": "Progressing",
        "message": "Waiting for the gates to judge generation 3 (status is of generation 2)",
    }
    assert got[4] == {"status": "Degraded", "message": "EvidenceExpired: evidence expired at 2026-11-30T09:00:00Z"}


# ---- the runner is Argo CD's VM, not a friendlier one ------------------------------------------------------------


def test_runner_is_gopher_lua_at_argo_cds_pin(runner: Path) -> None:
    pin = re.search(r"gopher-lua (v[0-9.]+)", (RUNNER_SRC / "go.mod").read_text())
    assert pin
    done = subprocess.run([str(runner), "-version"], capture_output=True, text=True, timeout=30, check=True)
    assert done.stdout.strip() == f"gopher-lua {pin.group(1)}"


@pytest.mark.parametrize(
    ("body", "argocd_cm", "open_libs"),
    [
        # the string and math libraries are closed to an argocd-cm customization, open with useOpenLibs
        (
            'return {status = "Healthy", message = string.upper("ok")}',
            "error",
            {"status": "Healthy", "message": "OK"},
        ),
        ('return {status = "Healthy", message = ("ok"):upper()}', "error", {"status": "Healthy", "message": "OK"}),
        (
            'return {status = "Healthy", message = tostring(math.floor(obj.n))}',
            "error",
            {"status": "Healthy", "message": "2"},
        ),
        # base and table are open in both
        (
            'return {status = "Healthy", message = table.concat({"a", tostring(obj.n)}, ",")}',
            {"status": "Healthy", "message": "a,2.5"},
            {"status": "Healthy", "message": "a,2.5"},
        ),
        # the clock is left out here: health follows from the object alone
        ('return {status = "Healthy", message = tostring(os.time())}', "error", "any"),
        # a status Argo CD does not know becomes Unknown, with Argo CD's message
        (
            'return {status = "Fine"}',
            {"status": "Unknown", "message": "Lua returned an invalid health status"},
            {"status": "Unknown", "message": "Lua returned an invalid health status"},
        ),
        ("return 1", "error", "error"),
    ],
)
def test_runner_opens_what_argo_cd_opens(
    runner: Path, tmp_path: Path, body: str, argocd_cm: Any, open_libs: Any
) -> None:
    script = tmp_path / "health.lua"
    script.write_text(body)
    for mode, want in (("argocd-cm", argocd_cm), ("open-libs", open_libs)):
        [got] = _health(runner, [{"n": 2.5}], mode, script)
        if want == "error":
            assert set(got) == {"error"} and got["error"], (mode, got)
        elif want != "any":
            assert got == want, mode


# ---- the example Application and its sync waves ------------------------------------------------------------------


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_example_application() -> None:
    [app] = _docs(ARGOCD / "application.yaml")
    assert (app["apiVersion"], app["kind"]) == ("argoproj.io/v1alpha1", "Application")
    spec = app["spec"]
    assert {"repoURL", "targetRevision", "path"} <= set(spec["source"])
    namespaces = {d["metadata"]["namespace"] for p in (ARGOCD / "example").glob("*.yaml") for d in _docs(p)}
    assert namespaces == {spec["destination"]["namespace"]}


def test_example_puts_aiworkloads_and_their_inputs_before_the_workloads_they_gate() -> None:
    objects = [d for p in sorted((ARGOCD / "example").glob("*.yaml")) for d in _docs(p)]
    wave = {(d["kind"], d["metadata"]["name"]): int(d["metadata"]["annotations"][WAVE]) for d in objects}
    workloads = {d["metadata"]["name"]: d for d in objects if d["kind"] == "AIWorkload"}
    gated = [d for d in objects if "aigate.dev/workload" in (d["metadata"].get("labels") or {})]
    assert workloads and gated
    for name in workloads:
        assert wave["AIWorkload", name] == -1
    for d in gated:
        target = d["metadata"]["labels"]["aigate.dev/workload"]
        assert target in workloads, f"{d['kind']} {d['metadata']['name']} names no AIWorkload of the example"
        assert wave[d["kind"], d["metadata"]["name"]] == 0 > wave["AIWorkload", target]
    # what the AIWorkload's spec references syncs with it, before the gates run
    resolved = load_and_resolve(ARGOCD / "example" / "aiworkload.yaml")
    for ref in resolved.workload.spec.prompts:
        assert ref.config_map_ref is not None
        assert wave["ConfigMap", ref.config_map_ref.name] == -1
    assert resolved.system_prompt
