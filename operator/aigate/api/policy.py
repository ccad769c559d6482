"""The AIGatePolicy resource (cluster-scoped, group aigate.dev): what platform admins decide and a workload may
only tighten. Selected by namespace labels; where several select a namespace, the strictest value of each field
wins (`aigate.policy.governance`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from aigate.api.errors import WorkloadError, format_validation_error
from aigate.api.load import yaml_documents
from aigate.api.models import DURATION_PATTERN, GateName, parse_duration

POLICY_KIND: Final = "AIGatePolicy"
POLICY_PLURAL = "aigatepolicies"


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", use_attribute_docstrings=True
    )


class LabelSelectorRequirement(_Model):
    """One requirement on a namespace label, as in Kubernetes label selectors."""

    key: str
    """The label key."""
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    """How the label's value is compared with `values`."""
    values: list[str] = Field(default_factory=list)
    """For In and NotIn: the values compared with."""


class NamespaceSelector(_Model):
    """Which namespaces a policy governs; empty: every namespace."""

    match_labels: dict[str, str] = Field(default_factory=dict)
    """Labels a namespace must carry, with these values."""
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list)
    """Further requirements on namespace labels, all of which must hold."""


class SloLimits(_Model):
    """Limits on a workload's SLOs: a workload may be stricter, never looser."""

    min_pass_rate: float | None = Field(default=None, ge=0, le=1)
    """The lowest `slo.minPassRate` a workload may declare."""
    max_error_rate: float | None = Field(default=None, ge=0, le=1)
    """The highest `slo.maxErrorRate` a workload may declare."""
    max_p95_latency_ms: float | None = Field(default=None, gt=0, alias="maxP95LatencyMs")
    """The highest `slo.p95LatencyMs` a workload may declare."""


class CanaryLimits(_Model):
    """Bounds on `spec.monitoring.canary.every`: the workload's interval is raised to the floor and lowered to the
    ceiling (a canary turned off is run at the ceiling)."""

    min_every: str | None = Field(default=None, pattern=DURATION_PATTERN, max_length=64)
    """The shortest interval (a duration, e.g. 1h): canaries no more often, whatever a workload asks."""
    max_every: str | None = Field(default=None, pattern=DURATION_PATTERN, max_length=64)
    """The longest interval (e.g. 24h): canaries at least this often, and never off."""

    @field_validator("min_every", "max_every", mode="before")
    @classmethod
    def _duration(cls, v: object) -> object:
        if isinstance(v, str):
            parse_duration(v)
        return v


class AIGatePolicySpec(_Model):
    """What the policy governs in the namespaces it selects."""

    namespace_selector: NamespaceSelector = Field(default_factory=NamespaceSelector)
    """The namespaces governed (by their labels); empty: every namespace."""
    enforcement: Literal["enforce", "warn", "audit"] | None = None
    """The enforcement floor: a workload asking for a looser mode gets this one (enforce > warn > audit)."""
    max_valid_for: str | None = Field(default=None, pattern=DURATION_PATTERN, max_length=64)
    """The longest evidence validity (a duration, e.g. 720h): a longer `evidence.validFor` is refused, and
    evidence never outlives it."""
    acceptor_groups: list[str] = Field(default_factory=list)
    """Groups whose members may accept risks (added to the operator's own setting)."""
    unacceptable_gates: list[GateName] = Field(default_factory=list)
    """Gates whose FAIL no risk acceptance may turn into ACCEPTED."""
    allowed_endpoints: list[str] = Field(default_factory=list)
    """URL prefixes a model's endpoint must start with; empty: any endpoint."""
    slo: SloLimits = Field(default_factory=SloLimits)
    """Limits on the SLOs a workload declares."""
    canary: CanaryLimits = Field(default_factory=CanaryLimits)
    """Bounds on the canary interval after launch."""
    on_drift: Literal["refuse", "warn"] | None = None
    """What a rollout gets while a canary found drift (ModelChanged, CanaryFailing) and no re-gate has passed since:
    refuse (the default) or warn (admitted with a warning)."""

    @field_validator("max_valid_for", mode="before")
    @classmethod
    def _duration(cls, v: object) -> object:
        if isinstance(v, str):
            parse_duration(v)
        return v


class PolicyMeta(BaseModel):
    """A cluster-scoped object's name (the API server owns the rest of metadata)."""

    model_config = ConfigDict(extra="allow", use_attribute_docstrings=True)

    name: str
    """The policy's name."""


class AIGatePolicy(_Model):
    """A platform's rules for AI workloads in the namespaces it selects; a workload may be stricter, never looser."""

    api_version: Literal["aigate.dev/v1alpha1"] = "aigate.dev/v1alpha1"
    """aigate.dev/v1alpha1"""
    kind: Literal["AIGatePolicy"] = POLICY_KIND
    """AIGatePolicy"""
    metadata: PolicyMeta
    """The policy's name."""
    spec: AIGatePolicySpec = Field(default_factory=AIGatePolicySpec)
    """What the policy governs."""


def load_policies(paths: Sequence[str | Path], *, any_namespace: bool = False) -> list[AIGatePolicy]:
    """The AIGatePolicy documents of these YAML files (other kinds are skipped); WorkloadError names the file and
    field of a malformed one. `any_namespace`: the CLI has no namespace labels, so every policy given applies."""
    out = []
    for path in paths:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise WorkloadError(f"cannot read: {e.strerror or e}", source=source) from None
        except UnicodeDecodeError as e:
            raise WorkloadError(f"cannot read: {e}", source=source) from None
        docs = yaml_documents(text, source)
        for doc in docs:
            if not isinstance(doc, dict) or doc.get("kind") != POLICY_KIND:
                continue
            try:
                policy = AIGatePolicy.model_validate(doc)
            except ValidationError as e:
                raise WorkloadError("; ".join(format_validation_error(e)), source=source) from None
            if any_namespace:
                policy.spec.namespace_selector = NamespaceSelector()
            out.append(policy)
        if not out:
            raise WorkloadError(f"no {POLICY_KIND} document", source=source)
    return out
