"""Which ConfigMaps the webhook's index keeps data for (`aigate.policy.configmaps`), and what the others cost it."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml

from aigate.policy.configmaps import (
    configmap_entry,
    configmaps_read,
)

OPERATOR_NS = "aigate-system"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fraud-review-assistant-remediated.yaml"


def example() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The remediated example's AIWorkload and ConfigMaps, with the uid and resourceVersion an API server gives."""
    docs = list(yaml.safe_load_all(EXAMPLE.read_text()))
    wl = next(d for d in docs if d["kind"] == "AIWorkload")
    wl["metadata"].update(uid="wl-uid", resourceVersion="7")
    cms = {}
    for d in docs:
        if d["kind"] == "ConfigMap":
            d["metadata"].update(uid=f"uid-{d['metadata']['name']}", resourceVersion="1")
            cms[d["metadata"]["name"]] = d
    return wl, cms


def with_refs(**spec: Any) -> dict[str, Any]:
    wl, _ = example()
    wl["spec"].update(spec)
    return wl


# --- which ConfigMaps a workload reads -----------------------------------------------------------------------------


def test_a_workload_reads_its_prompts_suite_import_and_tool_manifests() -> None:
    wl, _ = example()
    assert configmaps_read(wl) == {"fraud-prompts"}
    wl = with_refs(suite={"configMapRef": {"name": "suite-cm", "key": "cases.yaml"}})
    wl["spec"]["tools"][0]["manifest"] = {"configMapRef": {"name": "tool-cm", "key": "schema.json"}}
    assert configmaps_read(wl) == {"fraud-prompts", "suite-cm", "tool-cm"}
    wl = with_refs(suite={"import": {"promptfoo": {"configMapRef": {"name": "pf", "key": "promptfooconfig.yaml"}}}})
    assert configmaps_read(wl) == {"fraud-prompts", "pf"}


def test_a_spec_aigate_cannot_parse_reads_nothing() -> None:
    wl = with_refs(models="not a list")
    assert configmaps_read(wl) == frozenset()
    assert configmaps_read({"metadata": {"name": "x", "namespace": "y"}}) == frozenset()


def test_an_entry_keeps_identity_and_version_and_data_only_when_asked() -> None:
    body: dict[str, Any] = {
        "metadata": {
            "name": "p",
            "namespace": "team",
            "uid": "u1",
            "resourceVersion": "42",
            "labels": {"a": "b"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "x" * 1000},
            "managedFields": [{"manager": "kubectl"}],
        },
        "data": {"system.md": "be careful"},
    }
    kept = configmap_entry(body, keep_data=True)
    dropped = configmap_entry(body, keep_data=False)
    meta = {"name": "p", "namespace": "team", "uid": "u1", "resourceVersion": "42"}
    assert kept == {"metadata": meta, "data": {"system.md": "be careful"}}
    assert dropped == {"metadata": meta}
    body["data"]["system.md"] = "changed"
    assert kept["data"]["system.md"] == "be careful", "an entry must be a copy, not a view of the event's body"
    assert configmap_entry({"metadata": meta}, keep_data=True)["data"] == {}


# --- what unrelated ConfigMaps cost the index ------------------------------------------------------------------------


def test_unrelated_configmaps_cost_the_index_their_identity_not_their_data(capsys: pytest.CaptureFixture[str]) -> None:
    """N ConfigMaps of 100 KB that no workload reads, indexed as the webhook indexes them, measured with
    tracemalloc, against keeping their data (what the index did before)."""
    n, size = 200, 100 * 1024

    def event(i: int) -> dict[str, Any]:
        """A watch event's body: fresh strings, as the JSON decoder makes them, dropped after indexing."""
        meta = {"name": f"blob-{i}", "namespace": "team", "uid": f"uid-{i:05d}", "resourceVersion": str(i)}
        return {"metadata": meta, "data": {"blob": f"{i:06d}" + "x" * (size - 6)}}

    def measure(keep_all: bool) -> int:
        tracemalloc.start()
        index = {}
        for i in range(n):
            body = event(i)
            name = body["metadata"]["name"]
            index[("team", name)] = configmap_entry(body, keep_data=keep_all)
            del body
        used = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert len(index) == n
        return used

    before, after = measure(keep_all=True), measure(keep_all=False)
    with capsys.disabled():
        print(
            f"\nindex of {n} unrelated ConfigMaps of {size // 1024} KB: data kept {before / 2**20:.1f} MiB, "
            f"identity only {after / 2**10:.0f} KiB ({after / n:.0f} B each)"
        )
    assert before > n * size  # the data itself
    assert after < n * 1024, "an unrelated ConfigMap costs the index more than its identity"
