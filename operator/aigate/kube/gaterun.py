"""What a gate Job and the operator hand each other through the result ConfigMap: the result document (one JSON
object under `names.RESULT_KEY`, bounded to `MAX_RESULT_BYTES`) and, while the run goes, the progress annotation.

The Job (`aigate.rungates`) writes both; the operator (`aigate.controller.reconcile`) reads them. Each side imports
this module and not the other's: the operator never loads the measuring stack, the Job never loads the operator.
The annotation is written by the gate pod, not by the operator, so everything read from it is checked, cut and
redacted here (`progress_status`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from aigate.api.errors import format_validation_error
from aigate.kube import names
from aigate.measurements import Measurements
from aigate.redact import redacted_line
from aigate.times import rfc3339

Outcome = Literal["measured", "stale", "error"]

MAX_RESULT_BYTES = 900 * 1024
"""Below the ConfigMap limit (1 MiB for the whole object), with room for metadata."""
TEXT_LIMIT = 2000
"""Characters of each answer kept in the result; the assertions were already evaluated on the full text."""
PROGRESS_ANNOTATION = "aigate.dev/progress"
"""On the result ConfigMap, while the run goes: JSON {phase, done, total, at}."""
PHASE_LIMIT = 80


class ResultError(ValueError):
    """The result ConfigMap does not hold a well-formed gate run result."""


class GateRunResult(BaseModel):
    """What a gate Job writes under `names.RESULT_KEY` (camelCase JSON; `measurements` is Measurements JSON)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    run_id: str
    spec_digest: str
    """The digest the Job was started for (--spec-digest)."""
    observed_digest: str | None = None
    """The digest the Job computed from the API's current spec; differs from spec_digest when stale."""
    job: str | None = None
    started_at: datetime
    finished_at: datetime
    outcome: Outcome
    error: str | None = None
    """One line, secrets redacted; set exactly when outcome is not 'measured'."""
    text_limit: int | None = None
    """Characters kept of each CaseRun.text (0: texts dropped to fit); None when nothing was measured."""
    measurements: Measurements | None = None

    @model_validator(mode="after")
    def _consistent(self) -> GateRunResult:
        if self.outcome == "measured":
            if self.measurements is None:
                raise ValueError("outcome 'measured' without measurements")
            if self.error:
                raise ValueError("outcome 'measured' with an error")
        elif not self.error:
            raise ValueError(f"outcome {self.outcome!r} without an error message")
        return self

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)


def read_result(
    configmap: Mapping[str, Any], *, run_id: str | None = None, spec_digest: str | None = None
) -> GateRunResult:
    """Parse the result ConfigMap (a dict as the API returns it); with RUN_ID / SPEC_DIGEST also check it is the
    result of that run. Raises ResultError saying what is wrong."""
    meta = configmap.get("metadata") or {}
    where = f"ConfigMap {meta.get('namespace', '?')}/{meta.get('name', '?')}"
    data = configmap.get("data") or {}
    raw = data.get(names.RESULT_KEY)
    if raw is None:
        raise ResultError(f"{where} has no {names.RESULT_KEY} (the gate Job has not written its result)")
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, TypeError) as e:
        raise ResultError(f"{where} {names.RESULT_KEY} is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ResultError(f"{where} {names.RESULT_KEY} must be a JSON object")
    try:
        result = GateRunResult.model_validate(doc)
    except ValidationError as e:
        raise ResultError(
            f"{where} {names.RESULT_KEY} is malformed: " + "; ".join(format_validation_error(e))
        ) from None
    if run_id is not None and result.run_id != run_id:
        raise ResultError(f"{where} holds the result of run {result.run_id!r}, not {run_id!r}")
    if spec_digest is not None and result.spec_digest != spec_digest:
        raise ResultError(f"{where} holds a result for {result.spec_digest}, not {spec_digest}")
    return result


class ReportedProgress(BaseModel):
    """What a gate pod writes under `PROGRESS_ANNOTATION`."""

    model_config = ConfigDict(extra="ignore")

    phase: str
    done: int | None = None
    total: int | None = None
    at: datetime | None = None


def progress_status(raw: str | None, now: datetime) -> dict[str, Any] | None:
    """`status.progress` (RunProgress JSON) from a progress annotation; None when there is none or it does not
    parse (progress is informational: a bad one is dropped, never an error). Figures are checked, the phase is cut
    and redacted: the annotation is written by the gate pod, not by the operator."""
    if not raw:
        return None
    try:
        reported = ReportedProgress.model_validate_json(raw)
    except ValidationError:
        return None
    phase = redacted_line(reported.phase)[:PHASE_LIMIT] or "running"
    done = reported.done if reported.done is not None and reported.done >= 0 else None
    total = reported.total if reported.total is not None and reported.total > 0 else None
    if done is not None and total is not None:
        done = min(done, total)
        message = f"{done}/{total} cases ({phase})"
    else:
        message = phase
    return {"phase": phase, "done": done, "total": total, "message": message, "updatedAt": rfc3339(now)}


def bound_result(result: GateRunResult, limit: int = MAX_RESULT_BYTES) -> tuple[GateRunResult, str]:
    """The result and its JSON within LIMIT bytes: answer texts cut to TEXT_LIMIT, then dropped; else an error."""
    m = result.measurements
    if m is None:
        return result, result.to_json()
    size = 0
    for keep in (TEXT_LIMIT, 0):
        trimmed = m.model_copy(deep=True)
        for mm in trimmed.models.values():
            for run in mm.runs:
                run.text = run.text[:keep]
        bounded = result.model_copy(update={"measurements": trimmed, "text_limit": keep})
        text = bounded.to_json()
        size = len(text.encode())
        if size <= limit:
            return bounded, text
    failed = result.model_copy(
        update={
            "outcome": "error",
            "measurements": None,
            "text_limit": None,
            "error": f"the measurements do not fit in a ConfigMap ({size} bytes without answer texts, limit {limit})",
        }
    )
    return failed, failed.to_json()
