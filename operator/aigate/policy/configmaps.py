"""Which ConfigMaps admission decisions read, and what of each an index keeps.

A webhook decides from an index fed by watches. Holding the data of every ConfigMap in the cluster would let any
tenant grow the webhook's memory with ConfigMaps nothing reads (etcd's quota is the only bound). Decisions read
two kinds: the trusted evidence in the operator's namespace (its envelope) and the ConfigMaps some AIWorkload
references (their data enters the spec digest, and the acceptance digest). Every other ConfigMap is kept as its
identity and version only, so that a ConfigMap made before the AIWorkload naming it is still known to exist: the
reader then fetches its data once (the index cannot be refilled for an object that did not change).
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Any

from aigate.api.errors import WorkloadError
from aigate.api.load import configmap_names, workload_from_api

TRUSTED_EVIDENCE_PREFIX = "aigate-evidence-"
"""The name prefix of the evidence admission trusts (`controller.names.trusted_evidence`)."""

ENTRY_METADATA = ("name", "namespace", "uid", "resourceVersion")
"""What an entry keeps of a ConfigMap's metadata: identity, and the version a remembered digest is keyed on."""


def configmaps_read(workload: Mapping[str, Any]) -> frozenset[str]:
    """The ConfigMaps (names, in the workload's own namespace) that decisions about this AIWorkload read: its
    prompts, suite, promptfoo import and tool manifests. Empty for a spec that cannot be parsed: aigate reads
    nothing for it (it is marked InvalidSpec)."""
    try:
        return frozenset(configmap_names(workload_from_api(workload)))
    except WorkloadError:
        return frozenset()


def configmap_matters(
    namespace: str, name: str, *, operator_namespace: str, referenced: Container[tuple[str, str]]
) -> bool:
    """Whether a decision may read this ConfigMap's data: trusted evidence (only the operator writes its
    namespace), or one that an AIWorkload references, by (namespace, name)."""
    if namespace == operator_namespace and name.startswith(TRUSTED_EVIDENCE_PREFIX):
        return True
    return (namespace, name) in referenced


def configmap_entry(body: Mapping[str, Any], *, keep_data: bool) -> dict[str, Any]:
    """What an index keeps of one ConfigMap (a plain copy, never a live view of `body`): identity and version
    always; `data` only when `keep_data`. An entry without `data` means "exists, data not kept", never "empty":
    whoever needs its data fetches it (`has_data`)."""
    meta = body.get("metadata") or {}
    entry: dict[str, Any] = {"metadata": {k: str(meta[k]) for k in ENTRY_METADATA if meta.get(k) is not None}}
    if keep_data:
        entry["data"] = {str(k): str(v) for k, v in (body.get("data") or {}).items()}
    return entry


def has_data(entry: Mapping[str, Any]) -> bool:
    """Whether an index entry holds the ConfigMap's data (see `configmap_entry`)."""
    return "data" in entry
