"""What the reconciler does next for one AIWorkload, decided from facts it gathered: keep the evidence, start a
gate run, wait for one, collect a finished one, or mark the evidence expired.

The reconciler (`controller/reconcile.py`) gathers: the spec digest, the stored evidence's verification, the gate
Jobs. It applies what these functions return. Nothing here reads the API or the clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from aigate.policy.conditions import Reason, ready_reason

EvidenceState = Literal["valid", "expired", "stale", "missing", "invalid"]


def evidence_state(signed_digest: str | None, expires_at: datetime | None, digest: str, now: datetime) -> EvidenceState:
    """The stored evidence against the current spec: `signed_digest`/`expires_at` of evidence whose signature
    verified (None: there is none, or it did not verify - `missing`/`invalid` are the gatherer's to say)."""
    if signed_digest is None or expires_at is None:
        return "missing"
    if signed_digest != digest:
        return "stale"
    if expires_at <= now:
        return "expired"
    return "valid"


def keep_evidence(state: EvidenceState, regate_at: datetime | None, now: datetime, *, force: bool) -> bool:
    """Valid evidence stands (and status is re-synced from it) until the re-gate time, unless forced."""
    return state == "valid" and not force and (regate_at is None or now < regate_at)


@dataclass(frozen=True)
class Run:
    """A gate Job as the decision sees it."""

    name: str
    digest: str
    finished: bool


@dataclass(frozen=True)
class LastRun:
    """status.lastRun and the status fields a decision reads."""

    job: str | None
    finished: bool
    phase: str | None
    spec_digest: str | None
    job_uid: str | None = None
    namespace: str | None = None

    @staticmethod
    def of(status: Mapping[str, Any]) -> LastRun:
        last = status.get("lastRun") or {}
        return LastRun(
            job=last.get("job"),
            finished=bool(last.get("finishedAt")),
            phase=status.get("phase"),
            spec_digest=status.get("specDigest"),
            job_uid=last.get("jobUid"),
            namespace=last.get("namespace"),
        )


ActionKind = Literal["wait", "collect", "start"]


@dataclass(frozen=True)
class Action:
    """What to do: `stop` these running Jobs first (they test an older spec), then `kind`:
    wait (nothing to do; `why` says so), collect (`job` finished while nobody looked: take its result),
    start (a new run; `regate`: the evidence is still valid, so Ready stays; `mark_expired` first)."""

    kind: ActionKind
    why: str = ""
    stop: list[str] = field(default_factory=list)
    job: str | None = None
    regate: bool = False
    mark_expired: bool = False


def next_action(digest: str, state: EvidenceState, runs: Sequence[Run], last: LastRun, *, force: bool) -> Action:
    """After `keep_evidence` said no: the next step for the spec at `digest`."""
    running = [r for r in runs if not r.finished]
    stop = [r.name for r in running if r.digest != digest]
    if any(r.digest == digest for r in running):
        return Action("wait", "gate run in progress", stop)
    unprocessed = [r for r in runs if r.name == last.job and r.finished]
    if unprocessed and not last.finished:
        # the operator was down when this run finished: take its result rather than run again
        return Action("collect", stop=stop, job=unprocessed[0].name)
    if not force and last.spec_digest == digest and last.finished and last.phase == "Error":
        return Action("wait", "last run for this digest errored; waiting for a change", stop)
    return Action(
        "start",
        stop=stop,
        regate=state == "valid",
        mark_expired=state == "expired" and last.phase != "Testing",
    )


TickKind = Literal["collect", "wait", "reconcile"]


def tick_action(last: LastRun, job: Run | None, job_known: bool) -> TickKind:
    """The timer: pick up a run that finished while its event was missed. `job`: the Job of `last.job` (None when
    it is gone); `job_known`: whether there was one to look for (phase Testing, a job recorded, not finished)."""
    if job_known and job is not None:
        return "collect" if job.finished else "wait"
    return "reconcile"


def tick_needs_job(last: LastRun) -> bool:
    return last.phase == "Testing" and bool(last.job) and not last.finished


def expiry_due(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and expires_at <= now


def needs_expired_mark(conditions: list[dict[str, Any]]) -> bool:
    """Marking is idempotent: once Ready says EvidenceExpired there is nothing to add."""
    return ready_reason(conditions) != Reason.EVIDENCE_EXPIRED


@dataclass(frozen=True)
class RunRejection:
    """Why a finished Job's result is not taken. `forged`: the Job status names is not the one aigate made (the run
    ends in an error); otherwise the Job is simply not (or no longer) the run to take (nothing to do)."""

    why: str
    forged: bool = False


def run_result_problem(last: LastRun, job: str, namespace: str, uid: str, same_template: bool) -> RunRejection | None:
    """Whether a finished Job's result may be taken: only from the Job the operator created for the run status
    records (its name, namespace and uid; its pod template), and only once. A uid not yet recorded (the operator
    stopped between creating the Job and recording it) is adopted only with the operator's own template."""
    if last.job != job or (last.namespace is not None and last.namespace != namespace):
        return RunRejection("not the current run")
    if last.finished:
        return RunRejection("already processed")
    if last.job_uid is not None and last.job_uid != uid:
        why = f"Job {namespace}/{job} is not the one aigate created (uid {uid}, not {last.job_uid}): result ignored"
        return RunRejection(why, forged=True)
    if not same_template:
        why = f"Job {namespace}/{job} does not run what aigate created (its pod template differs): result ignored"
        return RunRejection(why, forged=True)
    return None


ALWAYS_EXCLUDED = ("kube-system",)


def excluded_because(namespace: str, operator_namespace: str, gate_namespace: str) -> str | None:
    """Why AIWorkloads in `namespace` are not gated, or None. The operator's namespace holds the signing key and the
    trusted evidence, the gate namespace the runs' credentials: a workload there could reach what no team may.
    The webhooks exclude the same namespaces (`webhook/configurations.py`)."""
    if namespace == operator_namespace:
        what = "aigate's own namespace (the signing key, the trusted evidence)"
    elif namespace == gate_namespace:
        what = "aigate's gate namespace (the gate runs and their credentials)"
    elif namespace in ALWAYS_EXCLUDED:
        what = "a system namespace"
    else:
        return None
    return f"namespace {namespace} is {what}: AIWorkloads there are not gated; create it in a team's namespace"


def invalid_unchanged(status: Mapping[str, Any], message: str) -> bool:
    """An invalid spec already reported with this very message: do not write status (or an Event) again."""
    return status.get("phase") == "Error" and any(c.get("message") == message for c in status.get("conditions") or [])
