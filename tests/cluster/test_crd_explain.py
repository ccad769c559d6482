"""What a person sees of the CRD on a real API server: `kubectl explain` prints every field's description, and
`kubectl get aiworkloads` prints figures that read well (units, one cost-ratio format)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from aigate.api.crd import openapi_schema
from aigate.api.models import KIND, AIWorkloadStatus
from localcluster.testing import Cluster

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "aiworkloads.aigate.dev.yaml"
EXAMPLE = ROOT / "examples" / "fraud-review-assistant.yaml"


@pytest.fixture(scope="module")
def crd(cluster: Cluster) -> None:
    """The AIWorkload CRD as committed, applied once (left in place: other suites use it too)."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    cluster.kubectl("wait", "--for=condition=Established", "crd/aiworkloads.aigate.dev", "--timeout=60s")
    # the API server publishes a new CRD's OpenAPI (what explain reads) a moment after it is Established
    cluster.wait_for(
        lambda: cluster.kubectl("explain", "aiworkload", check=False).returncode == 0,
        what="the AIWorkload OpenAPI schema",
    )


def _table(text: str) -> dict[str, dict[str, str]]:
    """`kubectl get` output as {name: {column: cell}}, cut at the header's column offsets (empty cells kept)."""
    header, *lines = text.splitlines()
    names = header.split()
    starts = [header.index(n) for n in names]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    rows = [{n: line[a:b].strip() for n, (a, b) in zip(names, bounds, strict=True)} for line in lines]
    return {row["NAME"]: row for row in rows}


def _words(text: str) -> str:
    return " ".join(text.split())


def _described(path: str) -> str:
    """The description the generated schema gives the field at `path` (list items looked through)."""
    node: dict[str, Any] = openapi_schema()
    for name in path.split("."):
        node = node["properties"][name]
        if node.get("type") == "array":
            node = node["items"] if "properties" in node.get("items", {}) else node
    description: str = node["description"]
    return description


@pytest.mark.usefixtures("crd")
@pytest.mark.parametrize(
    "path",
    [
        "spec.models.credentials",
        "spec.models.credentials.secretRef",
        "spec.slo.timeoutMs",
        "spec.suite.cases.expect.toolCalls.forbidden",
        "spec.riskAcceptances.acceptedBy",
        "status.summary.costRatioText",
    ],
)
def test_kubectl_explain_prints_the_description(cluster: Cluster, path: str) -> None:
    out = cluster.kubectl("explain", f"aiworkload.{path}").stdout
    assert "DESCRIPTION:" in out
    expected = _described(path)
    assert expected and _words(expected) in _words(out), out


def _workload(namespace: str, name: str) -> str:
    [doc] = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if isinstance(d, dict) and d.get("kind") == KIND]
    doc["metadata"] = {"name": name, "namespace": namespace}
    return json.dumps(doc)


@pytest.mark.usefixtures("crd")
def test_kubectl_get_shows_units_and_one_cost_ratio_format(cluster: Cluster, namespace: str) -> None:
    """The rough edge: P95 printed 1633.6 without a unit, COST-RATIO 2.4 beside 0.126."""
    figures = {"over": (2.4, 1633.6), "under": (0.126, 812.0)}
    for name, (ratio, p95) in figures.items():
        cluster.kubectl("apply", "-f", "-", input=_workload(namespace, name))
        # the status the operator writes, through the model (which fills costRatioText)
        summary = AIWorkloadStatus.model_validate({"summary": {"costRatio": ratio, "p95LatencyMs": p95}})
        patch = json.dumps({"status": summary.model_dump(mode="json", by_alias=True, exclude_none=True)})
        cluster.kubectl(
            "patch", "aiworkload", name, "-n", namespace, "--subresource=status", "--type=merge", "-p", patch
        )
    out = cluster.kubectl("get", "aiworkloads", "-n", namespace).stdout
    assert out.split()[:6] == ["NAME", "DECISION", "COST/BUDGET", "P95-MS", "EVIDENCE-EXPIRES", "AGE"], out
    rows = _table(out)
    assert (rows["over"]["COST/BUDGET"], rows["over"]["P95-MS"]) == ("2.40x", "1633"), out
    assert (rows["under"]["COST/BUDGET"], rows["under"]["P95-MS"]) == ("0.13x", "812"), out
    assert rows["over"]["DECISION"] == ""  # not written here: the columns do not shift
