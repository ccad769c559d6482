"""What the operator does for one AIWorkload: gather its state (spec digest, stored evidence, gate Jobs), ask
`aigate.policy.lifecycle` what to do, and apply that (start a run, collect a finished one, write status).
Synchronous (the kopf handlers run it in a worker thread) and free of kopf, so the flow reads top to bottom."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError

from aigate.api.digest import spec_digest
from aigate.api.errors import WorkloadError
from aigate.api.load import ResolvedWorkload, configmap_refs, resolve, workload_from_api
from aigate.api.models import (
    DEFAULT_CANARY_MAX_USD,
    AIWorkload,
    Canary,
    CanaryRecord,
    CanaryStatus,
    StatusSummary,
)
from aigate.api.policy import AIGatePolicy
from aigate.controller import jobs
from aigate.controller.jobs import GateRun, owner_reference
from aigate.evidence import EvidenceError, EvidencePredicate, VerifiedEvidence, verify_evidence
from aigate.evidence.predicate import MeasurementSummary
from aigate.gates.result import GateResult, decide
from aigate.kube import names
from aigate.kube.client import JSON, Kube
from aigate.kube.config import OperatorConfig
from aigate.kube.gaterun import PROGRESS_ANNOTATION, progress_status, read_result
from aigate.pipeline import judge, sign_predicate
from aigate.policy.canary import (
    DRIFT,
    DRIFTING,
    HISTORY,
    CanaryFacts,
    Drift,
    add_spend,
    budget_spent,
    canary_error,
    canary_plan,
    day_of,
    drift_condition,
    drift_record,
    judge_canary,
    regate_passed,
)
from aigate.policy.conditions import (
    Reason,
    expired_condition,
    gate_conditions,
    merge_conditions,
    pending_conditions,
    problem_condition,
    ready_condition,
)
from aigate.policy.governance import EffectivePolicy, canary_interval, effective
from aigate.policy.lifecycle import (
    EvidenceState,
    LastRun,
    Run,
    evidence_state,
    excluded_because,
    expiry_due,
    invalid_unchanged,
    keep_evidence,
    needs_expired_mark,
    next_action,
    run_result_problem,
    tick_action,
    tick_needs_job,
)
from aigate.probes.rbac import probe_service_account
from aigate.redact import redact
from aigate.times import parse_rfc3339, rfc3339, utcnow

log = logging.getLogger("aigate.operator")


@dataclass(frozen=True)
class Signer:
    key: Any
    key_id: str
    public_key: Any


def load_resolved(kube: Kube, body: JSON) -> ResolvedWorkload:
    """The workload with its ConfigMaps read through the API; WorkloadError names what is missing."""
    workload = workload_from_api(body)
    return resolve(workload, kube.configmap_lookup(workload.metadata.namespace))


def stored_evidence(
    kube: Kube, ns: str, name: str, digest: str, signer: Signer, now: datetime
) -> tuple[EvidenceState, VerifiedEvidence | None]:
    """The trusted evidence (operator namespace, per workload uid) and its state against `digest`
    (`aigate.policy.lifecycle.evidence_state`). The copy beside the workload is never read: a tenant may write it."""
    cm = kube.get_configmap(ns, names.trusted_evidence(name))
    raw = ((cm or {}).get("data") or {}).get(names.EVIDENCE_KEY)
    if not raw:
        return "missing", None
    try:
        # decision FAIL is still evidence: of failure. Expiry and digest are judged by policy, not by the verifier.
        verified = verify_evidence(raw, signer.public_key, now=datetime(1970, 1, 2, tzinfo=UTC), require_pass=False)
    except EvidenceError:
        return "invalid", None
    return evidence_state(verified.spec_digest, verified.expires_at, digest, now), verified


def run_of(job: JSON) -> Run:
    meta = job["metadata"]
    digest = (meta.get("annotations") or {}).get(names.DIGEST_ANNOTATION, "")
    return Run(name=meta["name"], digest=digest, finished=job_finished(job))


def job_finished(job: JSON) -> bool:
    conds = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conds)


def job_succeeded(job: JSON) -> bool:
    conds = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Complete" and c.get("status") == "True" for c in conds)


class Reconciler:
    def __init__(self, kube: Kube, config: OperatorConfig, signer: Signer, metrics: Any = None) -> None:
        self.kube = kube
        self.config = config
        self.signer = signer
        self.metrics = metrics
        self._locks: dict[tuple[str, str], threading.RLock] = {}
        self._locks_guard = threading.Lock()

    @contextmanager
    def _one_at_a_time(self, ns: str, name: str) -> Iterator[None]:
        """kopf runs the resume, Job-event and timer handlers of one workload concurrently (each in a worker
        thread); each decides from the status the other writes, so for one workload they take turns."""
        with self._locks_guard:
            lock = self._locks.setdefault((ns, name), threading.RLock())
        with lock:
            yield

    def _in_turn(self, body: JSON, step: Callable[[JSON], str]) -> str:
        """`step` on the workload as it is now: the handler's body may predate a status another handler has just
        written."""
        meta = body["metadata"]
        with self._one_at_a_time(meta["namespace"], meta["name"]):
            fresh = self.kube.get_workload(meta["namespace"], meta["name"])
            if fresh is None:
                return "workload gone"
            return step(fresh)

    def forget(self, ns: str, name: str) -> None:
        with self._locks_guard:
            self._locks.pop((ns, name), None)

    # ---- spec or references changed / operator resumed / timer -----------------------------------------------------
    def reconcile(self, body: JSON, *, force: bool = False) -> str:
        """Start a gate run when no valid evidence exists for the current spec digest; return what was done."""
        return self._in_turn(body, lambda fresh: self._reconcile(fresh, force=force))

    def _reconcile(self, body: JSON, *, force: bool = False) -> str:
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        now = utcnow()
        excluded = excluded_because(ns, self.config.namespace, self.config.gate_namespace)
        if excluded is not None:
            return self._excluded(body, excluded, now)
        try:
            resolved = load_resolved(self.kube, body)
        except WorkloadError as e:
            return self._invalid(body, e.message, now)
        digest = spec_digest(resolved)
        uid = meta.get("uid", "")
        state, verified = stored_evidence(self.kube, self.config.namespace, uid, digest, self.signer, now)
        regate_at = None
        if verified is not None:
            regate_at = verified.expires_at - resolved.workload.spec.evidence.regate_before_delta()
        status = body.get("status") or {}
        last = LastRun.of(status)
        in_flight = (status.get("lastRun") or {}).get("runId") if not last.finished else None
        canary_run = _canary_in_flight(status)
        if keep_evidence(state, regate_at, now, force=force):
            assert verified is not None
            self._sweep(uid, in_flight, canary_run)
            if self._sync_status_from_evidence(body, digest, verified, now):
                body = self.kube.get_workload(ns, name) or body
            return self._after_launch(body, resolved, digest, verified, now)
        gate_ns = self.config.gate_namespace
        found = self.kube.list_jobs(gate_ns, f"{jobs.workload_selector(uid)},{names.ROLE_LABEL}={names.GATE_JOB_ROLE}")
        action = next_action(digest, state, [run_of(j) for j in found], last, force=force)
        for stale in action.stop:
            self.kube.delete_job(gate_ns, stale)
            log.info("%s/%s: spec changed, replaced gate Job %s", ns, name, stale)
        self._sweep(uid, in_flight if action.kind != "start" else None, canary_run)
        if action.kind == "wait":
            return action.why
        if action.kind == "collect":
            return self._job_done(next(j for j in found if j["metadata"]["name"] == action.job))
        if action.mark_expired:
            self.mark_expired(body, verified.expires_at if verified else now)
        return self.start_run(body, resolved, digest, now, regate=action.regate)

    def tick(self, body: JSON) -> str:
        """The timer: pick up a finished run whose event was missed, and re-gate ahead of expiry."""
        return self._in_turn(body, self._tick)

    def _tick(self, body: JSON) -> str:
        meta = body["metadata"]
        status = body.get("status") or {}
        last = LastRun.of(status)
        job = None
        if tick_needs_job(last):
            assert last.job is not None
            job = self.kube.get_job(last.namespace or self.config.gate_namespace, last.job)
        step = tick_action(last, run_of(job) if job is not None else None, tick_needs_job(last))
        if step == "collect":
            assert job is not None
            return self._job_done(job)
        canary = (status.get("canary") or {}).get("run") or {}
        if canary.get("job") and not canary.get("finishedAt"):
            found = self.kube.get_job(canary.get("namespace") or self.config.gate_namespace, canary["job"])
            if found is None or job_finished(found):
                return self._canary_done(body, found, utcnow())
        if step == "wait":
            return "gate run in progress"
        expires = parse_rfc3339((status.get("evidence") or {}).get("expiresAt"))
        if expires is not None and expiry_due(expires, utcnow()):
            self.mark_expired(body, expires)
            body = self.kube.get_workload(meta["namespace"], meta["name"]) or body
        return self._reconcile(body)

    def start_run(
        self, body: JSON, resolved: ResolvedWorkload, digest: str, now: datetime, *, regate: bool = False
    ) -> str:
        """`regate`: the evidence is still valid, so Ready stays as it is while the new run goes."""
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        workload = resolved.workload
        run = GateRun.of(workload, self.config.gate_namespace, digest, uuid.uuid4().hex[:10])
        job = self._job_for(run, workload)
        generation = meta.get("generation")
        previous = (body.get("status") or {}).get("conditions") or []
        message = f"gate Job {run.gate_namespace}/{run.job} running for {digest[:19]}"
        last: JSON = {
            "job": run.job,
            "namespace": run.gate_namespace,
            "runId": run.run_id,
            "jobUid": None,
            "startedAt": rfc3339(now),
            "finishedAt": None,
            "spentUSD": None,
        }
        update: JSON = {
            "phase": "Testing",
            "specDigest": digest,
            "observedGeneration": generation,
            "lastRun": last,
            "progress": {
                "phase": "starting",
                "message": "gate Job created; waiting for its pod",
                "updatedAt": rfc3339(now),
            },
        }
        if not regate:
            update["conditions"] = merge_conditions(previous, pending_conditions(message, generation, now))
        # status first, then the Job: an operator stopped in between finds a run recorded whose Job does not
        # exist (and starts it again), never a Job that no status points to (which it could not tell from a
        # stale one, and would run a second time)
        self.kube.patch_status(ns, name, update)
        try:
            credentials = self._credentials(workload)
            configmaps = self._referenced(workload)
        except WorkloadError as e:
            self.cleanup_run(run)
            return self._run_error(self.kube.get_workload(ns, name) or body, e.message, now)
        for obj in jobs.run_rbac(run):
            self.kube.apply(obj)
        self.kube.apply(jobs.input_configmap(run, jobs.run_input(workload, configmaps)))
        self.kube.apply(jobs.result_configmap(run))
        self.kube.apply(jobs.credentials_secret(run, credentials))
        created = self.kube.create(job)
        # the uid is what a result is accepted from: a Job deleted and created again under this name is not this one
        self.kube.patch_status(ns, name, {"lastRun": {**last, "jobUid": created["metadata"]["uid"]}})
        self.kube.event(body, "Normal", "GateRunStarted", message)
        if self.metrics:
            self.metrics.run_started(ns, name)
        return f"started {run.job}"

    def _job_for(self, run: GateRun, workload: AIWorkload, *, canary: bool = False) -> JSON:
        """The Job the operator creates for `run`: also what a finished Job's template is compared with."""
        return jobs.gate_job(
            run,
            workload,
            image=self.config.gate_image,
            active_deadline_s=self.config.job_deadline_s,
            ttl_after_finished_s=self.config.job_ttl_s,
            backoff_limit=self.config.job_backoff_limit,
            command=list(self.config.gate_command),
            resources=self.config.job_resources,
            canary=canary,
        )

    def _credentials(self, workload: AIWorkload) -> dict[tuple[str, str], str]:
        """The Secret keys the workload names, read in its namespace; WorkloadError names one that is missing."""
        ns = workload.metadata.namespace
        out: dict[tuple[str, str], str] = {}
        for ref in jobs.secret_refs(workload):
            value = self.kube.get_secret_key(ns, ref.name, ref.key)
            if value is None:
                raise WorkloadError(f"Secret {ns}/{ref.name} has no key {ref.key!r} (or does not exist)")
            out[(ref.name, ref.key)] = value
        return out

    def _referenced(self, workload: AIWorkload) -> dict[str, dict[str, str]]:
        """The referenced ConfigMap keys, as the run's input carries them."""
        lookup = self.kube.configmap_lookup(workload.metadata.namespace)
        out: dict[str, dict[str, str]] = {}
        for ref in configmap_refs(workload):
            out.setdefault(ref.name, {})[ref.key] = lookup(ref)
        return out

    def cleanup_run(self, run: GateRun) -> None:
        """When a run ends, whatever its outcome: its Secret, input, result and RBAC go (the Secret first); the
        finished Job stays for people to read until its TTL, and can no longer act (its ServiceAccount is gone)."""
        self.kube.delete_labelled(run.gate_namespace, run.selector, jobs=False)

    def _sweep(self, uid: str, keep_run: str | None, keep_canary: str | None = None) -> None:
        """The same for any run of this workload other than `keep_run` and the canary in flight: left by a crash, a
        replaced run, a Job that disappeared while the operator was down."""
        gate_ns = self.config.gate_namespace
        for run_id in self.kube.labelled_runs(gate_ns, jobs.workload_selector(uid)):
            if run_id not in (keep_run, keep_canary):
                selector = f"{names.RUN_LABEL}={run_id},{jobs.workload_selector(uid)}"
                self.kube.delete_labelled(gate_ns, selector, jobs=False)

    def forget_workload(self, ns: str, name: str, uid: str) -> str:
        """The workload is being deleted (its finalizer): its runs in the gate namespace and its trusted evidence
        go with it, since no owner reference reaches across namespaces."""
        self.kube.delete_labelled(self.config.gate_namespace, jobs.workload_selector(uid))
        self.kube.delete_labelled_configmaps(self.config.namespace, jobs.workload_selector(uid))
        self.forget(ns, name)
        return "runs and trusted evidence deleted"

    def mark_expired(self, body: JSON, expires_at: datetime) -> None:
        status = body.get("status") or {}
        if not needs_expired_mark(status.get("conditions") or []):
            return
        meta = body["metadata"]
        now = utcnow()
        cond = expired_condition(rfc3339(expires_at), meta.get("generation"), now)
        self.kube.patch_status(
            meta["namespace"],
            meta["name"],
            {"conditions": merge_conditions(status.get("conditions") or [], [cond])},
        )
        self.kube.event(
            body, "Warning", Reason.EVIDENCE_EXPIRED, f"evidence expired at {rfc3339(expires_at)}; re-gating"
        )

    def _excluded(self, body: JSON, message: str, now: datetime) -> str:
        """Nothing is resolved, read or run for a workload in an excluded namespace; status says why, once."""
        status = body.get("status") or {}
        if invalid_unchanged(status, message):
            return "excluded (unchanged)"
        generation = body["metadata"].get("generation")
        cond = problem_condition(Reason.NAMESPACE_EXCLUDED, message, generation, now)
        update = {
            "phase": "Error",
            "observedGeneration": generation,
            "conditions": merge_conditions(status.get("conditions") or [], [cond]),
            "progress": None,
        }
        self.kube.patch_status(body["metadata"]["namespace"], body["metadata"]["name"], update)
        self.kube.event(body, "Warning", Reason.NAMESPACE_EXCLUDED, message)
        return "excluded"

    def _invalid(self, body: JSON, message: str, now: datetime) -> str:
        meta = body["metadata"]
        status = body.get("status") or {}
        generation = meta.get("generation")
        cond = problem_condition(Reason.INVALID_SPEC, redact(message), generation, now)
        if invalid_unchanged(status, cond["message"]):
            return "invalid (unchanged)"
        self.kube.patch_status(
            meta["namespace"],
            meta["name"],
            {
                "phase": "Error",
                "observedGeneration": generation,
                "conditions": merge_conditions(status.get("conditions") or [], [cond]),
                "progress": None,
            },
        )
        self.kube.event(body, "Warning", Reason.INVALID_SPEC, redact(message))
        return "invalid"

    def _sync_status_from_evidence(self, body: JSON, digest: str, verified: VerifiedEvidence, now: datetime) -> bool:
        """After a restart or a forged status: make status say what the signed evidence says. True: it wrote."""
        status = body.get("status") or {}
        ev = status.get("evidence") or {}
        phase = "Passed" if verified.decision == "PASS" else "Failed"
        if status.get("specDigest") == digest and ev.get("digest") == digest and status.get("phase") == phase:
            return False
        self.write_results(body, digest, verified.signed, now, resync=True)
        return True

    # ---- a gate Job reports progress ----------------------------------------------------------------------------
    def run_progress(self, configmap: JSON) -> str:
        """Copy the progress a gate pod wrote on its result ConfigMap into the workload's `status.progress`, when that
        ConfigMap is the current run's (gate namespace, workload uid, run id) and the run has not ended. For people
        only: nothing is judged from it. Rate: at most one status write per report, which the pod bounds."""
        meta = configmap.get("metadata") or {}
        if meta.get("namespace") != self.config.gate_namespace:
            return "not a gate run of aigate's (outside the gate namespace): ignored"
        ann = meta.get("annotations") or {}
        ns, name = ann.get(names.FOR_NAMESPACE_ANNOTATION, ""), ann.get(names.FOR_NAME_ANNOTATION, "")
        if not ns or not name:
            return "not a gate run's result: ignored"
        progress = progress_status(ann.get(PROGRESS_ANNOTATION), utcnow())
        if progress is None:
            return "no progress reported"
        with self._one_at_a_time(ns, name):
            body = self.kube.get_workload(ns, name)
            if body is None:
                return "workload gone"
            if (meta.get("labels") or {}).get(names.WORKLOAD_UID_LABEL) != body["metadata"].get("uid"):
                return "a run of another workload of that name: ignored"
            status = body.get("status") or {}
            last = status.get("lastRun") or {}
            if last.get("runId") != ann.get(names.RUN_ANNOTATION) or last.get("finishedAt"):
                return "not the current run"
            old = status.get("progress") or {}
            if all(old.get(k) == progress[k] for k in ("phase", "done", "total")):
                return "progress unchanged"
            self.kube.patch_status(ns, name, {"progress": progress})
            return f"progress {progress['message']}"

    # ---- a gate Job finished -----------------------------------------------------------------------------------
    def job_done(self, job: JSON) -> str:
        meta = job["metadata"]
        ann = meta.get("annotations") or {}
        ns, name = ann.get(names.FOR_NAMESPACE_ANNOTATION, ""), ann.get(names.FOR_NAME_ANNOTATION, "")
        if meta.get("namespace") != self.config.gate_namespace or not ns or not name:
            return "not a gate run of aigate's (outside the gate namespace): ignored"
        with self._one_at_a_time(ns, name):
            return self._job_done(job)

    def _job_done(self, job: JSON) -> str:
        meta = job["metadata"]
        if meta.get("namespace") != self.config.gate_namespace:
            return "not a gate run of aigate's (outside the gate namespace): ignored"
        ann = meta.get("annotations") or {}
        ns, name = ann.get(names.FOR_NAMESPACE_ANNOTATION, ""), ann.get(names.FOR_NAME_ANNOTATION, "")
        job_digest, run_id = ann.get(names.DIGEST_ANNOTATION, ""), ann.get(names.RUN_ANNOTATION, "")
        body = self.kube.get_workload(ns, name)
        if body is None:
            return "workload gone"
        uid = body["metadata"].get("uid", "")
        if (meta.get("labels") or {}).get(names.WORKLOAD_UID_LABEL) != uid:
            return "a run of another workload of that name: ignored"
        status = body.get("status") or {}
        last = status.get("lastRun") or {}
        if last.get("runId") != run_id:
            return "not the current run"
        now = utcnow()
        try:
            resolved = load_resolved(self.kube, body)
        except WorkloadError as e:
            return self._invalid(body, e.message, now)
        run = GateRun.of(resolved.workload, self.config.gate_namespace, job_digest, run_id)
        same = jobs.same_template(job, self._job_for(run, resolved.workload))
        problem = run_result_problem(LastRun.of(status), meta["name"], meta["namespace"], meta.get("uid", ""), same)
        if problem is not None and problem.forged:
            # the Job named in status is not the one aigate made: the run ends in an error, without its result
            self.cleanup_run(run)
            return self._run_error(body, problem.why, now)
        if problem is not None:
            return problem.why
        try:
            return self._take_result(body, resolved, run, job, now)
        finally:
            self.cleanup_run(run)

    def _take_result(self, body: JSON, resolved: ResolvedWorkload, run: GateRun, job: JSON, now: datetime) -> str:
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        last = (body.get("status") or {}).get("lastRun") or {}
        if self.metrics:
            started = parse_rfc3339(last.get("startedAt"))
            if started:
                self.metrics.job_finished(ns, name, (now - started).total_seconds(), job_succeeded(job))
        digest = spec_digest(resolved)
        if digest != run.digest:
            return "spec changed since the run started; a new run replaces it"
        cm = self.kube.get_configmap(run.gate_namespace, names.run_result(run.job))
        try:
            result = read_result(cm or {})
        except (ValueError, WorkloadError) as e:
            return self._run_error(body, f"gate Job {run.job} left no readable result: {e}", now)
        if result.run_id != run.run_id or result.spec_digest != run.digest:
            return self._run_error(body, f"gate result does not come from Job {run.job} (run {run.run_id})", now)
        if result.outcome != "measured" or result.measurements is None or not job_succeeded(job):
            return self._run_error(body, f"gate Job {run.job} failed: {result.error or 'no measurements'}", now)
        m = result.measurements
        sa = resolved.workload.spec.service_account_name
        if sa:
            m.rbac = probe_service_account(self.kube.api, ns, sa)
        policy = self.governing(ns)
        every = canary_interval(resolved.workload, policy)
        results, predicate, digest = judge(resolved, m, now=now, key_id=self.signer.key_id, policy=policy)
        envelope = json.dumps(sign_predicate(resolved, digest, predicate, self.signer.key), separators=(",", ":"))
        self.kube.apply(self._trusted_evidence(resolved.workload, digest, envelope))
        self.kube.apply(self._evidence_copy(resolved.workload, digest, envelope))
        self.write_results(body, digest, predicate, now, job=run.job, results=results, canary_every=every)
        decision = decide(results)
        failed = [r for r in results if not r.ok]
        if decision == "PASS":
            message = f"all six gates pass; evidence expires {rfc3339(predicate.expires_at)}"
            self.kube.event(body, "Normal", "GatesPassed", message)
        else:
            self.kube.event(body, "Warning", "GatesFailed", "; ".join(f"{r.gate}: {r.reason}" for r in failed))
        return f"judged {decision}"

    def _run_error(self, body: JSON, message: str, now: datetime) -> str:
        meta = body["metadata"]
        status = body.get("status") or {}
        cond = problem_condition(Reason.GATE_RUN_ERROR, redact(message), meta.get("generation"), now)
        last = dict(status.get("lastRun") or {})
        last["finishedAt"] = rfc3339(now)
        self.kube.patch_status(
            meta["namespace"],
            meta["name"],
            {
                "phase": "Error",
                "conditions": merge_conditions(status.get("conditions") or [], [cond]),
                "lastRun": last,
                "progress": None,
            },
        )
        self.kube.event(body, "Warning", "GateRunFailed", redact(message))
        if self.metrics:
            self.metrics.reconcile_error(meta["namespace"], meta["name"])
        return "run error"

    def governing(self, namespace: str) -> EffectivePolicy:
        """The AIGatePolicies selecting the namespace, read when a run is judged (not in any request path), and the
        platform default of the operator's settings for what none of them sets."""
        policies = []
        for doc in self.kube.policies():
            try:
                policies.append(AIGatePolicy.model_validate(doc))
            except ValidationError as e:
                log.warning("AIGatePolicy %s ignored: %s", (doc.get("metadata") or {}).get("name"), e.errors()[0])
        return effective(policies, self.kube.namespace_labels(namespace), self.config.platform_default)

    def _trusted_evidence(self, workload: AIWorkload, digest: str, envelope: str) -> JSON:
        """The copy admission and the reconciler trust: in the operator's namespace, where tenants cannot write,
        one per workload uid, replaced by each run the operator judged."""
        uid = workload.metadata.uid or ""
        return jobs.evidence_configmap(
            self.config.namespace,
            names.trusted_evidence(uid),
            {names.WORKLOAD_UID_LABEL: uid, names.ROLE_LABEL: names.EVIDENCE_ROLE},
            {
                names.FOR_NAMESPACE_ANNOTATION: workload.metadata.namespace,
                names.FOR_NAME_ANNOTATION: workload.metadata.name,
                names.DIGEST_ANNOTATION: digest,
            },
            envelope,
        )

    def _evidence_copy(self, workload: AIWorkload, digest: str, envelope: str) -> JSON:
        """A copy beside the workload for people to read (`aigate verify`); nothing decides from it."""
        cm = jobs.evidence_configmap(
            workload.metadata.namespace,
            names.evidence_configmap(workload.metadata.name),
            {names.GATE_FOR_LABEL: workload.metadata.name, names.ROLE_LABEL: names.EVIDENCE_ROLE},
            {names.DIGEST_ANNOTATION: digest},
            envelope,
        )
        cm["metadata"]["ownerReferences"] = [owner_reference(workload)]
        return cm

    def write_results(
        self,
        body: JSON,
        digest: str,
        predicate: EvidencePredicate,
        now: datetime,
        *,
        job: str | None = None,
        results: list[GateResult] | None = None,
        resync: bool = False,
        canary_every: timedelta | Literal["unset"] | None = "unset",
    ) -> None:
        """`canary_every`: the canary interval under the policy of this judgement (None: off), recorded for the
        canaries until the next one. A passing run ends a standing drift (its evidence records what answers now)."""
        meta = body["metadata"]
        status = body.get("status") or {}
        gates = results or predicate.gates
        decision = predicate.decision or "FAIL"
        generation = meta.get("generation")
        expires = predicate.expires_at
        issued = predicate.issued_at
        new = [*gate_conditions(gates, generation, now), ready_condition(gates, decision, expires, generation, now)]
        if expires is not None and expires <= now:
            new[-1] = expired_condition(rfc3339(expires), generation, now)
        drift = _condition(status, DRIFT)
        drift_ended = job is not None and decision == "PASS" and drift is not None and drift.get("status") == "True"
        if drift_ended:
            new.append(regate_passed(now, generation, now))
        by_gate = {g.gate: g for g in gates}
        last = dict(status.get("lastRun") or {})
        if job is not None:
            last.update(job=job, finishedAt=rfc3339(now))
        measured = predicate.measurement
        last["spentUSD"] = measured.spent_usd if isinstance(measured, MeasurementSummary) else None
        update = {
            "phase": "Passed" if decision == "PASS" else "Failed",
            "decision": decision,
            "specDigest": digest,
            "observedGeneration": generation,
            "conditions": merge_conditions(status.get("conditions") or [], new),
            "evidence": {
                "configMap": names.evidence_configmap(meta["name"]),
                "digest": digest,
                "keyId": self.signer.key_id,
                "issuedAt": rfc3339(issued) if issued else None,
                "expiresAt": rfc3339(expires),
            },
            "lastRun": last,
            "progress": None,
            # through the model, so costRatioText (the kubectl get column) is derived in one place
            "summary": StatusSummary.model_validate(
                {
                    "costRatio": by_gate["cost"].metrics.get("costRatio") if "cost" in by_gate else None,
                    "projectedMonthlyUSD": by_gate["cost"].metrics.get("projectedMonthlyUSD")
                    if "cost" in by_gate
                    else None,
                    "p95LatencyMs": by_gate["reliability"].metrics.get("p95LatencyMs")
                    if "reliability" in by_gate
                    else None,
                }
            ).model_dump(mode="json", by_alias=True),
        }
        if predicate.policy is not None or "policy" in status:
            update["policy"] = predicate.policy.model_dump(by_alias=True) if predicate.policy else None
        if canary_every != "unset":
            update["canary"] = {"every": _duration_text(canary_every)}
        self.kube.patch_status(meta["namespace"], meta["name"], update)
        if self.metrics:
            self.metrics.record_results(meta["namespace"], meta["name"], gates, update["summary"], expires)
            if drift_ended:
                self.metrics.record_drift(meta["namespace"], meta["name"], "NoDrift")
        if resync:
            log.info("%s/%s: status re-synced from signed evidence", meta["namespace"], meta["name"])

    # ---- after launch: the canary -----------------------------------------------------------------------------
    def _after_launch(
        self, body: JSON, resolved: ResolvedWorkload, digest: str, verified: VerifiedEvidence, now: datetime
    ) -> str:
        """Valid evidence stands: start a canary when one is due (`aigate.policy.canary.canary_plan`), or the
        re-gate of a drift that has none under way (the operator stopped between the two)."""
        status = body.get("status") or {}
        drift = _condition(status, DRIFT)
        drifting = drift is not None and drift.get("status") == "True" and drift.get("reason") in DRIFTING
        last = status.get("lastRun") or {}
        run_in_flight = bool(last.get("job")) and not last.get("finishedAt")
        if drifting and not run_in_flight:
            started = parse_rfc3339(last.get("startedAt"))
            since = parse_rfc3339((drift or {}).get("lastTransitionTime"))
            if since is not None and (started is None or started < since):
                return self.start_run(body, resolved, digest, now, regate=True)
        canary = _canary_status(status)
        spec = resolved.workload.spec
        interval = _every(canary.every) if canary.every is not None else spec.canary.every_delta()
        facts = CanaryFacts(
            interval=interval,
            cases_per_path=spec.canary.cases,
            suite=[c.name for c in resolved.cases],
            evidence_valid=verified.decision == "PASS",
            evidence_issued_at=verified.issued_at,
            gate_run_in_flight=run_in_flight,
            canary_in_flight=canary.run is not None and canary.run.finished_at is None,
            last_canary_at=canary.history[-1].at if canary.history else None,
            next_case=canary.next_case,
            spent_day=canary.day,
            spent_usd=canary.spent_usd,
            cap_usd=spec.budget.canary_cap_usd,
            drifting=drifting,
        )
        plan = canary_plan(facts, now)
        if plan.budget_spent:
            return self._canary_budget_spent(body, canary, spec.budget.canary_cap_usd, now)
        if not plan.due:
            return f"evidence valid; {plan.why}"
        return self._start_canary(body, resolved, digest, plan.cases, plan.next_case, plan.budget_usd, now)

    def _start_canary(
        self,
        body: JSON,
        resolved: ResolvedWorkload,
        digest: str,
        cases: tuple[str, ...],
        next_case: int,
        max_usd: float,
        now: datetime,
    ) -> str:
        """A canary: a gate Job in the gate namespace like any run (its RBAC, input, result, Secret, the same
        image and credentials path), of its own role and in `--canary` mode. Recorded in status before the Job."""
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        workload = resolved.workload
        run = GateRun.of(workload, self.config.gate_namespace, digest, "c" + uuid.uuid4().hex[:9])
        job = self._job_for(run, workload, canary=True)
        record: JSON = {"job": run.job, "namespace": run.gate_namespace, "runId": run.run_id, "jobUid": None}
        record["startedAt"], record["finishedAt"], record["spentUSD"] = rfc3339(now), None, None
        self.kube.patch_status(ns, name, {"canary": {"run": record, "cases": list(cases), "nextCase": next_case}})
        try:
            credentials = self._credentials(workload)
            configmaps = self._referenced(workload)
        except WorkloadError as e:
            self.cleanup_run(run)
            fresh = self.kube.get_workload(ns, name) or body
            return self._canary_judged(fresh, canary_error(redact(e.message), now), 0.0, now)
        for obj in jobs.run_rbac(run):
            self.kube.apply(obj)
        payload = jobs.run_input(workload, configmaps)
        self.kube.apply(jobs.input_configmap(run, payload, jobs.canary_input(cases, max_usd)))
        self.kube.apply(jobs.result_configmap(run))
        self.kube.apply(jobs.credentials_secret(run, credentials))
        created = self.kube.create(job)
        self.kube.patch_status(ns, name, {"canary": {"run": {**record, "jobUid": created["metadata"]["uid"]}}})
        if self.metrics:
            self.metrics.canary_started(ns, name)
        return f"canary {run.job} started: {', '.join(cases)}"

    def canary_job_done(self, job: JSON) -> str:
        """A canary's Job finished (its event)."""
        meta = job["metadata"]
        ann = meta.get("annotations") or {}
        ns, name = ann.get(names.FOR_NAMESPACE_ANNOTATION, ""), ann.get(names.FOR_NAME_ANNOTATION, "")
        if meta.get("namespace") != self.config.gate_namespace or not ns or not name:
            return "not a canary of aigate's (outside the gate namespace): ignored"
        with self._one_at_a_time(ns, name):
            body = self.kube.get_workload(ns, name)
            if body is None:
                return "workload gone"
            if (meta.get("labels") or {}).get(names.WORKLOAD_UID_LABEL) != body["metadata"].get("uid"):
                return "a canary of another workload of that name: ignored"
            return self._canary_done(body, job, utcnow())

    def _canary_done(self, body: JSON, job: JSON | None, now: datetime) -> str:
        """Take the canary's result, under the same rules as a gate run's (the Job recorded, its template, once),
        judge it against the trusted evidence, and apply: Drift, Event, metric, and a re-gate on drift."""
        status = body.get("status") or {}
        record = (status.get("canary") or {}).get("run") or {}
        if not record.get("job") or record.get("finishedAt"):
            return "no canary in flight"
        if job is not None and (job.get("metadata") or {}).get("annotations", {}).get(
            names.RUN_ANNOTATION
        ) != record.get("runId"):
            return "not the current canary"
        try:
            resolved = load_resolved(self.kube, body)
        except WorkloadError as e:
            return self._invalid(body, e.message, now)
        ann = ((job or {}).get("metadata") or {}).get("annotations") or {}
        run = GateRun.of(
            resolved.workload, self.config.gate_namespace, ann.get(names.DIGEST_ANNOTATION, ""), record["runId"]
        )
        try:
            if job is None:
                return self._canary_judged(body, canary_error(f"canary Job {record['job']} is gone", now), 0.0, now)
            jmeta = job["metadata"]
            same = jobs.same_template(job, self._job_for(run, resolved.workload, canary=True))
            recorded = LastRun(
                job=record.get("job"),
                finished=False,
                phase=None,
                spec_digest=None,
                job_uid=record.get("jobUid"),
                namespace=record.get("namespace"),
            )
            problem = run_result_problem(recorded, jmeta["name"], jmeta["namespace"], jmeta.get("uid", ""), same)
            if problem is not None:
                return self._canary_judged(body, canary_error(problem.why, now), 0.0, now)
            cm = self.kube.get_configmap(run.gate_namespace, names.run_result(run.job))
            try:
                result = read_result(cm or {})
            except (ValueError, WorkloadError) as e:
                return self._canary_judged(body, canary_error(f"no readable result: {e}", now), 0.0, now)
            m = result.measurements
            spent = m.spent_usd if m is not None else 0.0
            if result.run_id != run.run_id or result.outcome != "measured" or m is None or not job_succeeded(job):
                why = result.error or "no measurements"
                return self._canary_judged(body, canary_error(f"canary Job {run.job} failed: {why}", now), spent, now)
            digest = spec_digest(resolved)
            state, verified = stored_evidence(
                self.kube, self.config.namespace, body["metadata"].get("uid", ""), digest, self.signer, now
            )
            if verified is None or state != "valid" or result.spec_digest != digest:
                return self._canary_judged(
                    body, canary_error("the evidence changed while the canary ran; nothing compared", now), spent, now
                )
            return self._canary_judged(body, judge_canary(m, verified.signed, now, _cap_of(body)), spent, now)
        finally:
            self.cleanup_run(run)

    def _canary_judged(self, body: JSON, drift: Drift, spent: float, now: datetime, *, ran: bool = True) -> str:
        """Apply what a canary found: the day's spend, the history, the Drift condition, an Event, the metric; on
        drift, the record admission reads and a re-gate at once. `ran`: a canary Job was started (else: one was due
        and not started), whose record in status.canary.run ends now."""
        drift = dataclasses.replace(drift, message=redact(drift.message))
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        status = body.get("status") or {}
        canary = _canary_status(status)
        cap = _cap_of(body)
        spend = add_spend(canary.day, canary.spent_usd, spent, cap, now)
        if drift.reason == "CanaryBudgetSpent":  # nothing left today covers a request: the day is closed
            spend = dataclasses.replace(spend, spent_usd=max(spend.spent_usd, cap), over=True)
        entry = CanaryRecord(
            at=now.replace(microsecond=0),
            outcome=drift.reason,
            cases=list(canary.cases) if ran else [],
            spent_usd=round(spent, 6),
            message=drift.message[:512],
        )
        history = [
            *(h.model_dump(mode="json", by_alias=True) for h in canary.history),
            entry.model_dump(mode="json", by_alias=True),
        ][-HISTORY:]
        previous = _condition(status, DRIFT)
        cond = drift_condition(drift, previous, meta.get("generation"), now)
        update: JSON = {
            "canary": {"day": spend.day, "spentUSD": spend.spent_usd, "history": history},
            "conditions": merge_conditions(status.get("conditions") or [], [cond]),
        }
        if ran and canary.run is not None:
            run = canary.run.model_dump(mode="json", by_alias=True)
            update["canary"]["run"] = {**run, "finishedAt": rfc3339(now), "spentUSD": round(spent, 6)}
        if drift.drifting:  # the record admission reads first: once status says Drift, rollouts are refused
            self._record_drift(body, drift, now)
        self.kube.patch_status(ns, name, update)
        kind = "Warning" if drift.drifting or drift.reason == "CanaryError" else "Normal"
        self.kube.event(body, kind, drift.reason, drift.message)
        if self.metrics:
            self.metrics.record_drift(ns, name, cond["reason"])
        if not drift.drifting:
            return f"canary: {drift.reason}"
        fresh = self.kube.get_workload(ns, name) or body
        last = (fresh.get("status") or {}).get("lastRun") or {}
        if last.get("job") and not last.get("finishedAt"):  # a gate run is under way: its result decides
            return f"canary: {drift.reason}; gate run {last['job']} under way decides"
        try:
            resolved = load_resolved(self.kube, fresh)
        except WorkloadError as e:
            return self._invalid(fresh, e.message, now)
        return f"canary: {drift.reason}; " + self.start_run(fresh, resolved, spec_digest(resolved), now, regate=True)

    def _record_drift(self, body: JSON, drift: Drift, now: datetime) -> None:
        """The drift, on the trusted evidence ConfigMap it was found against (the operator's namespace): what the
        rollout webhook reads. Status says the same for people, but a decision reads only what tenants cannot
        write and what is bound to the envelope (a re-gate's new envelope leaves the record behind)."""
        uid = body["metadata"].get("uid", "")
        cm = self.kube.get_configmap(self.config.namespace, names.trusted_evidence(uid))
        envelope = ((cm or {}).get("data") or {}).get(names.EVIDENCE_KEY)
        if cm is None or not envelope:
            return
        meta = cm["metadata"]
        record = drift_record(drift, envelope, now).to_json()
        self.kube.apply(
            jobs.evidence_configmap(
                meta["namespace"],
                meta["name"],
                meta.get("labels") or {},
                meta.get("annotations") or {},
                envelope,
                drift=record,
            )
        )

    def _canary_budget_spent(self, body: JSON, canary: CanaryStatus, cap: float, now: datetime) -> str:
        """A canary was due and the day's cap is spent: said once a day (history, Drift unless a drift stands,
        Event), not on every tick."""
        last = canary.history[-1] if canary.history else None
        if last is not None and last.outcome == "CanaryBudgetSpent" and day_of(last.at) == day_of(now):
            return "canary budget spent today"
        return self._canary_judged(body, budget_spent(cap, now), 0.0, now, ran=False)


def _canary_status(status: JSON) -> CanaryStatus:
    """status.canary as the operator wrote it; anything it cannot read (a hand-written status) starts over."""
    try:
        return CanaryStatus.model_validate(status.get("canary") or {})
    except ValidationError:
        return CanaryStatus()


def _condition(status: JSON, type_: str) -> JSON | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), None)


def _canary_in_flight(status: JSON) -> str | None:
    run = (status.get("canary") or {}).get("run") or {}
    return run.get("runId") if run.get("job") and not run.get("finishedAt") else None


def _every(text: str) -> timedelta | None:
    """status.canary.every as the operator wrote it (the interval under the policy of the last judgement)."""
    try:
        return Canary(every=text).every_delta()
    except ValidationError:
        return None


def _cap_of(body: JSON) -> float:
    budget = ((body.get("spec") or {}).get("budget") or {}).get("canaryMaxUSDPerDay")
    return float(budget) if isinstance(budget, int | float) and budget > 0 else DEFAULT_CANARY_MAX_USD


def _duration_text(d: timedelta | None) -> str:
    """An interval as status shows it: whole seconds (`21600s`), "0" for off."""
    return "0" if d is None else f"{int(d.total_seconds())}s"
