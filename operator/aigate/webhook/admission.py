"""Admission plumbing: gather what the rollout decision (`aigate.policy.rollout`) needs from the operator's
in-memory indexes, with the spec digest and the signature check remembered (`VerifyCache`).

No API call happens in the request path, so a decision costs microseconds (a signature check once per envelope)
and cannot time out on a slow API server.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from aigate.api.digest import spec_digest
from aigate.api.errors import WorkloadError
from aigate.api.load import configmap_lookup, resolve, workload_from_api
from aigate.api.models import WORKLOAD_LABEL
from aigate.evidence import (
    EvidenceError,
    EvidenceExpired,
    EvidencePredicate,
    PublicKey,
    VerifiedEvidence,
    key_id,
    parse_predicate,
    verify_envelope,
    verify_evidence,
)
from aigate.kube import names
from aigate.policy.canary import standing_drift
from aigate.policy.governance import Floor, OnDrift
from aigate.policy.rollout import EvidenceCheck, RolloutDecision, decide_rollout, label_decision
from aigate.policy.text import MAX_REASON, one_line
from aigate.times import rfc3339

__all__ = ["RolloutDecision", "VerifyCache", "current_spec_digest", "rollout_decision"]


@dataclass(frozen=True)
class _Outcome:
    """One verification, cached: evidence that held, or why not (with the signature-checked predicate, if any)."""

    verified: VerifiedEvidence | None
    failure: EvidenceError | None
    signed: EvidencePredicate | None


class VerifyCache:
    """Verification outcomes per (public key, sha256 of the envelope as signed - payload and signatures -,
    expected spec digest), bounded LRU in entries and in bytes (each entry costs its envelope's size).

    A hit skips JSON parsing and the ECDSA check; expiry is re-judged against `now` on every hit, since it is the
    only part of the outcome that changes with time. An outcome keeps only what a decision reads (the typed
    predicate, expiry, decision), not the statement. Thread-safe: decisions run in worker threads."""

    def __init__(self, max_entries: int = 4096, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[tuple[str, str, str], tuple[_Outcome, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._key_ids: dict[int, tuple[PublicKey, str]] = {}
        self._digests: OrderedDict[tuple[str, str], tuple[_Version, dict[str, _Version | None], str | WorkloadError]]
        self._digests = OrderedDict()
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
            return found[0]

    def put(self, key: tuple[str, str, str], outcome: _Outcome, cost: int) -> None:
        v = outcome.verified
        if v is not None:  # what a decision reads; the statement and the raw predicate stay out of memory
            outcome = _Outcome(dataclasses.replace(v, statement={}, predicate={}), outcome.failure, outcome.signed)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            self._items[key] = (outcome, cost)
            self.bytes += cost
            while self._items and (len(self._items) > self.max_entries or self.bytes > self.max_bytes):
                _, (_, freed) = self._items.popitem(last=False)
                self.bytes -= freed

    def __len__(self) -> int:
        return len(self._items)

    def _remembered(
        self, workload: Mapping[str, Any], configmaps: Mapping[str, Mapping[str, Any]]
    ) -> str | WorkloadError | None:
        meta = _meta(workload)
        version = _version(workload)
        key = (str(meta.get("namespace") or "default"), str(meta.get("name")))
        with self._lock:
            found = self._digests.get(key)
        if found is None or version is None or found[0] != version:
            return None
        if all(_version(configmaps.get(c) or {}) == v for c, v in found[1].items()):
            return found[2]
        return None

    def fresh(self, workload: Mapping[str, Any], configmaps: Mapping[str, Mapping[str, Any]]) -> bool:
        """Whether `digest` would answer from memory (no parsing, no hashing): the webhook then decides on the
        event loop; otherwise in a worker thread."""
        return self._remembered(workload, configmaps) is not None

    def digest(self, workload: Mapping[str, Any], configmaps: Mapping[str, Mapping[str, Any]]) -> str:
        """`current_spec_digest`, remembered per (uid, resourceVersion) of the workload and of each ConfigMap it
        referenced (or found missing): the API server gives an object a new resourceVersion on every write, so a
        match means the same content. A failure (WorkloadError) is remembered the same way, so a broken spec is not
        parsed again on every review. Objects without both (not from an API server) are digested every time."""
        found = self._remembered(workload, configmaps)
        if found is not None:
            with self._lock:
                self.digest_hits += 1
            if isinstance(found, WorkloadError):
                raise found
            return found
        seen: dict[str, _Version | None] = {}
        result: str | WorkloadError
        try:
            result = current_spec_digest(workload, configmaps, seen=seen)
        except WorkloadError as e:
            result = e
        version = _version(workload)
        versioned = all(v is not None or c not in configmaps for c, v in seen.items())
        if version is not None and versioned:
            meta = _meta(workload)
            key = (str(meta.get("namespace") or "default"), str(meta.get("name")))
            with self._lock:
                self._digests[key] = (version, dict(seen), result)
                self._digests.move_to_end(key)
                while len(self._digests) > self.max_entries:
                    self._digests.popitem(last=False)
        if isinstance(result, WorkloadError):
            raise result
        return result


_Version = tuple[str, str]


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _version(obj: Mapping[str, Any]) -> _Version | None:
    meta = _meta(obj)
    uid, rv = meta.get("uid"), meta.get("resourceVersion")
    return (str(uid), str(rv)) if uid and rv else None


def _signed_predicate(envelope: Mapping[str, Any], public_key: PublicKey) -> EvidencePredicate | None:
    """The predicate of an envelope whose signature verifies, whatever else is wrong with it; None otherwise."""
    try:
        statement = json.loads(verify_envelope(envelope, public_key))
        predicate = statement.get("predicate") if isinstance(statement, dict) else None
        return parse_predicate(predicate) if isinstance(predicate, dict) else None
    except (EvidenceError, ValueError):
        return None


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
                message = f"evidence expired at {rfc3339(v.expires_at)} (now {rfc3339(now)})"
                return _Outcome(None, EvidenceExpired(message, expires_at=v.expires_at), v.signed)
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
        outcome = _Outcome(None, e, predicate)
    if cache is not None and key is not None:
        cache.put(key, outcome, len(data))
    return outcome


def current_spec_digest(
    workload: Mapping[str, Any],
    configmaps: Mapping[str, Mapping[str, Any]],
    *,
    seen: dict[str, _Version | None] | None = None,
) -> str:
    """The digest of the spec and its referenced ConfigMaps as they are now (WorkloadError if one is missing).

    The input is what `workload_from_api` reads (status is not the evidence's subject). `seen` collects the
    (uid, resourceVersion) of each ConfigMap read."""
    parsed = workload_from_api(workload)

    def read(name: str) -> Mapping[str, Any] | None:
        cm = configmaps.get(name)
        if seen is not None:
            seen[name] = _version(cm) if cm is not None else None
        return None if cm is None else (cm.get("data") or {})

    return spec_digest(resolve(parsed, configmap_lookup(parsed.metadata.namespace, read)))


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
    evidence_name: str | None = None,
    enforcement_floor: Floor | None = None,
    object_problem: str | None = None,
    on_drift: OnDrift = "refuse",
    label_of: str | None = None,
) -> RolloutDecision:
    """Whether a Deployment (or kin) labelled `aigate.dev/workload` may be created or updated.

    `label_of`: who carries `labels` when it is not the object judged (policy.rollout.referenced_by).

    `object_problem`: why the object itself does not fit the workload (an MCPServer it does not declare:
    policy/mcpservers.py); judged, like an unreadable spec, under the workload's enforcement.

    `workload` is the AIWorkload the label names (None when it does not exist), `evidence_cm` its trusted evidence
    ConfigMap (`evidence_name` names it in messages), `configmaps` every ConfigMap of the namespace by name.
    Gathers, then `aigate.policy.rollout` decides."""
    settled = label_decision(kind, namespace, labels, workload is not None, label_of)
    if settled is not None or workload is None:
        assert settled is not None
        return settled
    ref = f"{namespace}/{labels[WORKLOAD_LABEL]}"
    if object_problem is not None:
        return decide_rollout(ref, workload, object_problem, None, enforcement_floor)
    cache = verify_cache
    try:
        digest = cache.digest(workload, configmaps) if cache is not None else current_spec_digest(workload, configmaps)
    except WorkloadError as e:
        return decide_rollout(ref, workload, f"spec cannot be resolved: {e.message}", None, enforcement_floor)
    except ValidationError as e:  # parse_workload wraps these; kept for a spec no model can read at all
        problem = f"spec cannot be read: {one_line(str(e), MAX_REASON)}"
        return decide_rollout(ref, workload, problem, None, enforcement_floor)
    name = str((workload.get("metadata") or {}).get("name", ""))
    cm_name = evidence_name or names.evidence_configmap(name)
    text = ((evidence_cm or {}).get("data") or {}).get(names.EVIDENCE_KEY)
    if text is None:
        found: Literal["no-configmap", "no-key"] = "no-configmap" if evidence_cm is None else "no-key"
        check = EvidenceCheck(cm_name, names.EVIDENCE_KEY, found)
    else:
        o = _verify(str(text), public_key, digest, now, cache)
        check = EvidenceCheck(cm_name, names.EVIDENCE_KEY, "ok", o.verified, o.failure, o.signed)
    # the drift the operator recorded beside this very envelope, in its own namespace (never status: trust-model.md)
    drift = standing_drift(((evidence_cm or {}).get("data") or {}).get(names.DRIFT_KEY), text)
    return decide_rollout(ref, workload, None, check, enforcement_floor, drift, on_drift)
