"""Which ConfigMaps admission decisions read, and what of each an index keeps.

A webhook decides from an index fed by watches. Holding the data of every ConfigMap in the cluster would let any
tenant grow the webhook's memory with ConfigMaps nothing reads (etcd's quota is the only bound). Decisions read
two kinds: the trusted evidence in the operator's namespace (its envelope) and the ConfigMaps some AIWorkload
references (`configmaps_read`: their data enters the spec digest, and the acceptance digest). `aigate webhook`'s
index (aigate.webhook.index) keeps those, as `configmap_entry` makes them, and drops every other ConfigMap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aigate.api.errors import WorkloadError
from aigate.api.load import configmap_names, workload_from_api

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


def configmap_entry(body: Mapping[str, Any], *, keep_data: bool) -> dict[str, Any]:
    """What an index keeps of one ConfigMap (a plain copy, never a live view of `body`): identity and version
    always; `data` only when `keep_data`. An entry without `data` means "exists, data not kept", never "empty"."""
    meta = body.get("metadata") or {}
    entry: dict[str, Any] = {"metadata": {k: str(meta[k]) for k in ENTRY_METADATA if meta.get(k) is not None}}
    if keep_data:
        entry["data"] = {str(k): str(v) for k, v in (body.get("data") or {}).items()}
    return entry
