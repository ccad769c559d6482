"""Progress of a gate run as the gate pod reports it and the operator shows it in `status.progress`: the plan the
figures count against (checked against a real run on the simulator), the reporter's write-when-changed, and the
operator's reading of what a pod wrote (bounded, redacted, never an error). tests/cluster/test_operator.py watches
it on the real node."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aigate.api.crd import PRINTER_COLUMNS
from aigate.api.models import AIWorkloadStatus
from aigate.kube.gaterun import PHASE_LIMIT, progress_status
from aigate.probes.runner import RunOptions, run_workload
from aigate.redact import register_secret
from aigate.rungates import ProgressReporter, planned_cases
from factories import example_doc, resolved_from
from probes_support import CANARY, CASES, keys, model, pricing, sim_model, simulator, workload

NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)


def test_the_plan_counts_every_model_repeat_and_fault_mode() -> None:
    resolved = resolved_from(example_doc())
    spec = resolved.workload.spec
    assert (len(spec.models), spec.suite.repeats, len(resolved.cases), spec.primary.stream) == (2, 8, 8, False)
    # 2 models x 8 repeats x 8 cases, and the 8 cases once per fault mode (5 without streaming)
    assert planned_cases(resolved) == 128 + 40
    spec.models[0].stream = True  # a streaming primary is also tried with a stalled stream
    assert planned_cases(resolved) == 128 + 48
    assert planned_cases(resolved, RunOptions(run_faults=False)) == 128


async def test_a_real_run_reports_its_plan_done() -> None:
    """The reporter fed by the runner's own lines ends at the plan: the plan and the runner agree."""
    written: list[dict[str, Any]] = []
    with simulator({"claude-sonnet-4-5": sim_model("anthropic"), "gpt-4.1-mini": sim_model("openai")}) as url:
        resolved = workload(
            [
                model("primary", "anthropic", "claude-sonnet-4-5", url, pricing=pricing(1, 1)),
                model("backup", "openai-compatible", "gpt-4.1-mini", url, role="fallback", pricing=pricing(1, 1)),
            ],
            cases=CASES,
            repeats=3,
            fallback={"retries": {"attempts": 1, "backoffMs": 1}},
            slo={"p95LatencyMs": 200, "timeoutMs": 150},
        )
        planned = planned_cases(resolved)
        reporter = ProgressReporter(lambda doc: written.append(json.loads(doc)), planned)
        phases: list[str] = []

        def line(text: str) -> None:
            reporter(text)
            reporter.flush()
            phases.append(written[-1]["phase"])

        await run_workload(
            resolved, keys(resolved), options=RunOptions(fault_retry_after_s=0.01, progress_every_s=0), progress=line
        )
    assert planned == 2 * 3 * 2 + 5 * 2
    assert (written[-1]["done"], written[-1]["total"]) == (planned, planned)
    assert phases[0] == "baseline primary" and phases[-1] == "fallback malformed_body"
    assert "baseline backup" in phases and "fallback timeout" in phases
    dones = [w["done"] for w in written]
    assert dones == sorted(dones), "the count over the whole run never goes back"


def test_the_reporter_writes_only_what_changed() -> None:
    written: list[str] = []
    r = ProgressReporter(written.append, 20)
    r.flush()
    assert [json.loads(w)["phase"] for w in written] == ["starting"]
    r.flush()
    assert len(written) == 1, "nothing changed: no write"
    r("reading input ConfigMap gates/x")  # not a counting line: no change
    r.flush()
    assert len(written) == 1
    r("baseline primary: 4/10 cases, 2.0s")
    r("baseline primary: 10/10 cases, 4.1s")
    r("baseline backup: 3/10 cases, 1.0s")
    r.flush()
    doc = json.loads(written[-1])
    assert (len(written), doc["phase"], doc["done"], doc["total"]) == (2, "baseline backup", 13, 20)
    r("MCP server tools: listing tools")
    r.flush()
    assert json.loads(written[-1])["phase"] == "MCP server tools"
    # a phase the plan did not foresee raises the total rather than show more done than planned
    r("fallback stream_stall: 12/12 cases, 3.0s")
    r.flush()
    doc = json.loads(written[-1])
    assert (doc["done"], doc["total"]) == (25, 32)


def test_a_failing_write_is_said_once_and_never_stops_the_run(capsys: Any) -> None:
    def refused(_: str) -> None:
        raise RuntimeError("writing progress to ConfigMap gates/x: HTTP 403 Forbidden")

    r = ProgressReporter(refused, 4)
    r.flush()
    r("baseline primary: 1/4 cases, 0.1s")
    r.flush()
    err = capsys.readouterr().err
    assert err == "aigate run-gates: progress not reported: writing progress to ConfigMap gates/x: HTTP 403 Forbidden\n"


def test_the_reporter_thread_stops_on_close() -> None:
    written: list[str] = []
    r = ProgressReporter(written.append, 4, every_s=3600).start()
    r.close()
    assert [json.loads(w)["phase"] for w in written] == ["starting"], "the first report goes out at once"


def test_status_progress_from_what_the_pod_wrote() -> None:
    raw = json.dumps({"phase": "baseline primary", "done": 37, "total": 124, "at": "2026-12-01T03:59:58Z"})
    got = progress_status(raw, NOW)
    assert got == {
        "phase": "baseline primary",
        "done": 37,
        "total": 124,
        "message": "37/124 cases (baseline primary)",
        "updatedAt": "2026-12-01T04:00:00Z",
    }
    status = AIWorkloadStatus.model_validate({"progress": got})
    assert status.progress is not None and status.progress.message == "37/124 cases (baseline primary)"


def test_what_a_pod_wrote_is_bounded_and_never_an_error() -> None:
    for raw in (None, "", "not json", "[]", '{"done": 3}', '{"phase": "x", "done": "many"}'):
        assert progress_status(raw, NOW) is None, raw
    over = progress_status(json.dumps({"phase": "p", "done": 90, "total": 60}), NOW)
    assert over is not None and (over["done"], over["message"]) == (60, "60/60 cases (p)")
    odd = progress_status(json.dumps({"phase": "  \n", "done": -1, "total": 0}), NOW)
    assert odd is not None and (odd["phase"], odd["done"], odd["total"], odd["message"]) == (
        "running",
        None,
        None,
        "running",
    )
    register_secret(CANARY)
    long = progress_status(json.dumps({"phase": f"baseline {CANARY} " + "x" * 500, "done": 1, "total": 2}), NOW)
    assert long is not None and CANARY not in json.dumps(long)
    assert len(long["phase"]) == PHASE_LIMIT
    AIWorkloadStatus.model_validate({"progress": long})  # within the API type's bounds


def test_kubectl_get_wide_shows_progress() -> None:
    column = next(c for c in PRINTER_COLUMNS if c["name"] == "Progress")
    assert (column["jsonPath"], column["priority"]) == (".status.progress.message", 1)
