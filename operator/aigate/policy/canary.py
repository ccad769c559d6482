"""The canary after launch, decided from facts the operator gathered: is one due, which suite cases it sends each
model path (rotating through the suite), may it spend, and what its measurements say against the signed evidence
(the Drift condition). Pure: nothing here reads the API or the clock; `controller/reconcile.py` gathers and applies.

The canary measures a few samples; it judges only what a few samples can decide: the model identity a path
answered with (one answer under another identity is enough) and the verdict of a case the evidence records as
passed on that path (a case that now fails its assertions). It does not judge p95 latency or rates: three samples
cannot decide them (docs/gates.md, "Few samples"); a case's own `expect.maxLatencyMs` is an assertion, and counts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from aigate.evidence.predicate import CaseRecord, EvidencePredicate, ModelIdentityRecord
from aigate.measurements import Measurements
from aigate.policy.conditions import condition
from aigate.times import rfc3339

DRIFT: Final = "Drift"
"""The condition type."""
HISTORY: Final = 10
"""Canaries the status keeps."""

DriftReason = Literal["NoDrift", "ModelChanged", "CanaryFailing", "CanaryError", "CanaryBudgetSpent"]
DRIFTING: Final[frozenset[str]] = frozenset({"ModelChanged", "CanaryFailing"})
"""The reasons that are drift: the evidence no longer describes the workload, a re-gate starts at once."""


@dataclass(frozen=True)
class CanaryFacts:
    """What the operator gathered for one workload."""

    interval: timedelta | None
    """`spec.monitoring.canary.every` under the policy in force (`governance.canary_interval`); None: off."""
    cases_per_path: int
    suite: Sequence[str]
    """The suite's case names, in order."""
    evidence_valid: bool
    """Passing, verified evidence for the spec as it is now."""
    evidence_issued_at: datetime | None
    gate_run_in_flight: bool
    canary_in_flight: bool
    last_canary_at: datetime | None
    next_case: int
    spent_day: str | None
    spent_usd: float
    cap_usd: float
    drifting: bool = False
    """A drift already stands (a re-gate is on its way): no canary until it passes."""


@dataclass(frozen=True)
class CanaryPlan:
    """`due`: start a canary now with `cases`, spending at most `budget_usd`; else `why` says what it waits for, and
    `due_at` when it is next due (None: not on a schedule). `budget_spent`: it was due, the day's cap stops it."""

    due: bool
    why: str
    cases: tuple[str, ...] = ()
    next_case: int = 0
    budget_usd: float = 0.0
    due_at: datetime | None = None
    budget_spent: bool = False


def day_of(now: datetime) -> str:
    return now.strftime("%Y-%m-%d")


def spent_today(day: str | None, spent: float, now: datetime) -> float:
    """What the canaries spent in `now`'s UTC day: the record of another day counts nothing."""
    return spent if day == day_of(now) else 0.0


def rotation(suite: Sequence[str], start: int, count: int) -> tuple[tuple[str, ...], int]:
    """`count` cases from `start`, wrapping around the suite, and where the next canary starts: successive
    canaries walk through the whole suite."""
    if not suite:
        return (), 0
    n = len(suite)
    first = start % n
    picked = tuple(suite[(first + i) % n] for i in range(min(count, n)))
    return picked, (first + len(picked)) % n


def canary_plan(f: CanaryFacts, now: datetime) -> CanaryPlan:
    """Whether a canary is due now, and what it sends."""
    if f.interval is None:
        return CanaryPlan(False, "canary off (spec.monitoring.canary.every 0)")
    if not f.evidence_valid:
        return CanaryPlan(False, "no valid passing evidence to compare with")
    if f.drifting:
        return CanaryPlan(False, "drift stands; the re-gate decides")
    if f.gate_run_in_flight:
        return CanaryPlan(False, "a gate run is in flight")
    if f.canary_in_flight:
        return CanaryPlan(False, "a canary is in flight")
    if not f.suite:
        return CanaryPlan(False, "the suite has no cases")
    since = max((t for t in (f.last_canary_at, f.evidence_issued_at) if t is not None), default=None)
    due_at = since + f.interval if since is not None else now
    if now < due_at:
        return CanaryPlan(False, f"next canary at {rfc3339(due_at)}", due_at=due_at)
    left = f.cap_usd - spent_today(f.spent_day, f.spent_usd, now)
    if left <= 0:
        why = f"budget.canaryMaxUSDPerDay ${f.cap_usd:g} spent today; the next canary waits for the next UTC day"
        return CanaryPlan(False, why, due_at=due_at, budget_spent=True)
    cases, next_case = rotation(f.suite, f.next_case, f.cases_per_path)
    return CanaryPlan(True, "canary due", cases, next_case, round(left, 6), due_at)


# ---- judging ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Drift:
    """What a canary found: the Drift condition's status and reason, and a message naming what changed."""

    status: bool | None
    reason: DriftReason
    message: str
    changed: tuple[tuple[str, str, str], ...] = ()
    """ModelChanged: (path, what the evidence records, what answered)."""
    failing: tuple[tuple[str, str], ...] = ()
    """CanaryFailing: (path, case)."""

    @property
    def drifting(self) -> bool:
        return self.reason in DRIFTING


def _typed(items: Sequence[Any], kind: type[Any]) -> list[Any]:
    return [i for i in items if isinstance(i, kind)]


def recorded_identities(evidence: EvidencePredicate) -> dict[str, set[str]]:
    """Per model path, the model identities the evidence records it answered with."""
    out: dict[str, set[str]] = {}
    for rec in _typed(evidence.model_identities, ModelIdentityRecord):
        out.setdefault(rec.path, set()).update(a.model for a in rec.answered if a.model)
    return out


def passed_in_evidence(evidence: EvidencePredicate) -> set[tuple[str, str]]:
    """(path, case) pairs that passed every repeat in the evidence."""
    return {(c.model, c.case) for c in _typed(evidence.cases, CaseRecord) if c.runs > 0 and c.passed == c.runs}


def judge_canary(measured: Measurements, evidence: EvidencePredicate, at: datetime, cap_usd: float = 0.0) -> Drift:
    """The canary's measurements against the evidence. ModelChanged before CanaryFailing (a new model explains
    failing cases); CanaryError when a path gave no answer at all (nothing to compare: not a drift). A canary the
    day's budget stopped judges what it measured; one it stopped before any request is CanaryBudgetSpent."""
    identities = recorded_identities(evidence)
    passed = passed_in_evidence(evidence)
    changed: list[tuple[str, str, str]] = []
    failing: list[tuple[str, str]] = []
    unreachable: list[str] = []
    if measured.budget_exhausted and not any(mm.runs for mm in measured.models.values()):
        why = f"what is left of budget.canaryMaxUSDPerDay ${cap_usd:g} today covers no request"
        return Drift(None, "CanaryBudgetSpent", f"canary at {rfc3339(at)} stopped before its first request: {why}")
    for path, mm in sorted(measured.models.items()):
        if not mm.runs and measured.budget_exhausted:
            continue  # the budget stopped the canary before this path: nothing to say of it
        answered = [r for r in mm.runs if r.ok]
        if not answered:
            errors = sorted({f"{r.error}: {r.error_detail}".rstrip(": ") for r in mm.runs if r.error})
            unreachable.append(f"{path} ({'; '.join(errors) or 'no runs'})")
            continue
        known = identities.get(path, set())
        new = sorted({i.model for i in mm.identities if i.model and i.model not in known})
        new += sorted({r.identity.model for r in answered if r.identity and r.identity.model} - known - set(new))
        if known and new:
            changed.append((path, ", ".join(sorted(known)), ", ".join(new)))
        for r in answered:
            if not r.passed and (path, r.case) in passed and (path, r.case) not in failing:
                failing.append((path, r.case))
    when = rfc3339(at)
    if changed:
        text = "; ".join(f"path {p} answered as {new}, the evidence records {old}" for p, old, new in changed)
        return Drift(True, "ModelChanged", f"{text} (canary at {when}); re-gating", changed=tuple(changed))
    if failing:
        text = ", ".join(f"{c} on {p}" for p, c in failing)
        return Drift(
            True,
            "CanaryFailing",
            f"cases that passed in the evidence now fail: {text} (canary at {when}); re-gating",
            failing=tuple(failing),
        )
    if unreachable:
        return Drift(None, "CanaryError", f"canary at {when} could not measure {', '.join(unreachable)}; not a drift")
    return Drift(False, "NoDrift", f"last canary at {when}: same model identities, cases pass")


def canary_error(message: str, at: datetime) -> Drift:
    """A canary that could not run (no result, a Job that failed): not a drift, not a refusal."""
    return Drift(None, "CanaryError", f"canary at {rfc3339(at)} could not run: {message}")


def budget_spent(cap_usd: float, at: datetime) -> Drift:
    return Drift(
        None,
        "CanaryBudgetSpent",
        f"canary due at {rfc3339(at)} not started: budget.canaryMaxUSDPerDay ${cap_usd:g} spent today",
    )


def drift_condition(
    drift: Drift, previous: Mapping[str, Any] | None, generation: int | None, now: datetime
) -> dict[str, Any]:
    """The Drift condition. A canary that could not run (CanaryError, the day's budget spent) leaves a standing
    drift as it was: only a passing re-gate clears it (`regate_passed`)."""
    if drift.status is None and previous is not None and previous.get("reason") in DRIFTING:
        return dict(previous)
    status = drift.status if drift.status is not None else False
    return condition(DRIFT, status, drift.reason, drift.message, generation, now)


def regate_passed(at: datetime, generation: int | None, now: datetime) -> dict[str, Any]:
    """Drift False after a passing gate run: the new evidence records what answers now."""
    when = rfc3339(at)
    return condition(
        DRIFT, False, "NoDrift", f"gate run passed at {when}; evidence records what answers now", generation, now
    )


@dataclass(frozen=True)
class Spend:
    """The day's canary spend after one canary."""

    day: str
    spent_usd: float
    over: bool = field(default=False)


def add_spend(day: str | None, spent: float, run_usd: float, cap_usd: float, now: datetime) -> Spend:
    total = round(spent_today(day, spent, now) + max(0.0, run_usd), 6)
    return Spend(day_of(now), total, total >= cap_usd)


# ---- the record admission reads -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftRecord:
    """A drift as the operator records it on the trusted evidence ConfigMap (the operator's namespace, where no
    tenant writes), bound to the envelope it was found against: a new envelope (a re-gate's) leaves it behind."""

    reason: str
    message: str
    since: str
    envelope: str
    """sha256 of the envelope as stored."""

    def to_json(self) -> str:
        return json.dumps(
            {"reason": self.reason, "message": self.message, "since": self.since, "envelope": self.envelope},
            separators=(",", ":"),
            sort_keys=True,
        )


def envelope_sha(envelope: str) -> str:
    return "sha256:" + hashlib.sha256(envelope.encode()).hexdigest()


def drift_record(drift: Drift, envelope: str, at: datetime) -> DriftRecord:
    return DriftRecord(drift.reason, drift.message, rfc3339(at), envelope_sha(envelope))


def standing_drift(annotation: str | None, envelope: str | None) -> DriftRecord | None:
    """The drift that stands against this envelope: recorded, a drifting reason, and for this very envelope.
    Anything else (none, malformed, another envelope's) is no drift: the record only ever refuses more."""
    if not annotation or envelope is None:
        return None
    try:
        doc = json.loads(annotation)
    except json.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or doc.get("reason") not in DRIFTING or doc.get("envelope") != envelope_sha(envelope):
        return None
    return DriftRecord(str(doc["reason"]), str(doc.get("message", "")), str(doc.get("since", "")), doc["envelope"])
