"""The AIWorkload resource as pydantic models: the one definition the CLI, the CRD and the operator share.

Field names are the Kubernetes (camelCase) names; Python attributes are their snake_case twins.
Every field has a single JSON type so that the generated CRD schema is structural.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

API_GROUP = "aigate.dev"
API_VERSION = "v1alpha1"
KIND = "AIWorkload"
PLURAL = "aiworkloads"
WORKLOAD_LABEL = "aigate.dev/workload"

Provider = Literal["openai", "anthropic", "azure-openai", "openai-compatible"]
GateName = Literal["cost", "reliability", "fallback", "toolControl", "providerDependency", "evidence"]
GATE_NAMES: tuple[GateName, ...] = (
    "cost",
    "reliability",
    "fallback",
    "toolControl",
    "providerDependency",
    "evidence",
)

DEFAULT_ENDPOINTS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
}

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DURATION = re.compile(r"^(\d+(\.\d+)?(d|h|m|s|ms))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(d|h|ms|m|s)")
_DURATION_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
DURATION_PATTERN = _DURATION.pattern


MAX_DURATION = timedelta(days=3650)
"""Ten years: longer than any evidence should live, and far from what a datetime can hold."""


def parse_duration(text: str) -> timedelta:
    """Go-style durations ("720h", "1h30m", "90s") plus "d" for days, as Kubernetes users write them, at most
    MAX_DURATION (a ValueError, never an OverflowError, whatever the digits)."""
    if len(text) > 64 or not _DURATION.match(text):
        raise ValueError(f"must be a duration such as 720h, 30d or 90m (got {text[:64]!r})")
    seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
    if not seconds <= MAX_DURATION.total_seconds():
        raise ValueError(f"must be at most {MAX_DURATION.days}d (got {text!r})")
    return timedelta(seconds=seconds)


class _Model(BaseModel):
    """camelCase on the wire, unknown fields refused so that a typo is an error, not a silent default."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=False,
    )


class SecretKeyRef(_Model):
    name: str = Field(min_length=1, description="Secret name, in the workload's namespace.")
    key: str = Field(min_length=1, description="Key within the Secret.")


class ConfigMapKeyRef(_Model):
    name: str = Field(min_length=1, description="ConfigMap name, in the workload's namespace.")
    key: str = Field(min_length=1, description="Key within the ConfigMap.")


class Credentials(_Model):
    """Where an API key comes from: a Secret in a cluster, an environment variable on a laptop or in CI."""

    secret_ref: SecretKeyRef | None = None
    env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @model_validator(mode="after")
    def _one_source(self) -> Credentials:
        if self.secret_ref is None and self.env is None:
            raise ValueError("set secretRef or env")
        return self


class Pricing(_Model):
    input_per_m_tok_usd: float = Field(alias="inputPerMTokUSD", ge=0, description="USD per million input tokens.")
    output_per_m_tok_usd: float = Field(alias="outputPerMTokUSD", ge=0, description="USD per million output tokens.")


class ModelRef(_Model):
    name: str = Field(min_length=1, description="Name of this path, unique in the workload.")
    role: Literal["primary", "fallback"] = "primary"
    provider: Provider
    model: str = Field(min_length=1, description="Model id (Azure: the deployment name).")
    endpoint: AnyHttpUrl | None = Field(default=None, description="Base URL; default per provider.")
    api_version: str | None = Field(default=None, description="Azure OpenAI api-version query parameter.")
    cloud: str | None = Field(default=None, description="Cloud the endpoint runs in, for dependency analysis.")
    credentials: Credentials | None = None
    pricing: Pricing | None = None
    stream: bool = Field(default=False, description="Call with streaming on and measure time to first token.")
    max_tokens: int = Field(default=1024, gt=0, description="max_tokens sent with each request.")
    temperature: float | None = Field(default=None, ge=0, le=2)

    @model_validator(mode="after")
    def _endpoint_needed(self) -> ModelRef:
        if self.endpoint is None and self.provider in ("azure-openai", "openai-compatible"):
            raise ValueError(f"@endpoint: required for provider {self.provider}")
        return self

    def base_url(self) -> str:
        return str(self.endpoint).rstrip("/") if self.endpoint else DEFAULT_ENDPOINTS[self.provider]

    @property
    def provider_family(self) -> str:
        """The company behind the path: openai-compatible servers are their own provider, keyed by host."""
        if self.provider == "openai-compatible" and self.endpoint is not None:
            return f"openai-compatible:{self.endpoint.host}"
        return "openai" if self.provider == "azure-openai" else self.provider


class Traffic(_Model):
    requests_per_day: int = Field(gt=0, description="Expected production volume.")
    peak_requests_per_second: float = Field(gt=0, description="Peak load; sets the test concurrency.")
    max_test_concurrency: int = Field(
        default=32, gt=0, le=1000, description="Cap on concurrent requests during the gate run."
    )


class Budget(_Model):
    monthly_usd: float = Field(alias="monthlyUSD", gt=0, description="Monthly spend the workload must stay within.")
    max_cost_per_request_usd: float | None = Field(alias="maxCostPerRequestUSD", default=None, gt=0)
    gate_run_max_usd: float = Field(
        alias="gateRunMaxUSD", default=5.0, gt=0, description="The gate run stops before spending more."
    )


class Slo(_Model):
    p95_latency_ms: float = Field(gt=0)
    timeout_ms: float | None = Field(default=None, gt=0, description="Per-request timeout; required to pass.")
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    min_pass_rate: float = Field(default=0.95, ge=0, le=1)


class Retries(_Model):
    attempts: int = Field(default=0, ge=0, le=10, description="Retries on the same model before failing over.")
    backoff_ms: float = Field(default=200, ge=0)


class HumanRoute(_Model):
    url: AnyHttpUrl
    credentials: Credentials | None = None


class SafeStop(_Model):
    message: str = Field(min_length=1)


class Fallback(_Model):
    retries: Retries = Field(default_factory=Retries)
    human_route: HumanRoute | None = None
    safe_stop: SafeStop | None = None
    deadline_ms: float | None = Field(
        default=None, gt=0, description="End-to-end deadline per case; default 3 x slo.timeoutMs."
    )


class Source(_Model):
    """Text that lives outside the workload: a ConfigMap key in a cluster, a file next to it on a laptop."""

    config_map_ref: ConfigMapKeyRef | None = None
    file: str | None = Field(default=None, min_length=1, description="Path relative to the workload file.")
    inline: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Source:
        given = [x for x in (self.config_map_ref, self.file, self.inline) if x is not None]
        if len(given) != 1:
            raise ValueError("set exactly one of configMapRef, file, inline")
        return self


class Tool(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    access: Literal["read", "write", "destructive"] | None = Field(
        default=None, description="read | write | destructive; required to pass toolControl."
    )
    approval: Literal["required", "none"] = "none"
    description: str | None = None
    parameters: dict[str, Any] | None = Field(default=None, description="JSON schema of the arguments.")
    manifest: Source | None = Field(default=None, description="Tool manifest (JSON schema) kept elsewhere.")


class McpServer(_Model):
    name: str = Field(min_length=1)
    url: AnyHttpUrl
    credentials: Credentials | None = None


class ToolCallExpect(_Model):
    allowed: list[str] | None = Field(default=None, description="Only these tools may be called.")
    forbidden: list[str] = Field(default_factory=list)


class Expect(_Model):
    json_schema: dict[str, Any] | None = None
    contains: list[str] = Field(default_factory=list)
    not_contains: list[str] = Field(default_factory=list)
    regex: str | None = None
    tool_calls: ToolCallExpect | None = None
    max_latency_ms: float | None = Field(default=None, gt=0)

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"not a valid regular expression: {e}") from None
        return v


class Message(_Model):
    role: Literal["system", "user", "assistant"]
    content: str


class Case(_Model):
    name: str = Field(min_length=1)
    adversarial: bool = False
    messages: list[Message] = Field(min_length=1)
    expect: Expect = Field(default_factory=Expect)


class Suite(_Model):
    repeats: int = Field(default=1, ge=1, le=100)
    cases: list[Case] | None = None
    config_map_ref: ConfigMapKeyRef | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Suite:
        given = [x for x in (self.cases, self.config_map_ref, self.file) if x is not None]
        if len(given) != 1:
            raise ValueError("set exactly one of cases, configMapRef, file")
        if self.cases is not None:
            _unique([c.name for c in self.cases], "case name")
        return self


class EvidencePolicy(_Model):
    valid_for: str = Field(default="720h", pattern=DURATION_PATTERN, max_length=64)
    regate_before: str = Field(default="24h", pattern=DURATION_PATTERN, max_length=64)

    @field_validator("valid_for", "regate_before", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        if isinstance(v, str):
            parse_duration(v)
        return v

    def valid_for_delta(self) -> timedelta:
        return parse_duration(self.valid_for)

    def regate_before_delta(self) -> timedelta:
        return parse_duration(self.regate_before)


class RiskAcceptance(_Model):
    gate: GateName
    reason: str = Field(min_length=1)
    expires: datetime
    accepted_by: str | None = Field(default=None, description="Set by the admission webhook from the user.")

    @field_validator("expires")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return v if v.tzinfo else v.replace(tzinfo=UTC)


class AIWorkloadSpec(_Model):
    owner: str = Field(min_length=1, description="Who answers for the workload.")
    enforcement: Literal["enforce", "warn", "audit"] = "enforce"
    models: list[ModelRef] = Field(min_length=1, max_length=16)
    traffic: Traffic
    budget: Budget
    slo: Slo
    fallback: Fallback = Field(default_factory=Fallback)
    tools: list[Tool] = Field(default_factory=list)
    mcp_servers: list[McpServer] = Field(default_factory=list)
    service_account_name: str | None = None
    prompts: list[Source] = Field(default_factory=list)
    suite: Suite
    evidence: EvidencePolicy = Field(default_factory=EvidencePolicy)
    risk_acceptances: list[RiskAcceptance] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> AIWorkloadSpec:
        primaries = [m.name for m in self.models if m.role == "primary"]
        if len(primaries) != 1:
            raise ValueError(f"@models: exactly one model must have role primary (found {len(primaries)})")
        _unique([m.name for m in self.models], "model name")
        _unique([t.name for t in self.tools], "tool name")
        _unique([s.name for s in self.mcp_servers], "MCP server name")
        return self

    @property
    def primary(self) -> ModelRef:
        return next(m for m in self.models if m.role == "primary")

    @property
    def fallbacks(self) -> list[ModelRef]:
        return [m for m in self.models if m.role == "fallback"]


class ObjectMeta(BaseModel):
    """The parts of metadata aigate reads; the rest of what the API server sends is kept as is."""

    model_config = ConfigDict(extra="allow")

    name: str
    namespace: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    generation: int | None = None
    uid: str | None = None

    @field_validator("name")
    @classmethod
    def _dns(cls, v: str) -> str:
        if len(v) > 253 or not _DNS1123.match(v):
            raise ValueError("must be a lowercase DNS-1123 name (a-z, 0-9, '-', '.'), at most 253 characters")
        return v


class Condition(_Model):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    message: str = ""
    observed_generation: int | None = None
    last_transition_time: datetime


class EvidenceRef(_Model):
    config_map: str | None = None
    digest: str | None = None
    key_id: str | None = None
    issued_at: datetime | None = None
    expires_at: datetime | None = None


class LastRun(_Model):
    job: str | None = None
    namespace: str | None = None
    """The gate namespace the Job runs in (operator-owned: tenants have no rights there)."""
    run_id: str | None = None
    job_uid: str | None = None
    """The uid of the Job the operator created: a result is taken only from that Job, once."""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    spent_usd: float | None = Field(default=None, alias="spentUSD")


class StatusSummary(_Model):
    cost_ratio: float | None = Field(default=None, description="Projected monthly cost / budget.")
    projected_monthly_usd: float | None = Field(default=None, alias="projectedMonthlyUSD")
    p95_latency_ms: float | None = None


class AIWorkloadStatus(_Model):
    observed_generation: int | None = None
    spec_digest: str | None = None
    phase: Literal["Pending", "Testing", "Passed", "Failed", "Error"] | None = None
    decision: Literal["PASS", "FAIL"] | None = None
    conditions: list[Condition] = Field(default_factory=list)
    evidence: EvidenceRef | None = None
    last_run: LastRun | None = None
    summary: StatusSummary | None = None


class AIWorkload(_Model):
    api_version: Literal["aigate.dev/v1alpha1"] = "aigate.dev/v1alpha1"
    kind: Literal["AIWorkload"] = "AIWorkload"
    metadata: ObjectMeta
    spec: AIWorkloadSpec
    status: AIWorkloadStatus | None = None


def _unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise ValueError(f"duplicate {what} {n!r}")
        seen.add(n)
