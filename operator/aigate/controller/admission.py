"""Admission decisions, as pure functions over the plain dicts the API server sends.

The operator keeps AIWorkloads and ConfigMaps in kopf in-memory indexes and calls these functions from its webhook
handlers: no API call happens in the request path, so a decision costs microseconds (a signature check once per
envelope) and cannot time out on a slow API server.

Nothing the workload's status says is trusted on its own: a rollout is allowed only when the signed evidence verifies
with the operator's public key and is bound to the spec digest computed here, from the spec and the referenced
ConfigMaps as they are now. A hand-edited status, a stale or copied evidence ConfigMap grant nothing.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from aigate.api.digest import spec_digest
from aigate.api.errors import WorkloadError
from aigate.api.load import parse_workload, resolve
from aigate.api.models import GATE_NAMES, WORKLOAD_LABEL, ConfigMapKeyRef, RiskAcceptance
from aigate.controller import names
from aigate.evidence import EvidenceError, PublicKey, VerifiedEvidence, key_id, verify_envelope, verify_evidence
from aigate.gates.acceptance import is_active

Enforcement = Literal["enforce", "warn", "audit"]
ENFORCEMENTS: tuple[Enforcement, ...] = ("enforce", "warn", "audit")
Result = Literal["allowed", "denied", "warned", "audited"]

CONDITION_GATES: dict[str, str] = {
    "CostGate": "cost",
    "ReliabilityGate": "reliability",
    "FallbackGate": "fallback",
    "ToolControlGate": "toolControl",
    "ProviderDependencyGate": "providerDependency",
    "EvidenceGate": "evidence",
}
"""status.conditions type -> gate name."""

_MAX_REASON = 200
_MAX_MESSAGE = 1500


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
class _Outcome:
    """One verification, cached: evidence that held, or why not (with the signature-checked predicate, if any,
    so that a FAIL decision can still name its gates)."""

    verified: VerifiedEvidence | None
    error: str | None
    predicate: Mapping[str, Any] | None


class VerifyCache:
    """Verification outcomes per (public key, envelope sha256, expected spec digest), bounded LRU.

    A hit skips JSON parsing and the ECDSA check; expiry is re-judged against `now` on every hit, since it is the
    only part of the outcome that changes with time. Thread-safe: kopf runs sync handlers in a thread pool."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[tuple[str, str, str], _Outcome] = OrderedDict()
        self._lock = threading.Lock()
        self._key_ids: dict[int, tuple[PublicKey, str]] = {}
        self._digests: OrderedDict[tuple[str, str], tuple[_Version, dict[str, _Version], str]] = OrderedDict()
        self.digest_hits = 0

    def key_id(self, public_key: PublicKey) -> str:
        """key_id() re-encodes the key; the operator has one key, so remember it (by identity)."""
        found = self._key_ids.get(id(public_key))
        if found is not None and found[0] is public_key:
            return found[1]
        kid = key_id(public_key)
        with self._lock:
            self._key_ids[id(public_key)] = (public_key, kid)
        return kid

    def get(self, key: tuple[str, str, str]) -> _Outcome | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: tuple[str, str, str], outcome: _Outcome) -> None:
        with self._lock:
            self._items[key] = outcome
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def digest(self, workload: Mapping[str, Any], configmaps: Mapping[str, Mapping[str, Any]]) -> str:
        """`current_spec_digest`, remembered per (uid, resourceVersion) of the workload and of each ConfigMap it
        referenced: the API server gives an object a new resourceVersion on every write, so a match means the same
        content. Objects without both (not from an API server) are digested every time."""
        meta = _meta(workload)
        version = _version(workload)
        key = (str(meta.get("namespace") or "default"), str(meta.get("name")))
        with self._lock:
            found = self._digests.get(key)
        unchanged = found is not None and version is not None and found[0] == version
        if found is not None and unchanged and all(_version(configmaps.get(c) or {}) == v for c, v in found[1].items()):
            with self._lock:
                self.digest_hits += 1
            return found[2]
        seen: dict[str, _Version | None] = {}
        digest = current_spec_digest(workload, configmaps, seen=seen)
        if version is not None and all(v is not None for v in seen.values()):
            with self._lock:
                self._digests[key] = (version, {k: v for k, v in seen.items() if v is not None}, digest)
                self._digests.move_to_end(key)
                while len(self._digests) > self.max_entries:
                    self._digests.popitem(last=False)
        return digest


_Version = tuple[str, str]


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _version(obj: Mapping[str, Any]) -> _Version | None:
    meta = _meta(obj)
    uid, rv = meta.get("uid"), meta.get("resourceVersion")
    return (str(uid), str(rv)) if uid and rv else None


def _fmt(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _signed_predicate(envelope: Mapping[str, Any], public_key: PublicKey) -> Mapping[str, Any] | None:
    """The predicate of an envelope whose signature verifies, whatever else is wrong with it; None otherwise."""
    try:
        statement = json.loads(verify_envelope(envelope, public_key))
    except (EvidenceError, ValueError):
        return None
    predicate = statement.get("predicate") if isinstance(statement, dict) else None
    return predicate if isinstance(predicate, dict) else None


def _verify(
    text: str, public_key: PublicKey, expected_digest: str, now: datetime, cache: VerifyCache | None
) -> _Outcome:
    data = text.encode("utf-8")
    key: tuple[str, str, str] | None = None
    if cache is not None:
        key = (cache.key_id(public_key), hashlib.sha256(data).hexdigest(), expected_digest)
        found = cache.get(key)
        if found is not None:
            v = found.verified
            if v is not None and v.expires_at <= now:
                return _Outcome(None, f"evidence expired at {_fmt(v.expires_at)} (now {_fmt(now)})", v.predicate)
            return found
    try:
        outcome = _Outcome(verify_evidence(data, public_key, now=now, expected_digest=expected_digest), None, None)
    except EvidenceError as e:
        predicate = None
        try:
            doc = json.loads(data)
            if isinstance(doc, dict):
                predicate = _signed_predicate(doc, public_key)
        except ValueError:
            pass
        outcome = _Outcome(None, str(e), predicate)
    if cache is not None and key is not None:
        cache.put(key, outcome)
    return outcome


def _failed_gates_from_predicate(predicate: Mapping[str, Any]) -> list[str]:
    gates = predicate.get("gates")
    out = []
    for g in gates if isinstance(gates, list) else []:
        if isinstance(g, Mapping) and g.get("status") not in ("PASS", "ACCEPTED"):
            out.append(f"{g.get('gate')} {g.get('status')}: {_one_line(str(g.get('reason') or ''), _MAX_REASON)}")
    return out


def _failed_gates_from_conditions(status: Mapping[str, Any]) -> list[str]:
    conditions = status.get("conditions")
    out = []
    for c in conditions if isinstance(conditions, list) else []:
        if not isinstance(c, Mapping):
            continue
        gate = CONDITION_GATES.get(str(c.get("type")))
        if gate is not None and c.get("status") != "True":
            why = c.get("message") or c.get("reason") or "not passed"
            out.append(f"{gate}: {_one_line(str(why), _MAX_REASON)}")
    order: dict[str, int] = {g: i for i, g in enumerate(GATE_NAMES)}
    return sorted(out, key=lambda s: order.get(s.split(":")[0], 99))


def _ready(status: Mapping[str, Any]) -> tuple[bool, str | None]:
    """Whether status claims Ready/PASS, and if not, its own words (condition message or phase)."""
    conditions = status.get("conditions")
    found = [c for c in conditions if isinstance(c, Mapping)] if isinstance(conditions, list) else []
    ready = next((c for c in found if c.get("type") == "Ready"), None)
    if status.get("decision") == "PASS" and ready is not None and ready.get("status") == "True":
        return True, None
    if ready is not None and ready.get("status") != "True" and ready.get("message"):
        return False, _one_line(str(ready["message"]), _MAX_REASON)
    phase = status.get("phase")
    if status.get("decision") is None:
        return False, f"not gated yet (phase {phase or 'Pending'})"
    return False, None


def _enforcement(workload: Mapping[str, Any]) -> Enforcement:
    """Read before anything else can fail, so that a broken spec is still judged under its own enforcement."""
    spec = workload.get("spec")
    value = spec.get("enforcement") if isinstance(spec, Mapping) else None
    return value if value in ENFORCEMENTS else "enforce"


def current_spec_digest(
    workload: Mapping[str, Any],
    configmaps: Mapping[str, Mapping[str, Any]],
    *,
    seen: dict[str, _Version | None] | None = None,
) -> str:
    """The digest of the spec and its referenced ConfigMaps as they are now (WorkloadError if one is missing).

    Only metadata.name/namespace and spec are read: status and the rest of metadata are the API server's and the
    operator's, not the evidence's subject. `seen` collects the (uid, resourceVersion) of each ConfigMap read."""
    meta = _meta(workload)
    namespace = str(meta.get("namespace") or "default")
    doc = {
        "apiVersion": workload.get("apiVersion", "aigate.dev/v1alpha1"),
        "kind": workload.get("kind", "AIWorkload"),
        "metadata": {"name": meta.get("name"), "namespace": namespace},
        "spec": workload.get("spec"),
    }
    parsed = parse_workload(doc, source=f"AIWorkload {namespace}/{meta.get('name')}")

    def lookup(ref: ConfigMapKeyRef) -> str:
        cm = configmaps.get(ref.name)
        if seen is not None:
            seen[ref.name] = _version(cm) if cm is not None else None
        if cm is None:
            raise WorkloadError(f"referenced ConfigMap {namespace}/{ref.name} not found")
        data = cm.get("data") or {}
        if ref.key not in data:
            raise WorkloadError(f"referenced ConfigMap {namespace}/{ref.name} has no key {ref.key!r}")
        return str(data[ref.key])

    return spec_digest(resolve(parsed, lookup))


def rollout_decision(
    *,
    kind: str,
    namespace: str,
    labels: Mapping[str, str],
    workload: Mapping[str, Any] | None,
    evidence_cm: Mapping[str, Any] | None,
    configmaps: Mapping[str, Mapping[str, Any]],
    public_key: PublicKey,
    now: datetime,
    verify_cache: VerifyCache | None = None,
) -> RolloutDecision:
    """Whether a Deployment (or kin) labelled `aigate.dev/workload` may be created or updated.

    `workload` is the AIWorkload the label names (None when it does not exist), `evidence_cm` its evidence ConfigMap,
    `configmaps` every ConfigMap of the namespace by name."""
    if WORKLOAD_LABEL not in labels:
        return RolloutDecision(True, f"{kind} has no {WORKLOAD_LABEL} label: not gated by aigate", result="allowed")
    wl_name = labels[WORKLOAD_LABEL]
    ref = f"{namespace}/{wl_name}"
    if not wl_name:
        return RolloutDecision(False, f"{kind} has an empty {WORKLOAD_LABEL} label", result="denied")
    if workload is None:
        return RolloutDecision(
            False,
            f"AIWorkload {ref} not found (named by the {WORKLOAD_LABEL} label of this {kind})",
            result="denied",
            workload=ref,
        )
    enforcement = _enforcement(workload)
    problem = _rollout_problem(ref, workload, evidence_cm, configmaps, public_key, now, verify_cache)
    if problem is None:
        return RolloutDecision(True, f"AIWorkload {ref} is cleared for rollout", [], "allowed", enforcement, ref)
    message = _one_line(f"AIWorkload {ref} is not cleared for rollout: {problem}", _MAX_MESSAGE)
    if enforcement == "warn":
        return RolloutDecision(True, message, [message], "warned", enforcement, ref)
    if enforcement == "audit":
        return RolloutDecision(True, message, [], "audited", enforcement, ref)
    return RolloutDecision(False, message, [], "denied", enforcement, ref)


def _rollout_problem(
    ref: str,
    workload: Mapping[str, Any],
    evidence_cm: Mapping[str, Any] | None,
    configmaps: Mapping[str, Mapping[str, Any]],
    public_key: PublicKey,
    now: datetime,
    cache: VerifyCache | None,
) -> str | None:
    """Why the rollout must not go ahead, in one phrase; None when it may."""
    try:
        digest = cache.digest(workload, configmaps) if cache is not None else current_spec_digest(workload, configmaps)
    except WorkloadError as e:
        return f"spec cannot be resolved: {e.message}"
    except ValidationError as e:  # parse_workload wraps these; kept for a spec no model can read at all
        return f"spec cannot be read: {_one_line(str(e), _MAX_REASON)}"
    status = workload.get("status") if isinstance(workload.get("status"), Mapping) else {}
    assert isinstance(status, Mapping)
    name = str((workload.get("metadata") or {}).get("name", ""))
    cm_name = names.evidence_configmap(name)
    text = ((evidence_cm or {}).get("data") or {}).get(names.EVIDENCE_KEY)
    outcome = _verify(str(text), public_key, digest, now, cache) if text is not None else None

    ready, said = _ready(status)
    if not ready:
        testing = status.get("phase") == "Testing"
        stale = outcome is not None and outcome.error is not None and outcome.verified is None
        if (
            stale
            and outcome is not None
            and outcome.error
            and ("spec changed" in outcome.error or "expired" in outcome.error)
        ):
            extra = "; a new gate run is in progress" if testing else ""
            return f"evidence in ConfigMap {cm_name} does not hold: {outcome.error}{extra}"
        if testing:
            job = (status.get("lastRun") or {}).get("job") if isinstance(status.get("lastRun"), Mapping) else None
            running = f" (Job {job})" if job else ""
            return f"a gate run is in progress for the current spec{running}; there is no evidence for it yet"
        predicate = None
        if outcome is not None:
            predicate = outcome.verified.predicate if outcome.verified is not None else outcome.predicate
        failed = _failed_gates_from_predicate(predicate) if predicate is not None else []
        if not failed:
            failed = _failed_gates_from_conditions(status)
        decision = status.get("decision")
        head = f"decision {decision}" if decision else (said or "not Ready")
        if failed:
            return f"{head}; failed gates: {'; '.join(failed)}"
        return head if said is None or said == head else f"{head} ({said})"
    if outcome is None:
        return (
            f"status says PASS but there is no signed evidence (ConfigMap {cm_name} "
            f"{'has no key ' + names.EVIDENCE_KEY if evidence_cm is not None else 'not found'})"
        )
    if outcome.error is not None:
        failed = _failed_gates_from_predicate(outcome.predicate) if outcome.predicate is not None else []
        gates = f"; failed gates: {'; '.join(failed)}" if failed else ""
        return f"evidence in ConfigMap {cm_name} does not hold: {outcome.error}{gates}"
    return None


# --- risk acceptances -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AcceptanceDecision:
    """What the AIWorkload webhooks answer: a refusal message, or a JSON patch recording who accepted."""

    allowed: bool
    message: str = ""
    patch: list[dict[str, Any]] = field(default_factory=list)
    recorded: list[int] = field(default_factory=list)
    """Indexes of riskAcceptances this request adds or changes (their acceptedBy is the requesting user)."""


def _acceptance_key(item: Mapping[str, Any]) -> tuple[str, str, datetime] | None:
    try:
        a = RiskAcceptance.model_validate({k: v for k, v in item.items() if k != "acceptedBy"})
    except ValidationError:
        return None
    return (a.gate, a.reason, a.expires)


def acceptance_patch(
    *,
    operation: str,
    new_spec: Mapping[str, Any] | None,
    old_spec: Mapping[str, Any] | None,
    userinfo: Mapping[str, Any],
    acceptor_groups: set[str],
    now: datetime,
    validate_only: bool = False,
) -> AcceptanceDecision:
    """Record the authenticated user as `acceptedBy` of each risk acceptance this request adds or changes.

    Identity comes from the API server's userInfo, never from the object: a hand-written acceptedBy is replaced.
    An acceptance unchanged from the old object (same gate, reason and expiry) keeps its acceptor, so editing
    something else does not make the editor its acceptor. Only members of `acceptor_groups` may add or change one,
    and never one that has already expired (`is_active`, the expiry judge the gates use).

    `validate_only` is the validating webhook's view of the object as it will be stored: refused if it still needs
    a patch, i.e. a later mutation left an acceptedBy other than the one this function writes."""
    d = _acceptance(operation, new_spec, old_spec, userinfo, acceptor_groups, now)
    if validate_only and d.allowed and d.patch:
        paths = ", ".join(p["path"].removeprefix("/").replace("/", ".") for p in d.patch)
        return AcceptanceDecision(False, f"acceptedBy must be the accepting user, set by aigate ({paths})")
    return d


def _acceptance(
    operation: str,
    new_spec: Mapping[str, Any] | None,
    old_spec: Mapping[str, Any] | None,
    userinfo: Mapping[str, Any],
    acceptor_groups: set[str],
    now: datetime,
) -> AcceptanceDecision:
    if operation not in ("CREATE", "UPDATE") or new_spec is None:
        return AcceptanceDecision(True)
    new_items = new_spec.get("riskAcceptances") or []
    old_items = (old_spec or {}).get("riskAcceptances") or [] if operation == "UPDATE" else []
    if not isinstance(new_items, list):
        return AcceptanceDecision(False, "spec.riskAcceptances must be a list")
    remaining: dict[tuple[str, str, datetime], list[Any]] = {}
    for item in old_items if isinstance(old_items, list) else []:
        key = _acceptance_key(item) if isinstance(item, Mapping) else None
        if key is not None:
            remaining.setdefault(key, []).append(item.get("acceptedBy"))

    user = str(userinfo.get("username") or "")
    groups = {str(g) for g in userinfo.get("groups") or []}
    patch: list[dict[str, Any]] = []
    recorded: list[int] = []
    problems: list[str] = []
    for i, item in enumerate(new_items):
        where = f"spec.riskAcceptances[{i}]"
        if not isinstance(item, Mapping):
            problems.append(f"{where} is not an object")
            continue
        key = _acceptance_key(item)
        if key is None:
            problems.append(f"{where} needs a gate ({', '.join(GATE_NAMES)}), a reason and an expiry time")
            continue
        path = f"/spec/riskAcceptances/{i}/acceptedBy"
        if remaining.get(key):
            keep = remaining[key].pop(0)
            if item.get("acceptedBy") != keep:
                patch.append({"op": "remove", "path": path} if keep is None else _set(item, path, keep))
            continue
        gate, _, expires = key
        if not user:
            problems.append(f"{where} ({gate}): the request carries no authenticated user name")
        elif not acceptor_groups & groups:
            allowed = ", ".join(sorted(acceptor_groups)) or "(none configured)"
            problems.append(
                f"user {user} may not accept risks ({where}, gate {gate}): not in any of the groups {allowed}"
            )
        if not is_active(RiskAcceptance(gate=gate, reason=key[1], expires=expires), now):
            problems.append(f"{where} ({gate}) expires in the past ({_fmt(expires)}): it would count for nothing")
        recorded.append(i)
        if item.get("acceptedBy") != user:
            patch.append(_set(item, path, user))
    if problems:
        return AcceptanceDecision(False, _one_line("; ".join(problems), _MAX_MESSAGE))
    return AcceptanceDecision(True, "", patch, recorded)


def _set(item: Mapping[str, Any], path: str, value: str) -> dict[str, Any]:
    return {"op": "replace" if "acceptedBy" in item else "add", "path": path, "value": value}


def acceptance_validation(
    *,
    operation: str,
    new_spec: Mapping[str, Any] | None,
    old_spec: Mapping[str, Any] | None,
    userinfo: Mapping[str, Any],
    acceptor_groups: set[str],
    now: datetime,
) -> AcceptanceDecision:
    """`acceptance_patch(..., validate_only=True)`."""
    return acceptance_patch(
        operation=operation,
        new_spec=new_spec,
        old_spec=old_spec,
        userinfo=userinfo,
        acceptor_groups=acceptor_groups,
        now=now,
        validate_only=True,
    )
