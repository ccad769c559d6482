"""The spec digest: what evidence is bound to, so that changing the spec or anything it references makes
old evidence stale."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aigate.api.load import ResolvedWorkload


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the same document always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def canonical_spec(resolved: ResolvedWorkload) -> bytes:
    """The bytes whose sha256 is the spec digest (`aigate digest --canonical-out` writes them)."""
    doc = {
        "apiVersion": resolved.workload.api_version,
        "kind": resolved.workload.kind,
        "namespace": resolved.workload.metadata.namespace,
        "name": resolved.workload.metadata.name,
        "spec": resolved.workload.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
        "referenced": resolved.referenced,
    }
    return canonical_json(doc)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def acceptance_digest(resolved: ResolvedWorkload) -> str:
    """What a risk acceptance is bound to: the spec digest with the risk acceptances themselves left out (recording
    an acceptance must not change what it was given for)."""
    doc = json.loads(canonical_spec(resolved))
    doc["spec"].pop("riskAcceptances", None)
    return "sha256:" + sha256_hex(canonical_json(doc))


def spec_digest(resolved: ResolvedWorkload) -> str:
    return "sha256:" + sha256_hex(canonical_spec(resolved))
