"""Which ConfigMaps the webhook's index keeps data for (`aigate.policy.configmaps`), and the view decisions read
them through (`aigate.controller.configmaps`): a ConfigMap indexed before the workload naming it is fetched once
per version, and gives the same spec digest as one the index kept whole."""

from __future__ import annotations

import copy
import tracemalloc
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from aigate.controller import names
from aigate.controller.admission import VerifyCache, current_spec_digest
from aigate.controller.configmaps import ConfigMapUnavailable, ConfigMapView, FetchedConfigMaps
from aigate.policy.configmaps import (
    TRUSTED_EVIDENCE_PREFIX,
    configmap_entry,
    configmap_matters,
    configmaps_read,
    has_data,
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


@pytest.mark.parametrize(
    ("namespace", "name", "referenced", "matters"),
    [
        (OPERATOR_NS, names.trusted_evidence("1234"), set(), True),
        ("team", names.trusted_evidence("1234"), set(), False),  # a tenant's lookalike: not trusted evidence
        (OPERATOR_NS, "aigate-signing-config", set(), False),
        ("team", "prompts", {("team", "prompts")}, True),
        ("team", "prompts", {("other", "prompts")}, False),  # same name, another namespace's reference
        ("team", "big-blob", {("team", "prompts")}, False),
    ],
)
def test_which_configmaps_matter(namespace: str, name: str, referenced: set[tuple[str, str]], matters: bool) -> None:
    assert configmap_matters(namespace, name, operator_namespace=OPERATOR_NS, referenced=referenced) is matters


def test_the_trusted_evidence_prefix_is_the_operators_name() -> None:
    assert names.trusted_evidence("abc").startswith(TRUSTED_EVIDENCE_PREFIX)
    assert names.evidence_configmap("abc").startswith(TRUSTED_EVIDENCE_PREFIX) is False


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
    assert kept == {"metadata": meta, "data": {"system.md": "be careful"}} and has_data(kept)
    assert dropped == {"metadata": meta} and not has_data(dropped)
    body["data"]["system.md"] = "changed"
    assert kept["data"]["system.md"] == "be careful", "an entry must be a copy, not a view of the event's body"
    assert configmap_entry({"metadata": meta}, keep_data=True)["data"] == {}


# --- the view decisions read through --------------------------------------------------------------------------------


class FakeAPI:
    """What the API server holds now, counting reads (a stand-in for `Kube.get_configmap`)."""

    def __init__(self, cms: Mapping[str, dict[str, Any]], namespace: str) -> None:
        self.objects = {(namespace, n): copy.deepcopy(c) for n, c in cms.items()}
        self.reads: list[tuple[str, str]] = []
        self.down = False

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads.append((namespace, name))
        if self.down:
            raise ConnectionError("connection refused")
        return copy.deepcopy(self.objects.get((namespace, name)))


def index_of(cms: Mapping[str, dict[str, Any]], namespace: str, keep: bool) -> dict[tuple[str, str], dict[str, Any]]:
    return {(namespace, n): configmap_entry(c, keep_data=keep) for n, c in cms.items()}


def view(index: dict[tuple[str, str], dict[str, Any]], ns: str, fetched: FetchedConfigMaps | None) -> ConfigMapView:
    return ConfigMapView(lambda n, name: index.get((n, name)), ns, fetched=fetched, listing=lambda: list(index))


def test_a_configmap_indexed_before_its_workload_is_fetched_once_and_digests_the_same() -> None:
    wl, cms = example()
    ns = wl["metadata"]["namespace"]
    whole = current_spec_digest(wl, view(index_of(cms, ns, keep=True), ns, None))
    api = FakeAPI(cms, ns)
    fetched = FetchedConfigMaps(api.get)
    index = index_of(cms, ns, keep=False)  # listed before the AIWorkload: no data kept
    cache = VerifyCache()
    assert cache.digest(wl, view(index, ns, fetched)) == whole
    assert api.reads == [(ns, "fraud-prompts")]
    # the next review: the remembered digest holds for the same versions; nothing fetched, nothing parsed
    assert cache.fresh(wl, view(index, ns, None))
    assert cache.digest(wl, view(index, ns, fetched)) == whole and len(api.reads) == 1
    # another workload reading the same ConfigMap: its data is remembered per version
    other = copy.deepcopy(wl)
    other["metadata"].update(name="second", uid="wl-2")
    other_whole = current_spec_digest(other, view(index_of(cms, ns, keep=True), ns, None))
    assert current_spec_digest(other, view(index, ns, fetched)) == other_whole and len(api.reads) == 1


def test_a_new_version_is_fetched_again_and_changes_the_digest() -> None:
    wl, cms = example()
    ns = wl["metadata"]["namespace"]
    api = FakeAPI(cms, ns)
    fetched = FetchedConfigMaps(api.get)
    index = index_of(cms, ns, keep=False)
    before = current_spec_digest(wl, view(index, ns, fetched))
    changed = api.objects[(ns, "fraud-prompts")]
    changed["data"]["system.md"] += "\nNever approve a refund."
    changed["metadata"]["resourceVersion"] = "2"
    index[(ns, "fraud-prompts")] = configmap_entry(changed, keep_data=False)
    after = current_spec_digest(wl, view(index, ns, fetched))
    assert after != before and len(api.reads) == 2


def test_a_configmap_the_index_does_not_hold_costs_no_api_call() -> None:
    wl, cms = example()
    ns = wl["metadata"]["namespace"]
    api = FakeAPI(cms, ns)
    cache = VerifyCache()
    v = view({}, ns, FetchedConfigMaps(api.get))
    for _ in range(3):
        with pytest.raises(Exception, match="referenced ConfigMap fraud/fraud-prompts not found"):
            cache.digest(wl, v)
    assert api.reads == [] and cache.digest_hits == 2


def test_one_deleted_since_it_was_indexed_is_missing() -> None:
    wl, cms = example()
    ns = wl["metadata"]["namespace"]
    api = FakeAPI({}, ns)
    v = view(index_of(cms, ns, keep=False), ns, FetchedConfigMaps(api.get))
    assert "fraud-prompts" not in v and v.get("fraud-prompts") is None


def test_an_api_failure_is_not_remembered_as_the_specs() -> None:
    wl, cms = example()
    ns = wl["metadata"]["namespace"]
    api = FakeAPI(cms, ns)
    api.down = True
    fetched = FetchedConfigMaps(api.get)
    index = index_of(cms, ns, keep=False)
    cache = VerifyCache()
    with pytest.raises(ConfigMapUnavailable, match="ConfigMap fraud/fraud-prompts could not be read"):
        cache.digest(wl, view(index, ns, fetched))
    api.down = False
    assert cache.digest(wl, view(index, ns, fetched)).startswith("sha256:")


def test_without_a_fetcher_the_view_hands_out_identity_and_version_only() -> None:
    wl, cms = example()
    ns = wl["metadata"]["namespace"]
    v = view(index_of(cms, ns, keep=False), ns, None)
    assert v["fraud-prompts"] == {
        "metadata": {"name": "fraud-prompts", "namespace": ns, "uid": "uid-fraud-prompts", "resourceVersion": "1"}
    }
    assert list(v) == ["fraud-prompts"] and len(v) == 1


def test_fetched_data_is_bounded_in_bytes() -> None:
    ns = "team"
    cms = {
        f"cm{i}": {"metadata": {"name": f"cm{i}", "uid": f"u{i}", "resourceVersion": "1"}, "data": {"k": "x" * 10_000}}
        for i in range(10)
    }
    api = FakeAPI(cms, ns)
    fetched = FetchedConfigMaps(api.get, max_bytes=35_000)
    index = index_of(cms, ns, keep=False)
    v = view(index, ns, fetched)
    for i in range(10):
        assert v[f"cm{i}"]["data"]["k"] == "x" * 10_000
    assert len(fetched) == 3 and fetched.bytes <= 35_000
    v["cm9"]  # still remembered
    assert len(api.reads) == 10
    v["cm0"]  # evicted: read again
    assert len(api.reads) == 11


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
            keep = keep_all or configmap_matters("team", name, operator_namespace=OPERATOR_NS, referenced=set())
            index[("team", name)] = configmap_entry(body, keep_data=keep)
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
