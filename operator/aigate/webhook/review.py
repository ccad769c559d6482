"""An AdmissionReview in, its answer out: the three aigate webhooks, decided by the same pure policy functions the
operator used when kopf served them (policy.rollout, policy.acceptance, policy.governance, policy.references), with
the same messages, warnings, codes and JSONPatch.

The rollout webhook decides from the index alone (no API call, no parsing or hashing when the index warmed the
workload's digest, which it does whenever the workload or what it reads changes), but for one GET: the Deployment an
Argo Rollout's spec.workloadRef names, whose label judges the Rollout too (docs/gated-kinds.md).

The AIWorkload webhooks are rare (a create or edit of an AIWorkload) and may call the API (SubjectAccessReviews, a
ConfigMap not indexed yet): they run in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aigate.api.digest import acceptance_digest
from aigate.api.errors import WorkloadError
from aigate.api.load import configmap_lookup, resolve, workload_from_api
from aigate.api.models import WORKLOAD_LABEL
from aigate.evidence import PublicKey
from aigate.kube import names
from aigate.kube.metrics import Metrics
from aigate.kube.names import ACCEPTANCES_WEBHOOK, AIWORKLOADS_WEBHOOK, ROLLOUTS_WEBHOOK, WORKLOADREFS_WEBHOOK
from aigate.policy.acceptance import AcceptanceDecision, acceptance_patch
from aigate.policy.governance import governed_by, raised, violations
from aigate.policy.kinds import BY_RESOURCE, GatedKind, referenced_deployment
from aigate.policy.mcpservers import mcp_problem
from aigate.policy.references import added
from aigate.policy.references import refusal as reference_refusal
from aigate.policy.rollout import (
    RolloutDecision,
    all_of,
    enforcement_of,
    not_judged,
    referenced_by,
    shape_problem,
    through_workload_ref,
)
from aigate.policy.text import MAX_REASON, one_line
from aigate.webhook.admission import rollout_decision
from aigate.webhook.configurations import TIMEOUT_SECONDS
from aigate.webhook.envelope import refusal
from aigate.webhook.index import JSON, Index
from aigate.webhook.lanes import DigestLanes, TooLate

ROLLOUT_KINDS = BY_RESOURCE
"""(group, resource) the rollout webhook judges, and its registry entry (policy/kinds.py)."""
WORKLOADREF_KINDS = {key: k for key, k in BY_RESOURCE.items() if k.workload_ref is not None}
"""(group, resource) the workloadRef webhook sends (unlabelled objects with a workloadRef), judged the same way."""


class DeploymentUnread(Exception):
    """The Deployment a workloadRef names could not be read (API error, timeout, no client): fail closed."""


AIWORKLOAD_RESOURCE = ("aigate.dev", "aiworkloads")

MayRead = Callable[[Mapping[str, Any], str, str, str, str], bool]
"""(userinfo, verb, resource, namespace, name) -> allowed: a SubjectAccessReview."""


@dataclass(frozen=True)
class Answer:
    """What a webhook says: allowed, or refused with a message and an HTTP code; warnings; a JSONPatch."""

    allowed: bool = True
    message: str | None = None
    code: int = 403
    warnings: list[str] = field(default_factory=list)
    patch: list[JSON] | None = None


ALLOW = Answer()


def respond(review: Mapping[str, Any], answer: Answer) -> JSON:
    """The AdmissionReview answer, shaped as the API server reads it (and as kopf built it before)."""
    response: JSON = {"uid": review["request"]["uid"], "allowed": answer.allowed}
    if answer.warnings:
        response["warnings"] = [str(w) for w in answer.warnings]
    if answer.patch:
        response["patch"] = base64.b64encode(json.dumps(answer.patch).encode()).decode("ascii")
        response["patchType"] = "JSONPatch"
    if not answer.allowed:
        response["status"] = {"message": answer.message or "refused", "code": answer.code}
    return {
        "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
        "kind": review.get("kind", "AdmissionReview"),
        "response": response,
    }


class Reviewer:
    """Answers reviews from the index. `ready()` says whether the index holds its first listings."""

    def __init__(
        self,
        *,
        index: Index,
        public_key: PublicKey,
        metrics: Metrics,
        ready: Callable[[], bool],
        acceptor_groups: frozenset[str],
        watch_namespaces: frozenset[str],
        may: MayRead,
    ) -> None:
        self.index = index
        self.public_key = public_key
        self.metrics = metrics
        self.ready = ready
        self.acceptor_groups = acceptor_groups
        self.watch_namespaces = watch_namespaces
        self.may = may
        self.lanes = DigestLanes(give_up_after=TIMEOUT_SECONDS)

    async def review(self, webhook: str, review: JSON) -> JSON:
        """The answer to a well-formed review (webhook.envelope.parse_review checked its envelope)."""
        request = review["request"]
        resource = request["resource"]
        group, plural = resource.get("group") or "", resource.get("resource") or ""
        if webhook == ROLLOUTS_WEBHOOK and (group, plural) in ROLLOUT_KINDS:
            return respond(review, await self.rollout(request, ROLLOUT_KINDS[(group, plural)]))
        if webhook == WORKLOADREFS_WEBHOOK and (group, plural) in WORKLOADREF_KINDS:
            return respond(review, await self.rollout(request, WORKLOADREF_KINDS[(group, plural)]))
        if webhook in (ACCEPTANCES_WEBHOOK, AIWORKLOADS_WEBHOOK) and (group, plural) == AIWORKLOAD_RESOURCE:
            problem = aiworkload_shape_problem(request)
            if problem is not None:
                return refusal(review, problem, 400)
            judge = self.acceptances if webhook == ACCEPTANCES_WEBHOOK else self.aiworkload
            return respond(review, await asyncio.to_thread(judge, request))
        what = f"{group or 'core'}/{resource.get('version')}/{plural}"
        return refusal(review, f"aigate has no admission handler for {what}", 400)

    # ---- rollouts -------------------------------------------------------------------------------------------------

    async def rollout(self, request: Mapping[str, Any], gated: GatedKind) -> Answer:
        started = time.perf_counter()
        body = _body(request)
        meta = body.get("metadata") if isinstance(body.get("metadata"), Mapping) else {}
        raw_labels = (meta or {}).get("labels") or {}
        if not isinstance(raw_labels, Mapping):  # the API server decodes labels as a map first; a review may not
            return Answer(False, f"metadata.labels must be a map (got {type(raw_labels).__name__})", 400)
        labels = dict(raw_labels)
        if not isinstance(labels.get(WORKLOAD_LABEL, ""), str):
            return Answer(False, f"metadata.labels[{WORKLOAD_LABEL!r}] must be a string", 400)
        deployment = referenced_deployment(gated, body)
        if WORKLOAD_LABEL not in labels and deployment is None:
            return ALLOW  # what kopf's label filter let through without calling the handler
        kind = str(body.get("kind") or (request.get("kind") or {}).get("kind") or gated.kind)
        # before readiness: removing a finalizer, or a ReplicaSet scaling an admitted Deployment, never waits
        if not_judged(kind, body):
            return ALLOW
        ns = str((meta or {}).get("namespace") or request.get("namespace") or "")
        if self.watch_namespaces and ns not in self.watch_namespaces:
            return ALLOW  # not a namespace this operator gates: its webhook configuration should not send it here
        judged: list[tuple[dict[str, str], str | None]] = []
        if WORKLOAD_LABEL in labels:
            judged.append((labels, None))
        if deployment is not None:
            try:
                found = await self._referenced_label(ns, deployment)
            except DeploymentUnread as e:
                self.metrics.admitted("error", kind, "", time.perf_counter() - started, ROLLOUTS_WEBHOOK)
                return Answer(
                    False,
                    f"aigate cannot decide now: Deployment {ns}/{deployment}, which this {kind}'s spec.workloadRef "
                    f"names, could not be read ({e}); retry",
                    503,
                )
            # unlabelled or absent: nothing to judge it by (a Deployment is judged itself when it is written
            # labelled); labelled like the object: judged once
            if found is not None and found != labels.get(WORKLOAD_LABEL):
                judged.append(({WORKLOAD_LABEL: found}, f"{ns}/{deployment}"))
        if not judged:
            return ALLOW
        if not self.ready():
            self.metrics.admitted("not-ready", kind, "", time.perf_counter() - started, ROLLOUTS_WEBHOOK)
            return Answer(False, "aigate is starting: its index of workloads is not complete yet; retry", 503)
        shape = shape_problem(gated, body, labels)
        if shape is not None:
            self.metrics.admitted("denied", kind, "", time.perf_counter() - started, ROLLOUTS_WEBHOOK)
            return Answer(False, shape, 403)
        decisions = []
        try:
            for by, via in judged:
                decision = await self._decide(gated, body, kind, ns, by, via, started)
                decisions.append(decision if via is None else through_workload_ref(decision, kind, via))
        except TooLate as e:
            self.metrics.admitted("error", kind, "", time.perf_counter() - started, ROLLOUTS_WEBHOOK)
            return Answer(False, f"aigate cannot decide now: {e}; retry", 503)
        decision = all_of(decisions)  # labelled for two workloads (its own, its Deployment's): it must satisfy both
        elapsed = time.perf_counter() - started
        self.metrics.admitted(decision.result, kind, decision.enforcement or "", elapsed, ROLLOUTS_WEBHOOK)
        return Answer(decision.allowed, decision.message, 403, list(decision.warnings))

    async def _referenced_label(self, namespace: str, name: str) -> str | None:
        """The `aigate.dev/workload` label of the Deployment a workloadRef names: one GET, in a worker thread (the
        only API call of the rollout webhook, for a Rollout with spec.workloadRef only); None when the Deployment does
        not exist or carries no label. DeploymentUnread when it cannot be read: the review fails closed."""
        fetch = self.index.fetch_deployment
        if fetch is None:
            raise DeploymentUnread("the webhook has no API client to read it with")
        try:
            found = await asyncio.to_thread(fetch, namespace, name)
        except Exception as e:  # any failure to read: refused with a 503, never admitted unjudged
            status = getattr(e, "status", None)  # an ApiException: its status line, not its headers and body
            said = f"HTTP {status} {getattr(e, 'reason', '') or ''}".strip() if status else str(e) or type(e).__name__
            raise DeploymentUnread(one_line(said, MAX_REASON)) from e
        meta = (found or {}).get("metadata")
        got = meta.get("labels") if isinstance(meta, Mapping) else None
        value = got.get(WORKLOAD_LABEL) if isinstance(got, Mapping) else None
        return value if isinstance(value, str) else None

    async def _decide(
        self,
        gated: GatedKind,
        body: JSON,
        kind: str,
        ns: str,
        labels: Mapping[str, str],
        label_of: str | None,
        started: float,
    ) -> RolloutDecision:
        """The decision for one `aigate.dev/workload` value, from the index (policy.rollout decides)."""
        governing = self.index.governing(ns)
        workload = self.index.workload(ns, labels.get(WORKLOAD_LABEL, ""))
        # only the copy in the operator's namespace counts: the one beside the workload is the tenant's to write
        uid = str(((workload or {}).get("metadata") or {}).get("uid") or "")
        configmaps = self.index.configmaps_of(ns)
        decide = functools.partial(
            rollout_decision,
            kind=kind,
            namespace=ns,
            labels=labels,
            workload=workload,
            evidence_cm=self.index.trusted_evidence(uid),
            configmaps=configmaps,
            public_key=self.public_key,
            now=datetime.now(UTC),
            verify_cache=self.index.verify_cache,
            evidence_name=f"{self.index.operator_namespace}/{names.trusted_evidence(uid)}",
            enforcement_floor=governing.floor,
            object_problem=mcp_problem(gated, body, ns, workload) if workload is not None else None,
            on_drift=governing.on_drift,
            label_of=referenced_by(kind, label_of) if label_of is not None else None,
        )

        # the index warmed the digest when the workload changed; should a review still come first, the parsing and
        # hashing go to a worker thread, one namespace at a time (webhook/lanes.py), and the event loop answers
        # every other review meanwhile
        def fresh() -> bool:
            return workload is None or self.index.verify_cache.fresh(workload, configmaps)

        return decide() if fresh() else await self.lanes.decide(ns, decide, fresh, started)

    # ---- AIWorkloads (worker thread) ------------------------------------------------------------------------------

    def acceptances(self, request: Mapping[str, Any]) -> Answer:
        """The mutation: acceptedBy (and the spec digest) of new or changed risk acceptances."""
        body = _body(request)
        decision = self._judge_acceptances(request, body, validate_only=False)
        if not decision.allowed:
            return Answer(False, decision.message, 403)
        if not decision.patch:
            return ALLOW
        spec = _apply_json_patch({"spec": json.loads(json.dumps(body.get("spec") or {}))}, decision.patch)["spec"]
        value = spec.get("riskAcceptances")
        had = "riskAcceptances" in (body.get("spec") or {})
        if value is None:
            op: JSON = {"op": "remove", "path": "/spec/riskAcceptances"}
        else:
            op = {"op": "replace" if had else "add", "path": "/spec/riskAcceptances", "value": value}
        return Answer(patch=[op])

    def aiworkload(self, request: Mapping[str, Any]) -> Answer:
        """The validation: acceptances as stored, the policy in force, and references the user may read. A workload
        asking for a looser enforcement than the policy's floor is stored, with a warning that it does not apply."""
        body = _body(request)
        decision = self._judge_acceptances(request, body, validate_only=True)
        if not decision.allowed:
            return Answer(False, decision.message, 403)
        for check in (self._policy_problem, self._reference_problem):
            problem = check(request, body)
            if problem is not None:
                return Answer(False, problem, 403)
        namespace = str((body.get("metadata") or {}).get("namespace") or request.get("namespace") or "")
        floor = self.index.governing(namespace).floor
        note = raised(enforcement_of(body), floor)
        if note is None or floor is None:
            return ALLOW
        return Answer(warnings=[f"{note}: its rollouts are judged under {floor.enforcement}"])

    def _judge_acceptances(self, request: Mapping[str, Any], body: JSON, *, validate_only: bool) -> AcceptanceDecision:
        old = request.get("oldObject")
        namespace = str((body.get("metadata") or {}).get("namespace") or request.get("namespace") or "")
        policy = self.index.governing(namespace)
        return acceptance_patch(
            operation=str(request.get("operation") or "CREATE"),
            new_spec=body.get("spec") or {},
            old_spec=(old.get("spec") or {}) if isinstance(old, Mapping) else None,
            userinfo=dict(request.get("userInfo") or {}),
            acceptor_groups=set(self.acceptor_groups) | set(policy.acceptor_groups),
            now=datetime.now(UTC),
            validate_only=validate_only,
            spec_digest=self._bound_to(body, namespace),
        )

    def _bound_to(self, body: JSON, namespace: str) -> str | None:
        """The acceptance digest of the spec as it will be stored (its ConfigMaps from the index, or read when the
        index does not hold them yet: a new reference); None when it cannot be resolved (the acceptance is then
        recorded unbound, as the CLI's are). Only when the spec has acceptances."""
        if not (body.get("spec") or {}).get("riskAcceptances"):
            return None
        try:
            workload = workload_from_api(body)
            held = self.index.configmaps_of(namespace)
            fetch = self.index.fetch_configmap

            def read(name: str) -> Mapping[str, Any] | None:
                cm = held.get(name)
                if cm is None and fetch is not None:
                    cm = fetch(namespace, name)
                return None if cm is None else (cm.get("data") or {})

            return acceptance_digest(resolve(workload, configmap_lookup(namespace, read)))
        except WorkloadError:
            return None

    def _policy_problem(self, request: Mapping[str, Any], body: JSON) -> str | None:
        """What the governing AIGatePolicies refuse (validity, endpoints, SLO floors, unacceptable gates)."""
        if request.get("operation") not in ("CREATE", "UPDATE"):
            return None
        try:
            workload = workload_from_api(body)
        except WorkloadError:
            return None
        policy = self.index.governing(workload.metadata.namespace)
        refused = violations(workload, policy)
        if not refused:
            return None
        return f"refused by {governed_by(policy.names)}: " + "; ".join(refused)

    def _reference_problem(self, request: Mapping[str, Any], body: JSON) -> str | None:
        """The requesting user may read every Secret and ConfigMap this request adds a reference to (a
        SubjectAccessReview each: one API call per added reference, on the rare create or edit of an AIWorkload)."""
        if request.get("operation") not in ("CREATE", "UPDATE"):
            return None
        try:
            new = workload_from_api(body)
        except WorkloadError:
            return None  # refused by the CRD or marked InvalidSpec: nothing is read for a spec aigate cannot parse
        old = None
        if isinstance(request.get("oldObject"), Mapping):
            with contextlib.suppress(WorkloadError):
                old = workload_from_api(request["oldObject"])
        ns = new.metadata.namespace
        userinfo = dict(request.get("userInfo") or {})
        denied = [r for r in added(new, old) if not self.may(userinfo, "get", r.resource, ns, r.name)]
        return reference_refusal(str(userinfo.get("username") or ""), ns, denied)


def aiworkload_shape_problem(request: Mapping[str, Any]) -> str | None:
    """An AIWorkload whose metadata or spec is not an object: the mutating (acceptances) webhook sees it before the
    API server checks the CRD's schema, so it is refused here in words, not left to fail on the first lookup."""
    for where in ("object", "oldObject"):
        obj = request.get(where)
        if not isinstance(obj, Mapping):
            continue
        for part in ("metadata", "spec"):
            if part in obj and not isinstance(obj[part], Mapping):
                return f"AIWorkload {part} must be an object (request.{where}.{part} is {type(obj[part]).__name__})"
    return None


def _body(request: Mapping[str, Any]) -> JSON:
    obj = request.get("object")
    if not isinstance(obj, dict):
        obj = request.get("oldObject")
    return obj if isinstance(obj, dict) else {}


def _apply_json_patch(doc: JSON, ops: list[JSON]) -> JSON:
    """add / replace / remove on object and list paths: enough for acceptance_patch's acceptedBy patches."""
    for op in ops:
        *parents, leaf = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
        node: Any = doc
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        key: Any = int(leaf) if isinstance(node, list) else leaf
        if op["op"] == "remove":
            del node[key]
        else:
            node[key] = op["value"]
    return doc
