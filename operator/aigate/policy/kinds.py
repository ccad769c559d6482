"""The registry of gated kinds: every kind the rollout webhook judges when it carries the `aigate.dev/workload`
label, and where, in an object of that kind, the things the webhook and `kubectl aigate why` read are.

One declarative entry per kind, no branch per kind anywhere else: the webhook's rules (webhook/configurations.py,
the chart's templates/webhooks.yaml, compared by tests/test_chart.py), the review's resource names, the owner rule
(policy/rollout.py::not_judged), the label-carrying check (policy/rollout.py::shape_problem), the MCP server check
(policy/mcpservers.py) and the pod specs `kubectl aigate why -f` shows are all read from GATED_KINDS.
tests/test_upstream_crds.py checks every path below against the kind's upstream CRD at a pinned release.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

LABELS = "metadata.labels"
"""Where every gated kind carries the label: its own metadata, as a Deployment does."""


@dataclass(frozen=True)
class SameLabel:
    """A label map inside the object that must carry the object's own `aigate.dev/workload` value, and why."""

    path: str
    why: str


@dataclass(frozen=True)
class McpServing:
    """How an object of this kind serves MCP: where its image and port are, and the in-cluster host its operator
    serves it at (`{name}` and `{namespace}` filled in). policy/mcpservers.py matches it to what the workload
    declares."""

    image: str
    port: str
    default_port: int
    host: str


@dataclass(frozen=True)
class GatedKind:
    """A kind the rollout webhook judges when it carries the `aigate.dev/workload` label."""

    group: str
    version: str
    """The version the webhook rule names; matchPolicy Equivalent sends the kind's other served versions too."""
    resource: str
    kind: str
    makes: frozenset[str] = frozenset()
    """The kinds it creates from the spec it was judged with, at once: an object of one of them owned by an object
    of this kind is let through (its owner was judged; scaling never waits on aigate). A CronJob makes Jobs later, on
    a schedule: each is judged when it is made, so it lets nothing through."""
    pod_specs: tuple[str, ...] = ()
    """Dotted paths to the pod specs (containers and all) it runs; absent ones are skipped."""
    same_label: tuple[SameLabel, ...] = ()
    value: str | None = None
    """The chart value `webhook.gatedKinds.<value>` that turns this kind off; None: always judged."""
    mcp: McpServing | None = None
    """Set for a kind that serves MCP: it must be one of the MCP servers the workload declares."""
    workload_ref: str | None = None
    """Dotted path to an {apiVersion, kind, name} naming, in the object's namespace, an apps/v1 Deployment whose pod
    template it runs: the object is then judged by that Deployment's label too, carrying one itself or not (its own
    webhook entry sends the unlabelled ones: webhook/configurations.py)."""


def _template(path: str) -> str:
    return f"{path}.spec"


GATED_KINDS: tuple[GatedKind, ...] = (
    GatedKind("", "v1", "pods", "Pod", pod_specs=("spec",)),
    GatedKind(
        "", "v1", "replicationcontrollers", "ReplicationController", frozenset({"Pod"}), (_template("spec.template"),)
    ),
    GatedKind("apps", "v1", "deployments", "Deployment", frozenset({"ReplicaSet"}), (_template("spec.template"),)),
    GatedKind("apps", "v1", "replicasets", "ReplicaSet", frozenset({"Pod"}), (_template("spec.template"),)),
    GatedKind("apps", "v1", "statefulsets", "StatefulSet", frozenset({"Pod"}), (_template("spec.template"),)),
    GatedKind("apps", "v1", "daemonsets", "DaemonSet", frozenset({"Pod"}), (_template("spec.template"),)),
    GatedKind("batch", "v1", "jobs", "Job", frozenset({"Pod"}), (_template("spec.template"),)),
    GatedKind(
        "batch",
        "v1",
        "cronjobs",
        "CronJob",
        pod_specs=(_template("spec.jobTemplate.spec.template"),),
        same_label=(
            SameLabel("spec.jobTemplate.metadata.labels", "so that each Job it creates is judged when it is created"),
        ),
    ),
    # spec.template, or spec.workloadRef naming a Deployment whose template it runs: that Deployment is judged by
    # its own label when it is written, and the Rollout by its own label and the Deployment's (docs/gated-kinds.md)
    GatedKind(
        "argoproj.io",
        "v1alpha1",
        "rollouts",
        "Rollout",
        frozenset({"ReplicaSet"}),
        (_template("spec.template"),),
        value="argoRollouts",
        workload_ref="spec.workloadRef",
    ),
    # KServe: raw deployments make Deployments; serverless ones a Knative Service (judged again if it carries the
    # label: it names the same workload)
    GatedKind(
        "serving.kserve.io",
        "v1beta1",
        "inferenceservices",
        "InferenceService",
        frozenset({"Deployment"}),
        ("spec.predictor", "spec.transformer", "spec.explainer"),
        value="inferenceServices",
    ),
    GatedKind(
        "serving.kserve.io",
        "v1alpha1",
        "llminferenceservices",
        "LLMInferenceService",
        frozenset({"Deployment", "LeaderWorkerSet"}),
        ("spec.template", "spec.worker", "spec.prefill.template", "spec.prefill.worker"),
        value="llmInferenceServices",
    ),
    GatedKind(
        "leaderworkerset.x-k8s.io",
        "v1",
        "leaderworkersets",
        "LeaderWorkerSet",
        frozenset({"StatefulSet"}),
        (
            _template("spec.leaderWorkerTemplate.leaderTemplate"),
            _template("spec.leaderWorkerTemplate.workerTemplate"),
        ),
        value="leaderWorkerSets",
    ),
    # its Configurations and Revisions are not gated kinds; the Deployment a Revision owns is judged again if it
    # carries the label
    GatedKind(
        "serving.knative.dev", "v1", "services", "Service", pod_specs=("spec.template.spec",), value="knativeServices"
    ),
    GatedKind(
        "toolhive.stacklok.dev",
        "v1beta1",
        "mcpservers",
        "MCPServer",
        frozenset({"Deployment"}),
        (_template("spec.podTemplateSpec"),),
        value="mcpServers",
        mcp=McpServing("spec.image", "spec.proxyPort", 8080, "mcp-{name}-proxy.{namespace}.svc.cluster.local"),
    ),
)
"""Every kind that makes pods, and what each makes: the one table the webhook's rules, the review's resource
names and the owner check are read from. Adding a kind is one entry here and its test (docs/architecture.md)."""

BY_RESOURCE: dict[tuple[str, str], GatedKind] = {(k.group, k.resource): k for k in GATED_KINDS}
BY_KIND: dict[tuple[str, str], GatedKind] = {(k.group, k.kind): k for k in GATED_KINDS}


def at(obj: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path, or None where any step is missing or not a mapping."""
    node: Any = obj
    for step in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(step)
    return node


_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
REFERENCED = ("apps/v1", "Deployment")
"""The only (apiVersion, kind) a `workload_ref` is followed to: what the webhook may read (the chart's RBAC)."""


def referenced_deployment(gated: GatedKind, obj: Mapping[str, Any]) -> str | None:
    """The name of the Deployment an object's `workload_ref` names (in its own namespace); None without one, or when
    it names another kind or version (Argo Rollouts also takes a ReplicaSet or a PodTemplate: docs/gated-kinds.md
    says what that gets)."""
    ref = at(obj, gated.workload_ref) if gated.workload_ref is not None else None
    if not isinstance(ref, Mapping) or (ref.get("apiVersion"), ref.get("kind")) != REFERENCED:
        return None
    name = ref.get("name")
    # no Deployment has any other name, and only such a name goes into the GET's path
    return name if isinstance(name, str) and len(name) <= 253 and _DNS_SUBDOMAIN.fullmatch(name) else None


def gated_kind_of(obj: Mapping[str, Any]) -> GatedKind | None:
    """The registry entry for an object by its apiVersion's group and kind (a manifest, not a review)."""
    group = str(obj.get("apiVersion") or "").rpartition("/")[0]
    return BY_KIND.get((group, str(obj.get("kind") or "")))


def images(gated: GatedKind, obj: Mapping[str, Any]) -> list[str]:
    """The images an object of `gated` runs: its pod specs' init and main containers, then its MCP image."""
    found: list[str] = []
    for path in gated.pod_specs:
        spec = at(obj, path)
        if not isinstance(spec, Mapping):
            continue
        for key in ("initContainers", "containers"):
            containers = spec.get(key)
            for c in containers if isinstance(containers, list) else []:
                image = c.get("image") if isinstance(c, Mapping) else None
                if isinstance(image, str) and image not in found:
                    found.append(image)
    image = at(obj, gated.mcp.image) if gated.mcp is not None else None
    if isinstance(image, str) and image not in found:
        found.append(image)
    return found
