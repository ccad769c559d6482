"""What the operator does for one AIWorkload: gather its state (spec digest, stored evidence, gate Jobs), ask
`aigate.policy.lifecycle` what to do, and apply that (start a run, collect a finished one, write status).
Synchronous (the kopf handlers run it in a worker thread) and free of kopf, so the flow reads top to bottom."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from aigate.api.digest import spec_digest
from aigate.api.errors import WorkloadError
from aigate.api.load import ResolvedWorkload, configmap_refs, resolve, workload_from_api
from aigate.api.models import AIWorkload, StatusSummary
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
from aigate.policy.conditions import (
    Reason,
    expired_condition,
    gate_conditions,
    merge_conditions,
    pending_conditions,
    problem_condition,
    ready_condition,
)
from aigate.policy.governance import EffectivePolicy, effective
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
        if keep_evidence(state, regate_at, now, force=force):
            assert verified is not None
            self._sweep(uid, in_flight)
            self._sync_status_from_evidence(body, digest, verified, now)
            return "evidence valid"
        gate_ns = self.config.gate_namespace
        found = self.kube.list_jobs(gate_ns, f"{jobs.workload_selector(uid)},{names.ROLE_LABEL}={names.GATE_JOB_ROLE}")
        action = next_action(digest, state, [run_of(j) for j in found], last, force=force)
        for stale in action.stop:
            self.kube.delete_job(gate_ns, stale)
            log.info("%s/%s: spec changed, replaced gate Job %s", ns, name, stale)
        self._sweep(uid, in_flight if action.kind != "start" else None)
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

    def _job_for(self, run: GateRun, workload: AIWorkload) -> JSON:
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

    def _sweep(self, uid: str, keep_run: str | None) -> None:
        """The same for any run of this workload other than `keep_run`: left by a crash, a replaced run, a Job that
        disappeared while the operator was down."""
        gate_ns = self.config.gate_namespace
        for run_id in self.kube.labelled_runs(gate_ns, jobs.workload_selector(uid)):
            if run_id != keep_run:
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

    def _sync_status_from_evidence(self, body: JSON, digest: str, verified: VerifiedEvidence, now: datetime) -> None:
        """After a restart or a forged status: make status say what the signed evidence says."""
        status = body.get("status") or {}
        ev = status.get("evidence") or {}
        phase = "Passed" if verified.decision == "PASS" else "Failed"
        if status.get("specDigest") == digest and ev.get("digest") == digest and status.get("phase") == phase:
            return
        self.write_results(body, digest, verified.signed, now, resync=True)

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
        results, predicate, digest = judge(resolved, m, now=now, key_id=self.signer.key_id, policy=policy)
        envelope = json.dumps(sign_predicate(resolved, digest, predicate, self.signer.key), separators=(",", ":"))
        self.kube.apply(self._trusted_evidence(resolved.workload, digest, envelope))
        self.kube.apply(self._evidence_copy(resolved.workload, digest, envelope))
        self.write_results(body, digest, predicate, now, job=run.job, results=results)
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
    ) -> None:
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
        self.kube.patch_status(meta["namespace"], meta["name"], update)
        if self.metrics:
            self.metrics.record_results(meta["namespace"], meta["name"], gates, update["summary"], expires)
        if resync:
            log.info("%s/%s: status re-synced from signed evidence", meta["namespace"], meta["name"])
