"""`aigate check` end to end against the simulator, a real HTTP server on loopback: each fault mode through
the fallback gate, every output format, and a planted API key that must appear nowhere."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from aigate.api.load import load_and_resolve
from aigate.measurements import FAULT_MODES
from aigate.pipeline import CheckOptions, run_check
from aigate.report.jsondoc import report_json_schema
from aigate.simulator.profile import SimProfile
from aigate.simulator.server import SimulatorServer
from factories import ROOT, sarif_schema_errors

CANARY = {"PRIMARY_KEY": "sk-ant-canary-0d9e8f7a6b5c", "FALLBACK_KEY": "sk-canary-1a2b3c4d5e6f"}
GOOD = '{"risk": "low", "summary": "nothing unusual in this case", "actions": []}'
PROSE = "This looks fine to me, probably low risk."

PROFILE = {
    "seed": 3,
    "models": {
        "sim-claude": {"provider": "anthropic", "latency": {"fixedMs": 10}, "responses": [{"content": GOOD}]},
        "sim-gpt": {"provider": "openai", "latency": {"fixedMs": 10}, "responses": [{"content": GOOD}]},
        "sim-gpt-prose": {"provider": "openai", "latency": {"fixedMs": 10}, "responses": [{"content": PROSE}]},
    },
}
SCHEMA = {
    "type": "object",
    "required": ["risk", "summary", "actions"],
    "properties": {"risk": {"enum": ["low", "medium", "high"]}, "actions": {"type": "array"}},
}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimProfile.model_validate(PROFILE)) as s:
        yield s


def workload(sim: SimulatorServer, fallback_model: str = "sim-gpt", repeats: int = 2) -> dict[str, Any]:
    price = {"inputPerMTokUSD": 1, "outputPerMTokUSD": 4}
    return {
        "apiVersion": "aigate.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": "claims-triage", "namespace": "claims"},
        "spec": {
            "owner": "claims-team",
            "models": [
                {
                    "name": "primary",
                    "role": "primary",
                    "provider": "anthropic",
                    "model": "sim-claude",
                    "endpoint": sim.url,
                    "credentials": {"env": "PRIMARY_KEY"},
                    "pricing": price,
                    "cloud": "aws",
                },
                {
                    "name": "fallback",
                    "role": "fallback",
                    "provider": "openai",
                    "model": fallback_model,
                    "endpoint": sim.url + "/v1",
                    "credentials": {"env": "FALLBACK_KEY"},
                    "pricing": price,
                    "cloud": "gcp",
                },
            ],
            "traffic": {"requestsPerDay": 5000, "peakRequestsPerSecond": 10, "maxTestConcurrency": 8},
            "budget": {"monthlyUSD": 500, "gateRunMaxUSD": 1},
            "slo": {"p95LatencyMs": 1500, "timeoutMs": 600, "maxErrorRate": 0.05, "minPassRate": 0.9},
            "fallback": {"retries": {"attempts": 1, "backoffMs": 10}, "safeStop": {"message": "Routed to a person."}},
            "tools": [{"name": "lookup_policy", "access": "read"}],
            "suite": {
                "repeats": repeats,
                "cases": [
                    {
                        "name": f"claim-{i}",
                        "messages": [{"role": "user", "content": f"Triage claim {i}."}],
                        "expect": {"jsonSchema": SCHEMA},
                    }
                    for i in range(3)
                ],
            },
        },
    }


async def check(sim: SimulatorServer, tmp_path: Path, doc: dict[str, Any]) -> Any:
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(doc))
    return await run_check(load_and_resolve(path), CheckOptions(environ=CANARY))


async def test_each_fault_mode_served_by_a_valid_fallback(sim: SimulatorServer, tmp_path: Path) -> None:
    a = await check(sim, tmp_path, workload(sim))
    fb = a.gate("fallback")
    assert fb.status == "PASS", fb.reason
    modes = fb.metrics["faultModes"]
    assert sorted(modes) == sorted(FAULT_MODES)
    for mode in FAULT_MODES:
        assert modes[mode]["cases"] == 3 and modes[mode]["valid"] == 3, (mode, modes[mode])
        assert modes[mode]["servedBy"] == {"model:fallback": 3}, (mode, modes[mode])
    # the injected timeout is the declared one: every timed-out case still ends within the 1,800 ms deadline
    assert modes["timeout"]["maxLatencyMs"] >= 600
    assert fb.metrics["deadlineMs"] == 1800
    assert a.gate("providerDependency").status == "PASS"


async def test_each_fault_mode_fails_when_the_fallback_breaks_the_schema(sim: SimulatorServer, tmp_path: Path) -> None:
    a = await check(sim, tmp_path, workload(sim, "sim-gpt-prose"))
    fb = a.gate("fallback")
    assert fb.status == "FAIL"
    assert fb.reason.startswith("Fallback: not validated (sim-gpt-prose: 0% of cases pass, JSON schema broken in 6/6)")
    for mode in FAULT_MODES:
        assert fb.metrics["faultModes"][mode]["valid"] == 0, mode
    assert (
        "Fault injection: 15/15 cases without a valid outcome (timeout 3/3, http_5xx 3/3, http_429 3/3, " in fb.reason
    )
    assert a.gate("providerDependency").reason == "Provider dependency: single provider: anthropic; single cloud: aws"


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "aigate"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


def test_cli_formats_exit_codes_and_no_key_anywhere(sim: SimulatorServer, tmp_path: Path) -> None:
    env = {**os.environ, **CANARY}
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump(workload(sim, repeats=20)))  # 60 samples per model: enough to judge a p95
    key_dir = tmp_path / "keys"
    assert run_cli("keygen", "--out", str(key_dir), env=env).returncode == 0
    outputs: dict[str, str] = {}
    for fmt in ("text", "json", "junit", "markdown", "sarif"):
        out = tmp_path / f"report.{fmt}"
        args = ["check", str(path), "--format", fmt, "--output", str(out)]
        if fmt == "json":
            args += ["--sign-key", str(key_dir / "aigate.key"), "--evidence-out", str(tmp_path / "evidence.json")]
        done = run_cli(*args, env=env)
        # the evidence gate needs a signature: only the signed run can pass
        assert done.returncode == (0 if fmt == "json" else 1), done.stderr
        outputs[fmt] = out.read_text()
        outputs[f"{fmt}.stderr"] = done.stderr
        outputs[f"{fmt}.stdout"] = done.stdout
    assert outputs["text"].startswith("AI Production Readiness: FAIL\n")
    assert "Evidence package: incomplete (unsigned)" in outputs["text"]
    doc = json.loads(outputs["json"])
    jsonschema.validate(doc, report_json_schema())
    assert doc["decision"] == "PASS" and doc["evidence"]["keyId"]
    root = ET.fromstring(outputs["junit"])
    assert root.get("tests") == str(6 + 3 * 2)
    assert outputs["markdown"].startswith("## AI Production Readiness: ❌ FAIL")
    sarif = json.loads(outputs["sarif"])
    assert sarif_schema_errors(sarif) == []
    evidence_results = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "evidence.incomplete"]
    assert evidence_results and evidence_results[0]["level"] == "error"
    where = evidence_results[0]["locations"][0]
    assert where["physicalLocation"]["artifactLocation"]["uri"] == path.as_posix()
    assert where["logicalLocations"][0]["fullyQualifiedName"] == "spec.evidence"
    assert "EU-AI-Act:Art.12" in evidence_results[0]["properties"]["standards"]
    verified = run_cli(
        "verify",
        str(tmp_path / "evidence.json"),
        "--key",
        str(key_dir / "aigate.pub"),
        "--workload",
        str(path),
        env=env,
    )
    assert verified.returncode == 0, verified.stderr
    outputs["evidence"] = (tmp_path / "evidence.json").read_text()
    outputs["evidence.payload"] = base64.b64decode(json.loads(outputs["evidence"])["payload"]).decode()
    assert '"predicateType":"https://aigate.dev/evidence/v1"' in outputs["evidence.payload"]
    for name, text in outputs.items():
        for key in CANARY.values():
            assert key not in text, f"API key in {name}"
