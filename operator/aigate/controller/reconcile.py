"""What the operator does for one AIWorkload: decide whether it needs a gate run, start one, and turn a
finished run into signed evidence and status. Synchronous (the kopf handlers run it in a worker thread) and
free of kopf, so the flow reads top to bottom."""

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

from aigate.api.digest import spec_digest
from aigate.api.errors import WorkloadError
from aigate.api.load import ResolvedWorkload, configmap_names, parse_workload, resolve
from aigate.api.models import AIWorkload
from aigate.controller import names
from aigate.controller.config import OperatorConfig
from aigate.controller.jobs import owner_reference
from aigate.controller.kube import JSON, Kube
from aigate.controller.status import (
    expired_condition,
    gate_conditions,
    merge_conditions,
    pending_conditions,
    ready_condition,
    rfc3339,
)
from aigate.gates.result import decide
from aigate.redact import redact

log = logging.getLogger("aigate.operator")


@dataclass(frozen=True)
class Signer:
    key: Any
    key_id: str
    public_key: Any


def now_utc() -> datetime:
    return datetime.now(UTC)


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def load_resolved(kube: Kube, body: JSON) -> ResolvedWorkload:
    """The workload with its ConfigMaps read through the API; WorkloadError names what is missing."""
    workload = load_model(body)
    return resolve(workload, kube.configmap_lookup(workload.metadata.namespace))


def evidence_state(kube: Kube, ns: str, name: str, digest: str, signer: Signer, now: datetime) -> tuple[str, Any]:
    """('valid' | 'regate' | 'expired' | 'stale' | 'missing' | 'invalid', verified) for the stored evidence."""
    from aigate.evidence.errors import EvidenceError
    from aigate.evidence.verify import verify_evidence

    cm = kube.get_configmap(ns, names.evidence_configmap(name))
    raw = ((cm or {}).get("data") or {}).get(names.EVIDENCE_KEY)
    if not raw:
        return "missing", None
    try:
        # decision FAIL is still evidence: of failure. Expiry and digest are judged here, not by the verifier.
        verified = verify_evidence(raw, signer.public_key, now=datetime(1970, 1, 2, tzinfo=UTC), require_pass=False)
    except EvidenceError:
        return "invalid", None
    if verified.spec_digest != digest:
        return "stale", verified
    if verified.expires_at <= now:
        return "expired", verified
    return "valid", verified


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
        status = body.get("status") or {}
        now = now_utc()
        try:
            resolved = load_resolved(self.kube, body)
        except WorkloadError as e:
            return self._invalid(body, e.message, now)
        digest = spec_digest(resolved)
        state, verified = evidence_state(self.kube, ns, name, digest, self.signer, now)
        regate_at = None
        if verified is not None:
            regate_at = verified.expires_at - resolved.workload.spec.evidence.regate_before_delta()
        if state == "valid" and not force and (regate_at is None or now < regate_at):
            self._sync_status_from_evidence(body, digest, verified, now)
            return "evidence valid"
        jobs = self.kube.list_jobs(ns, f"{names.GATE_FOR_LABEL}={name},{names.ROLE_LABEL}=gate-job")
        running = [j for j in jobs if not job_finished(j)]
        current = [j for j in running if j["metadata"].get("annotations", {}).get(names.DIGEST_ANNOTATION) == digest]
        for j in running:
            if j not in current:
                self.kube.delete_job(ns, j["metadata"]["name"])
                log.info("%s/%s: spec changed, replaced gate Job %s", ns, name, j["metadata"]["name"])
        if current:
            return "gate run in progress"
        last = status.get("lastRun") or {}
        unprocessed = [j for j in jobs if j["metadata"]["name"] == last.get("job") and job_finished(j)]
        if unprocessed and not last.get("finishedAt"):
            # the operator was down when this run finished: take its result rather than run again
            return self._job_done(unprocessed[0])
        if (
            not force
            and status.get("specDigest") == digest
            and last.get("finishedAt")
            and status.get("phase") == "Error"
        ):
            return "last run for this digest errored; waiting for a change"
        if state == "expired" and status.get("phase") != "Testing":
            self.mark_expired(body, verified.expires_at if verified else now)
        return self.start_run(body, resolved, digest, now, regate=state == "valid")

    def tick(self, body: JSON) -> str:
        """The timer: pick up a finished run whose event was missed, and re-gate ahead of expiry."""
        return self._in_turn(body, self._tick)

    def _tick(self, body: JSON) -> str:
        meta = body["metadata"]
        status = body.get("status") or {}
        last = status.get("lastRun") or {}
        if status.get("phase") == "Testing" and last.get("job") and not last.get("finishedAt"):
            job = self.kube.get_job(meta["namespace"], last["job"])
            if job is not None and job_finished(job):
                return self._job_done(job)
            if job is not None:
                return "gate run in progress"
        expires = _parse_time((status.get("evidence") or {}).get("expiresAt"))
        if expires is not None and expires <= now_utc():
            self.mark_expired(body, expires)
            body = self.kube.get_workload(meta["namespace"], meta["name"]) or body
        return self._reconcile(body)

    def start_run(
        self, body: JSON, resolved: ResolvedWorkload, digest: str, now: datetime, *, regate: bool = False
    ) -> str:
        """`regate`: the evidence is still valid, so Ready stays as it is while the new run goes."""
        from aigate.controller import jobs

        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        owner = owner_reference(resolved.workload)
        run_id = uuid.uuid4().hex[:10]
        workload = resolved.workload
        job = jobs.gate_job(
            workload,
            digest,
            run_id,
            owner,
            image=self.config.gate_image,
            active_deadline_s=self.config.job_deadline_s,
            ttl_after_finished_s=self.config.job_ttl_s,
            backoff_limit=self.config.job_backoff_limit,
            command=list(self.config.gate_command),
            resources=self.config.job_resources,
        )
        job_name = job["metadata"]["name"]
        generation = meta.get("generation")
        previous = (body.get("status") or {}).get("conditions") or []
        message = f"gate Job {job_name} running for {digest[:19]}"
        update: JSON = {
            "phase": "Testing",
            "specDigest": digest,
            "observedGeneration": generation,
            "lastRun": {"job": job_name, "startedAt": rfc3339(now), "finishedAt": None, "spentUSD": None},
        }
        if not regate:
            update["conditions"] = merge_conditions(previous, pending_conditions(message, generation, now))
        # status first, then the Job: an operator stopped in between finds a run recorded whose Job does not
        # exist (and starts it again), never a Job that no status points to (which it could not tell from a
        # stale one, and would run a second time)
        self.kube.patch_status(ns, name, update)
        for obj in jobs.gate_rbac(workload, configmap_names(workload), owner):
            self.kube.apply(obj)
        self.kube.apply(jobs.result_configmap(workload, owner))
        self.kube.apply(job)
        self.kube.event(body, "Normal", "GateRunStarted", message)
        if self.metrics:
            self.metrics.run_started(ns, name)
        return f"started {job_name}"

    def mark_expired(self, body: JSON, expires_at: datetime) -> None:
        status = body.get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        if ready is not None and ready.get("reason") == "EvidenceExpired":
            return
        meta = body["metadata"]
        now = now_utc()
        cond = expired_condition(rfc3339(expires_at), meta.get("generation"), now)
        self.kube.patch_status(
            meta["namespace"],
            meta["name"],
            {"conditions": merge_conditions(status.get("conditions") or [], [cond])},
        )
        self.kube.event(body, "Warning", "EvidenceExpired", f"evidence expired at {rfc3339(expires_at)}; re-gating")

    def _invalid(self, body: JSON, message: str, now: datetime) -> str:
        meta = body["metadata"]
        status = body.get("status") or {}
        generation = meta.get("generation")
        cond = ready_condition([], "FAIL", None, generation, now)
        cond.update(reason="InvalidSpec", message=redact(message)[:1024])
        if status.get("phase") == "Error" and any(
            c.get("message") == cond["message"] for c in status.get("conditions") or []
        ):
            return "invalid (unchanged)"
        self.kube.patch_status(
            meta["namespace"],
            meta["name"],
            {
                "phase": "Error",
                "observedGeneration": generation,
                "conditions": merge_conditions(status.get("conditions") or [], [cond]),
            },
        )
        self.kube.event(body, "Warning", "InvalidSpec", redact(message))
        return "invalid"

    def _sync_status_from_evidence(self, body: JSON, digest: str, verified: Any, now: datetime) -> None:
        """After a restart or a forged status: make status say what the signed evidence says."""
        status = body.get("status") or {}
        ev = status.get("evidence") or {}
        phase = "Passed" if verified.decision == "PASS" else "Failed"
        if status.get("specDigest") == digest and ev.get("digest") == digest and status.get("phase") == phase:
            return
        self.write_results(body, digest, verified.predicate, now, resync=True)

    # ---- a gate Job finished -----------------------------------------------------------------------------------
    def job_done(self, job: JSON) -> str:
        meta = job["metadata"]
        name = (meta.get("labels") or {}).get(names.GATE_FOR_LABEL, "")
        with self._one_at_a_time(meta["namespace"], name):
            return self._job_done(job)

    def _job_done(self, job: JSON) -> str:
        from aigate.controller.rungates import read_result
        from aigate.probes.rbac import probe_service_account

        meta = job["metadata"]
        ns = meta["namespace"]
        name = (meta.get("labels") or {}).get(names.GATE_FOR_LABEL, "")
        ann = meta.get("annotations") or {}
        job_digest, run_id = ann.get(names.DIGEST_ANNOTATION, ""), ann.get(names.RUN_ANNOTATION, "")
        body = self.kube.get_workload(ns, name)
        if body is None:
            return "workload gone"
        status = body.get("status") or {}
        last = status.get("lastRun") or {}
        if last.get("job") != meta["name"]:
            return "not the current run"
        if last.get("finishedAt"):
            return "already processed"
        now = now_utc()
        if self.metrics:
            started = _parse_time(last.get("startedAt"))
            if started:
                self.metrics.job_finished(ns, name, (now - started).total_seconds(), job_succeeded(job))
        try:
            resolved = load_resolved(self.kube, body)
        except WorkloadError as e:
            return self._invalid(body, e.message, now)
        digest = spec_digest(resolved)
        if digest != job_digest:
            return "spec changed since the run started; a new run replaces it"
        cm = self.kube.get_configmap(ns, names.result_configmap(name))
        try:
            result = read_result(cm or {})
        except (ValueError, WorkloadError) as e:
            return self._run_error(body, f"gate Job {meta['name']} left no readable result: {e}", now)
        if result.run_id != run_id or result.spec_digest != job_digest:
            return self._run_error(body, f"gate result does not come from Job {meta['name']} (run {run_id})", now)
        if result.outcome != "measured" or result.measurements is None or not job_succeeded(job):
            return self._run_error(body, f"gate Job {meta['name']} failed: {result.error or 'no measurements'}", now)
        m = result.measurements
        sa = resolved.workload.spec.service_account_name
        if sa:
            m.rbac = probe_service_account(self.kube.api, ns, sa)
        from aigate.pipeline import judge, sign_predicate

        results, predicate, digest = judge(resolved, m, now=now, key_id=self.signer.key_id)
        envelope = sign_predicate(resolved, digest, predicate, self.signer.key)
        self.kube.apply(self._evidence_configmap(body, digest, envelope, owner_reference(resolved.workload)))
        self.write_results(body, digest, predicate, now, job=meta["name"], results=results)
        decision = decide(results)
        failed = [r for r in results if not r.ok]
        if decision == "PASS":
            self.kube.event(
                body, "Normal", "GatesPassed", f"all six gates pass; evidence expires {predicate['expiresAt']}"
            )
        else:
            text = "; ".join(f"{r.gate}: {r.reason}" for r in failed)
            self.kube.event(body, "Warning", "GatesFailed", text)
        return f"judged {decision}"

    def _run_error(self, body: JSON, message: str, now: datetime) -> str:
        meta = body["metadata"]
        status = body.get("status") or {}
        cond = ready_condition([], "FAIL", None, meta.get("generation"), now)
        cond.update(reason="GateRunError", message=redact(message)[:1024])
        last = dict(status.get("lastRun") or {})
        last["finishedAt"] = rfc3339(now)
        self.kube.patch_status(
            meta["namespace"],
            meta["name"],
            {"phase": "Error", "conditions": merge_conditions(status.get("conditions") or [], [cond]), "lastRun": last},
        )
        self.kube.event(body, "Warning", "GateRunFailed", redact(message))
        if self.metrics:
            self.metrics.reconcile_error(meta["namespace"], meta["name"])
        return "run error"

    def _evidence_configmap(self, body: JSON, digest: str, envelope: JSON, owner: JSON) -> JSON:
        meta = body["metadata"]
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": names.evidence_configmap(meta["name"]),
                "namespace": meta["namespace"],
                "labels": {names.GATE_FOR_LABEL: meta["name"], names.ROLE_LABEL: "evidence"},
                "annotations": {names.DIGEST_ANNOTATION: digest},
                "ownerReferences": [owner],
            },
            "data": {names.EVIDENCE_KEY: json.dumps(envelope, separators=(",", ":"))},
        }

    def write_results(
        self,
        body: JSON,
        digest: str,
        predicate: JSON,
        now: datetime,
        *,
        job: str | None = None,
        results: list[Any] | None = None,
        resync: bool = False,
    ) -> None:
        from aigate.gates.result import GateResult

        meta = body["metadata"]
        status = body.get("status") or {}
        gates = results or [GateResult.model_validate(g) for g in predicate["gates"]]
        decision = predicate["decision"]
        generation = meta.get("generation")
        expires = _parse_time(predicate["expiresAt"])
        issued = _parse_time(predicate["issuedAt"])
        new = [*gate_conditions(gates, generation, now), ready_condition(gates, decision, expires, generation, now)]
        if expires is not None and expires <= now:
            new[-1] = expired_condition(rfc3339(expires), generation, now)
        by_gate = {g.gate: g for g in gates}
        last = dict(status.get("lastRun") or {})
        if job is not None:
            last.update(job=job, finishedAt=rfc3339(now))
        measurement = predicate.get("measurement") or {}
        last["spentUSD"] = measurement.get("spentUSD")
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
                "expiresAt": rfc3339(expires) if expires else None,
            },
            "lastRun": last,
            "summary": {
                "costRatio": by_gate["cost"].metrics.get("costRatio") if "cost" in by_gate else None,
                "projectedMonthlyUSD": by_gate["cost"].metrics.get("projectedMonthlyUSD")
                if "cost" in by_gate
                else None,
                "p95LatencyMs": by_gate["reliability"].metrics.get("p95LatencyMs")
                if "reliability" in by_gate
                else None,
            },
        }
        self.kube.patch_status(meta["namespace"], meta["name"], update)
        if self.metrics:
            self.metrics.record_results(meta["namespace"], meta["name"], gates, update["summary"], expires)
        if resync:
            log.info("%s/%s: status re-synced from signed evidence", meta["namespace"], meta["name"])


def workload_model(body: JSON) -> AIWorkload | None:
    try:
        return load_model(body)
    except WorkloadError:
        return None


def load_model(body: JSON) -> AIWorkload:
    """The spec and the identity of an AIWorkload as the API sent it (status and the rest are not input)."""
    meta = body.get("metadata", {})
    doc = {k: v for k, v in body.items() if k in ("apiVersion", "kind", "spec")}
    doc["metadata"] = {k: meta[k] for k in ("name", "namespace", "uid", "generation") if k in meta}
    return parse_workload(doc, source=f"AIWorkload {meta.get('namespace')}/{meta.get('name')}")
