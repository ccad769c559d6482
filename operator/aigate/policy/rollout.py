"""Admit, warn or deny a rollout labelled `aigate.dev/workload`: the decision, from facts gathered elsewhere.

`webhook/admission.py` gathers (the workload and its ConfigMaps from the operator's indexes, the spec digest,
the signature check, both cached); this module decides. Nothing the workload's status says is trusted on its own:
a rollout is allowed only when signed evidence verifies and is bound to the spec digest as it is now. Status only
words the refusal when there is no signed answer to quote.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from aigate.api.models import GATE_NAMES, WORKLOAD_LABEL
from aigate.evidence import EvidenceError, EvidenceExpired, EvidencePredicate, EvidenceStale, VerifiedEvidence
from aigate.policy.canary import DriftRecord
from aigate.policy.conditions import GATE_CONDITIONS
from aigate.policy.governance import Enforcement, Floor, OnDrift, raised, strictest
from aigate.policy.kinds import GATED_KINDS, GatedKind, at
from aigate.policy.text import MAX_MESSAGE, MAX_REASON, one_line

ENFORCEMENTS: tuple[Enforcement, ...] = ("enforce", "warn", "audit")
Result = Literal["allowed", "denied", "warned", "audited"]

CONDITION_GATES: dict[str, str] = {condition: gate for gate, condition in GATE_CONDITIONS.items()}
"""status.conditions type -> gate name."""


@dataclass(frozen=True)
class RolloutDecision:
    """What the rollout webhook answers; `result` labels the metric, `message` is what kubectl prints."""

    allowed: bool
    message: str
    warnings: list[str] = field(default_factory=list)
    result: Result = "allowed"
    enforcement: Enforcement | None = None
    workload: str | None = None
    """namespace/name of the AIWorkload the label names, when there is one."""


@dataclass(frozen=True)
class EvidenceCheck:
    """What checking the stored evidence found: evidence that held, or the failure and, when the signature
    verified, the signed predicate (so that a FAIL decision can still name its gates)."""

    configmap: str
    key: str
    found: Literal["ok", "no-configmap", "no-key"]
    verified: VerifiedEvidence | None = None
    failure: EvidenceError | None = None
    signed: EvidencePredicate | None = None

    @property
    def outdated(self) -> bool:
        """Evidence that held once: for another spec, or past its expiry."""
        return isinstance(self.failure, EvidenceStale | EvidenceExpired)


def enforcement_of(workload: Mapping[str, Any]) -> Enforcement:
    """Read before anything else can fail, so that a broken spec is still judged under its own enforcement."""
    spec = workload.get("spec")
    value = spec.get("enforcement") if isinstance(spec, Mapping) else None
    return value if value in ENFORCEMENTS else "enforce"


_MAKERS: dict[tuple[str, str], frozenset[str]] = {(k.group, k.kind): k.makes for k in GATED_KINDS}


def made_by_a_gated_owner(kind: str, owner: Mapping[str, Any]) -> bool:
    """Whether one ownerReference names a gated kind (its apiVersion's group and its kind) that makes `kind`."""
    api_version = str(owner.get("apiVersion") or "")
    group = api_version.rpartition("/")[0]
    return kind in _MAKERS.get((group, str(owner.get("kind") or "")), frozenset())


def not_judged(kind: str, obj: Mapping[str, Any]) -> bool:
    """Objects the rollout webhook lets through unjudged: anything on its way out (a deletionTimestamp: the garbage
    collector, a finalizer being removed), and an object a gated owner made (an ownerReference to a Deployment for a
    ReplicaSet, to a ReplicaSet for a Pod, ...: policy/kinds.py::GATED_KINDS): its owner was judged, and scaling an
    admitted workload must never wait on evidence. A bare object, or one owned by anything else (a ConfigMap, a
    custom resource, a gated kind that does not make it), is judged. The owner is not looked up: trust-model.md says
    what a forged reference gets."""
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    if meta.get("deletionTimestamp"):
        return True
    owners = meta.get("ownerReferences")
    found = owners if isinstance(owners, list) else []
    return any(isinstance(o, Mapping) and made_by_a_gated_owner(kind, o) for o in found)


def shape_problem(gated: GatedKind, obj: Mapping[str, Any], labels: Mapping[str, str]) -> str | None:
    """A labelled object whose shape lets AI work slip past: a CronJob whose jobTemplate does not carry the same
    `aigate.dev/workload` label would spawn Jobs nobody judges once its own admission is past (GatedKind.same_label)."""
    if WORKLOAD_LABEL not in labels:
        return None
    want = labels[WORKLOAD_LABEL]
    for need in gated.same_label:
        inner = at(obj, need.path)
        found = inner.get(WORKLOAD_LABEL) if isinstance(inner, Mapping) else None
        if found == want:
            continue
        has = f"it has {found!r}" if found is not None else "it has none"
        return f"{gated.kind} {need.path} must carry {WORKLOAD_LABEL}: {want} like the {gated.kind} ({has}), {need.why}"
    return None


def label_decision(
    kind: str, namespace: str, labels: Mapping[str, str], found: bool, whose: str | None = None
) -> RolloutDecision | None:
    """The decision when the label alone settles it (no label, empty label, no such AIWorkload); else None.
    `whose`: the object carrying the label, when it is not the one judged (a Deployment a workloadRef names)."""
    if WORKLOAD_LABEL not in labels:
        return RolloutDecision(True, f"{kind} has no {WORKLOAD_LABEL} label: not gated by aigate", result="allowed")
    name = labels[WORKLOAD_LABEL]
    if not name:
        return RolloutDecision(False, f"{whose or kind} has an empty {WORKLOAD_LABEL} label", result="denied")
    if not found:
        ref = f"{namespace}/{name}"
        return RolloutDecision(
            False,
            f"AIWorkload {ref} not found (named by the {WORKLOAD_LABEL} label of {whose or f'this {kind}'})",
            result="denied",
            workload=ref,
        )
    return None


def referenced_by(kind: str, deployment: str) -> str:
    """Who carries the label a `workload_ref` brought: named in the refusal, so that the team knows where to look."""
    return f"Deployment {deployment}, which this {kind}'s spec.workloadRef names"


def through_workload_ref(decision: RolloutDecision, kind: str, deployment: str) -> RolloutDecision:
    """A decision made with the label of the Deployment an object's workloadRef names, saying so (a message the
    label decision already words that way is left as it is)."""
    whose = referenced_by(kind, deployment)
    if whose in decision.message:
        return decision
    tail = f" (the {WORKLOAD_LABEL} label came from {whose})"
    message = decision.message + tail
    warnings = [w + tail if w == decision.message else w for w in decision.warnings]
    return replace(decision, message=message, warnings=warnings)


_STRICTER: dict[Result, int] = {"allowed": 0, "audited": 1, "warned": 2, "denied": 3}


def all_of(decisions: list[RolloutDecision]) -> RolloutDecision:
    """One object judged for two workloads (a labelled Rollout whose workloadRef names a Deployment labelled for
    another): it must satisfy both. The first refusal decides; else every warning is kept, and the strictest result
    and its message stand."""
    refused = next((d for d in decisions if not d.allowed), None)
    if refused is not None:
        return refused
    first = max(decisions, key=lambda d: _STRICTER[d.result])
    warnings = [w for d in decisions for w in d.warnings]
    return replace(first, warnings=list(dict.fromkeys(warnings)))


def decide_rollout(
    ref: str,
    workload: Mapping[str, Any],
    spec_problem: str | None,
    evidence: EvidenceCheck | None,
    floor: Floor | None = None,
    drift: DriftRecord | None = None,
    on_drift: OnDrift = "refuse",
) -> RolloutDecision:
    """`spec_problem`: why the spec cannot be digested now (None when it can); `evidence`: the check of the
    stored evidence against that digest (None when the spec could not be digested); `floor`: the enforcement the
    policy in force requires, an AIGatePolicy's or the platform default's (the workload may ask for stricter,
    never looser). A refusal says when the floor, not the workload, decided it. `drift`: what a canary found against
    that very evidence (the operator's record, `canary.standing_drift`): evidence that holds no longer describes
    what answers, so under `on_drift` refuse it is a problem like any other (judged under the enforcement in force),
    under warn the rollout goes ahead with a warning."""
    own = enforcement_of(workload)
    enforcement = strictest(own, floor.enforcement if floor is not None else None)
    problem = spec_problem if spec_problem is not None else _evidence_problem(workload, evidence)
    if problem is None and drift is not None:
        said = drift_problem(drift)
        if on_drift == "refuse":
            problem = said
        else:
            message = one_line(f"AIWorkload {ref} is admitted despite drift (onDrift warn): {said}", MAX_MESSAGE)
            return RolloutDecision(True, message, [message], "warned", enforcement, ref)
    if problem is None:
        return RolloutDecision(True, f"AIWorkload {ref} is cleared for rollout", [], "allowed", enforcement, ref)
    note = raised(own, floor)
    tail = f" ({note})" if note else ""
    message = one_line(f"AIWorkload {ref} is not cleared for rollout: {problem}", MAX_MESSAGE - len(tail)) + tail
    if enforcement == "warn":
        return RolloutDecision(True, message, [message], "warned", enforcement, ref)
    if enforcement == "audit":
        return RolloutDecision(True, message, [], "audited", enforcement, ref)
    return RolloutDecision(False, message, [], "denied", enforcement, ref)


def drift_problem(drift: DriftRecord) -> str:
    """A drift, in the words of a refusal: what changed, since when, and that a re-gate decides."""
    return (
        f"drift {drift.reason} since {drift.since}: {drift.message}; the evidence no longer describes what answers "
        "until a re-gate passes"
    )


def _evidence_problem(workload: Mapping[str, Any], evidence: EvidenceCheck | None) -> str | None:
    """Why the rollout must not go ahead, in one phrase; None when it may."""
    raw = workload.get("status")
    status: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    cm_name = evidence.configmap if evidence is not None else "?"
    ready, said = _ready(status)
    if not ready:
        testing = status.get("phase") == "Testing"
        if evidence is not None and evidence.verified is None and evidence.outdated:
            extra = "; a new gate run is in progress" if testing else ""
            return f"evidence in ConfigMap {cm_name} does not hold: {evidence.failure}{extra}"
        if testing:
            last = status.get("lastRun")
            job = last.get("job") if isinstance(last, Mapping) else None
            running = f" (Job {job})" if job else ""
            return f"a gate run is in progress for the current spec{running}; there is no evidence for it yet"
        signed = None
        if evidence is not None:
            signed = evidence.verified.signed if evidence.verified is not None else evidence.signed
        failed = _failed_gates_signed(signed) if signed is not None else []
        if not failed:
            failed = _failed_gates_from_conditions(status)
        decision = status.get("decision")
        head = f"decision {decision}" if decision else (said or "not Ready")
        if failed:
            return f"{head}; failed gates: {'; '.join(failed)}"
        return head if said is None or said == head else f"{head} ({said})"
    if evidence is None or evidence.found != "ok":
        from_cm = f"has no key {evidence.key}" if evidence and evidence.found == "no-key" else "not found"
        return f"status says PASS but there is no signed evidence (ConfigMap {cm_name} {from_cm})"
    if evidence.failure is not None:
        failed = _failed_gates_signed(evidence.signed) if evidence.signed is not None else []
        gates = f"; failed gates: {'; '.join(failed)}" if failed else ""
        return f"evidence in ConfigMap {cm_name} does not hold: {evidence.failure}{gates}"
    return None


def _failed_gates_signed(signed: EvidencePredicate) -> list[str]:
    return [f"{g.gate} {g.status}: {one_line(g.reason, MAX_REASON)}" for g in signed.failed_gates]


def _failed_gates_from_conditions(status: Mapping[str, Any]) -> list[str]:
    conditions = status.get("conditions")
    out: list[tuple[str, str]] = []
    for c in conditions if isinstance(conditions, list) else []:
        if not isinstance(c, Mapping):
            continue
        gate = CONDITION_GATES.get(str(c.get("type")))
        if gate is not None and c.get("status") != "True":
            why = c.get("message") or c.get("reason") or "not passed"
            out.append((gate, one_line(str(why), MAX_REASON)))
    order: dict[str, int] = {g: i for i, g in enumerate(GATE_NAMES)}
    return [f"{gate}: {why}" for gate, why in sorted(out, key=lambda gw: order.get(gw[0], 99))]


def _ready(status: Mapping[str, Any]) -> tuple[bool, str | None]:
    """Whether status claims Ready/PASS, and if not, its own words (condition message or phase)."""
    conditions = status.get("conditions")
    found = [c for c in conditions if isinstance(c, Mapping)] if isinstance(conditions, list) else []
    ready = next((c for c in found if c.get("type") == "Ready"), None)
    if status.get("decision") == "PASS" and ready is not None and ready.get("status") == "True":
        return True, None
    if ready is not None and ready.get("status") != "True" and ready.get("message"):
        return False, one_line(str(ready["message"]), MAX_REASON)
    phase = status.get("phase")
    if status.get("decision") is None:
        return False, f"not gated yet (phase {phase or 'Pending'})"
    return False, None
