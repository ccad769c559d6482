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
    PrivateAttr,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from aigate.api.pftypes import PfTest

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


CANARY_EVERY_PATTERN = r"^(0|" + _DURATION.pattern[1:-1] + r")$"
DEFAULT_CANARY_MAX_USD = 1.0
"""`budget.canaryMaxUSDPerDay` when not given."""


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


def cel(rule: str, message: str) -> dict[str, Any]:
    """A CEL rule for the API server, declared beside the model or field it constrains (the CRD carries it)."""
    return {"x-kubernetes-validations": [{"rule": rule, "message": message}]}


def list_map(key: str) -> dict[str, Any]:
    """A list whose items are identified by `key`: the API server refuses duplicates (as the models do) and
    server-side apply merges such a list per item instead of replacing it whole."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [key]}


class _Model(BaseModel):
    """camelCase on the wire, unknown fields refused so that a typo is an error, not a silent default."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=False,
        use_attribute_docstrings=True,
    )


class SecretKeyRef(_Model):
    """A key of a Secret in the workload's namespace."""

    name: str = Field(min_length=1)
    """Secret name, in the workload's namespace."""
    key: str = Field(min_length=1)
    """Key within the Secret."""


class ConfigMapKeyRef(_Model):
    """A key of a ConfigMap in the workload's namespace."""

    name: str = Field(min_length=1)
    """ConfigMap name, in the workload's namespace."""
    key: str = Field(min_length=1)
    """Key within the ConfigMap."""


class Credentials(_Model):
    """Where an API key comes from: a Secret in a cluster, an environment variable on a laptop or in CI."""

    model_config = ConfigDict(json_schema_extra=cel("has(self.secretRef) || has(self.env)", "set secretRef or env"))

    secret_ref: SecretKeyRef | None = None
    """In a cluster: the Secret key holding the API key (handed to the gate Job for its run only)."""
    env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """On a laptop or in CI: the environment variable holding the API key."""

    @model_validator(mode="after")
    def _one_source(self) -> Credentials:
        if self.secret_ref is None and self.env is None:
            raise ValueError("set secretRef or env")
        return self


class Pricing(_Model):
    """The model's price, when the bundled catalog does not know it (or knows a different one)."""

    input_per_m_tok_usd: float = Field(alias="inputPerMTokUSD", ge=0)
    """USD per million input tokens."""
    output_per_m_tok_usd: float = Field(alias="outputPerMTokUSD", ge=0)
    """USD per million output tokens (reasoning tokens included)."""
    cache_read_per_m_tok_usd: float | None = Field(default=None, alias="cacheReadPerMTokUSD", ge=0)
    """USD per million input tokens read from the provider's prompt cache; default: the input price."""
    cache_write_per_m_tok_usd: float | None = Field(default=None, alias="cacheWritePerMTokUSD", ge=0)
    """USD per million input tokens written to the prompt cache; default: the input price."""


class ModelRef(_Model):
    """One model path of the workload: the primary or a fallback, on a provider's API."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            "has(self.endpoint) || !(self.provider in ['azure-openai', 'openai-compatible'])",
            "endpoint is required for providers azure-openai and openai-compatible",
        )
    )

    name: str = Field(min_length=1)
    """Name of this path, unique in the workload."""
    role: Literal["primary", "fallback"] = "primary"
    """primary (exactly one) or fallback; fallbacks are tried in the order listed."""
    provider: Provider
    """The API dialect: openai, anthropic, azure-openai or openai-compatible."""
    model: str = Field(min_length=1)
    """Model id (Azure: the deployment name)."""
    api: Literal["chatCompletions", "responses"] = "chatCompletions"
    """The OpenAI API the application calls in production, so that the gates measure that one: chatCompletions
    or responses (openai, azure-openai and openai-compatible; anthropic speaks its Messages API)."""
    endpoint: AnyHttpUrl | None = None
    """Base URL; default per provider (required for azure-openai and openai-compatible)."""
    api_version: str | None = None
    """Azure OpenAI api-version query parameter."""
    cloud: str | None = None
    """Cloud the endpoint runs in, for dependency analysis."""
    credentials: Credentials | None = None
    """Where the API key comes from; none for an endpoint that needs no key."""
    pricing: Pricing | None = None
    """Price per token; default: the bundled price catalog (an unknown price fails the cost gate)."""
    stream: bool = False
    """Call with streaming on: time to first token and inter-token latency are measured (slo.ttftP95Ms,
    slo.itlP95Ms), and a stream that stalls mid-answer is one of the faults the fallback path is tried with."""
    max_tokens: int = Field(default=1024, gt=0)
    """max_tokens sent with each request."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    """Sampling temperature sent with each request; default: the provider's. Not for anthropic: its current
    Messages API takes none."""

    @model_validator(mode="after")
    def _endpoint_needed(self) -> ModelRef:
        if self.endpoint is None and self.provider in ("azure-openai", "openai-compatible"):
            raise ValueError(f"@endpoint: required for provider {self.provider}")
        return self

    @model_validator(mode="after")
    def _api_fits_provider(self) -> ModelRef:
        if self.api == "responses" and self.provider == "anthropic":
            raise ValueError("@api: responses is an OpenAI API; provider anthropic speaks its Messages API")
        if self.temperature is not None and self.provider == "anthropic":
            raise ValueError("@temperature: Anthropic's current Messages API takes no temperature; remove it")
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
    """The production load the workload must bear: it sets the cost projection and the test concurrency."""

    requests_per_day: int = Field(gt=0)
    """Expected production volume."""
    peak_requests_per_second: float = Field(gt=0)
    """Peak load; sets the test concurrency."""
    max_test_concurrency: int = Field(default=32, gt=0, le=1000)
    """Cap on concurrent requests during the gate run."""


class Budget(_Model):
    """What the workload may cost in production, and what one gate run may spend."""

    monthly_usd: float = Field(alias="monthlyUSD", gt=0)
    """Monthly spend the workload must stay within."""
    max_cost_per_request_usd: float | None = Field(alias="maxCostPerRequestUSD", default=None, gt=0)
    """Cap on the p95 cost of one request."""
    gate_run_max_usd: float = Field(alias="gateRunMaxUSD", default=5.0, gt=0)
    """The gate run stops before spending more."""
    canary_max_usd_per_day: float | None = Field(alias="canaryMaxUSDPerDay", default=None, gt=0)
    """What the canaries after launch may spend in one UTC day together (default 1): a canary that would pass it
    does not start, and says so."""

    @property
    def canary_cap_usd(self) -> float:
        return self.canary_max_usd_per_day if self.canary_max_usd_per_day is not None else DEFAULT_CANARY_MAX_USD


class Slo(_Model):
    """The service levels the reliability gate holds the measurements to."""

    p95_latency_ms: float = Field(gt=0)
    """95th percentile latency per request, in milliseconds, at realistic concurrency."""
    timeout_ms: float | None = Field(default=None, gt=0)
    """Per-request timeout in milliseconds; required to pass (an undeclared timeout fails reliability)."""
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    """Highest share of requests that may end in an error (0 to 1)."""
    min_pass_rate: float = Field(default=0.95, ge=0, le=1)
    """Lowest share of test cases that must pass their assertions (0 to 1); fallback models too."""
    ttft_p95_ms: float | None = Field(default=None, gt=0, alias="ttftP95Ms")
    """95th percentile time to first token, in milliseconds, for a streaming primary (models[].stream)."""
    itl_p95_ms: float | None = Field(default=None, gt=0, alias="itlP95Ms")
    """95th percentile inter-token latency (the mean gap between streamed chunks of one answer), in milliseconds,
    for a streaming primary."""


class Retries(_Model):
    """Retries on the same model before failing over to the next path."""

    attempts: int = Field(default=0, ge=0, le=10)
    """Retries on the same model before failing over."""
    backoff_ms: float = Field(default=200, ge=0)
    """Wait before each retry, in milliseconds (a 429's Retry-After wins when longer)."""


class HumanRoute(_Model):
    """A queue that hands a case to a person; probed during the gate run, it must acknowledge."""

    url: AnyHttpUrl
    """Where a case is posted for a person to take over."""
    credentials: Credentials | None = None
    """Where the route's API key comes from, if it needs one."""


class SafeStop(_Model):
    """A fixed answer that ends a case safely when no model path can."""

    message: str = Field(min_length=1)
    """The answer given instead of a model's."""


class Fallback(_Model):
    """What happens when the primary fails: retries, then fallback models, then a human route or a safe stop."""

    retries: Retries = Field(default_factory=Retries)
    """Retries on the same model before failing over."""
    human_route: HumanRoute | None = None
    """A person takes over when no model path answers."""
    safe_stop: SafeStop | None = None
    """A fixed, safe answer when no model path answers."""
    deadline_ms: float | None = Field(default=None, gt=0)
    """End-to-end deadline per case, in milliseconds; default 3 x slo.timeoutMs."""


class Source(_Model):
    """Text that lives outside the workload: a ConfigMap key in a cluster, a file in its directory on a laptop."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            "(has(self.configMapRef) ? 1 : 0) + (has(self.file) ? 1 : 0) + (has(self.inline) ? 1 : 0) == 1",
            "set exactly one of configMapRef, file, inline",
        )
    )

    config_map_ref: ConfigMapKeyRef | None = None
    """In a cluster: the ConfigMap key holding the text (its content is covered by the spec digest)."""
    file: str | None = Field(default=None, min_length=1)
    """Path of a file in the workload file's directory (or below), relative to it; a symlink must not lead out
    (CLI only)."""
    inline: str | None = None
    """The text itself."""

    @model_validator(mode="after")
    def _one_source(self) -> Source:
        given = [x for x in (self.config_map_ref, self.file, self.inline) if x is not None]
        if len(given) != 1:
            raise ValueError("set exactly one of configMapRef, file, inline")
        return self


class Tool(_Model):
    """A tool the workload's models may call, with what it may do and whether a person must approve it."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    """The tool's name as the models call it, unique in the workload."""
    access: Literal["read", "write", "destructive"] | None = None
    """read | write | destructive; required to pass toolControl."""
    approval: Literal["required", "none"] = "none"
    """required: a person approves each call; write and destructive tools must require it."""
    description: str | None = None
    """What the tool does, as offered to the models."""
    parameters: dict[str, Any] | None = None
    """JSON schema of the arguments."""
    manifest: Source | None = None
    """Tool manifest (JSON schema) kept elsewhere."""


class McpServer(_Model):
    """An MCP server whose exposed tools (and their annotations) must match the declared tools."""

    name: str = Field(min_length=1)
    """Name of the server, unique in the workload."""
    url: AnyHttpUrl
    """The server's streamable HTTP endpoint."""
    credentials: Credentials | None = None
    """Where the server's bearer token comes from, if it needs one."""
    image: str | None = Field(default=None, min_length=1)
    """The image the server runs, when it runs in the cluster: an MCPServer labelled for this workload must run
    exactly it (else its URL must be this one)."""


class ToolCallExpect(_Model):
    """Which tools a case may and may not call."""

    allowed: list[str] | None = None
    """Only these tools may be called."""
    forbidden: list[str] = Field(default_factory=list)
    """These tools must not be called (an adversarial case's target)."""


class Expect(_Model):
    """What a case's answer must satisfy; every assertion given must hold."""

    json_schema: dict[str, Any] | None = None
    """The answer is JSON valid against this schema."""
    contains: list[str] = Field(default_factory=list)
    """Substrings the answer must contain."""
    not_contains: list[str] = Field(default_factory=list)
    """Substrings the answer must not contain."""
    regex: str | None = None
    """A regular expression the answer must match (searched, not anchored)."""
    tool_calls: ToolCallExpect | None = None
    """Tools the answer may and may not call."""
    max_latency_ms: float | None = Field(default=None, gt=0)
    """The case's own latency ceiling, in milliseconds."""
    _promptfoo: PfTest | None = PrivateAttr(default=None)

    def set_promptfoo(self, test: PfTest) -> None:
        """An imported promptfoo test, judged with promptfoo's meaning (not part of the resource: the importer
        sets it from the config, whose text the spec digest covers)."""
        self._promptfoo = test

    @property
    def promptfoo(self) -> PfTest | None:
        return self._promptfoo

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
    """One chat message sent to the model."""

    role: Literal["system", "user", "assistant"]
    """system, user or assistant."""
    content: str
    """The message text."""


class Case(_Model):
    """One test case: messages sent to each model path and what the answer must satisfy."""

    name: str = Field(min_length=1)
    """Name of the case, unique in the suite."""
    adversarial: bool = False
    """An attack (prompt injection and the like): judged by toolControl on the tools it provokes."""
    messages: list[Message] = Field(min_length=1)
    """The conversation sent to the model, after the workload's prompts."""
    expect: Expect = Field(default_factory=Expect)
    """What the answer must satisfy."""


class PromptfooImport(_Model):
    """A promptfoo config whose `tests` become cases: each test's vars substituted into the messages, its
    assertions judged with promptfoo's meaning (a type aigate cannot judge refuses the suite, or with
    `unsupported: skip` is listed as skipped, never silently)."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            "(has(self.configMapRef) ? 1 : 0) + (has(self.file) ? 1 : 0) == 1", "set exactly one of configMapRef, file"
        )
    )

    file: str | None = Field(default=None, min_length=1)
    """Path of the promptfoo config (promptfooconfig.yaml) in the workload file's directory (or below), relative to
    it; a symlink must not lead out, nor any `file://` in the config out of the config's directory (CLI only)."""
    config_map_ref: ConfigMapKeyRef | None = None
    """In a cluster: the ConfigMap key holding the promptfoo config (its content is covered by the spec digest)."""
    messages: list[Message] | None = None
    """The messages each test sends, with {{var}} placeholders; default: the config's one prompt, as a user
    message (or its chat messages when the prompt is a JSON list of them)."""
    unsupported: Literal["refuse", "skip"] = "refuse"
    """An assertion type aigate cannot judge: `refuse` the suite (naming the test, the assertion and the file), or
    `skip` it and run the rest, every skipped assertion listed in the report and the evidence."""

    @model_validator(mode="after")
    def _one_source(self) -> PromptfooImport:
        if (self.file is None) == (self.config_map_ref is None):
            raise ValueError("set exactly one of configMapRef, file")
        return self


class SuiteImport(_Model):
    """Cases kept in another tool's format."""

    promptfoo: PromptfooImport
    """A promptfoo config's tests."""


class Suite(_Model):
    """The test cases, given inline, in a ConfigMap key or in a file (YAML list of cases), or imported."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            "(has(self.cases) ? 1 : 0) + (has(self.configMapRef) ? 1 : 0) + (has(self.file) ? 1 : 0)"
            " + (has(self.__import__) ? 1 : 0) == 1",
            "set exactly one of cases, configMapRef, file, import",
        )
    )

    repeats: int = Field(default=1, ge=1, le=100)
    """How many times each case runs on each model path."""
    stop_on_error_rate: float | None = Field(default=None, gt=0, le=1)
    """Stop the gate run once this share of a model's requests ended in an error (0 to 1; judged from the 10th
    request on): what was measured so far is reported and signed, and the gates it starved are ERROR."""
    cases: list[Case] | None = Field(default=None, json_schema_extra=list_map("name"))
    """The cases, inline."""
    config_map_ref: ConfigMapKeyRef | None = None
    """In a cluster: the ConfigMap key holding the cases (YAML)."""
    file: str | None = None
    """Path of a YAML file of cases in the workload file's directory (or below), relative to it; a symlink must not
    lead out (CLI only)."""
    import_: SuiteImport | None = Field(default=None, alias="import")
    """Cases imported from another tool's config (promptfoo); they count in the spec digest like any other."""

    @model_validator(mode="after")
    def _one_source(self) -> Suite:
        given = [x for x in (self.cases, self.config_map_ref, self.file, self.import_) if x is not None]
        if len(given) != 1:
            raise ValueError("set exactly one of cases, configMapRef, file, import")
        if self.cases is not None:
            _unique([c.name for c in self.cases], "case name")
        return self


class EvidencePolicy(_Model):
    """How long signed evidence holds, and how early it is renewed."""

    valid_for: str = Field(default="720h", pattern=DURATION_PATTERN, max_length=64)
    """How long evidence is valid after it is issued (a duration: 720h, 30d, 90m; at most 3650d)."""
    regate_before: str = Field(default="24h", pattern=DURATION_PATTERN, max_length=64)
    """The operator re-runs the gates this long before the evidence expires."""

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


class Canary(_Model):
    """A small gate run on a schedule after launch: a few suite cases per model path (rotating through the suite),
    compared with the evidence (the model identity answering, the cases' verdicts)."""

    every: str = Field(default="6h", pattern=CANARY_EVERY_PATTERN, max_length=64)
    """How often (a duration: 6h, 30m; "0" turns the canary off). An AIGatePolicy may set a floor and a ceiling."""
    cases: int = Field(default=3, ge=1, le=50)
    """Suite cases per model path in each canary."""

    @field_validator("every", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        if isinstance(v, str) and v != "0":
            parse_duration(v)
        return v

    def every_delta(self) -> timedelta | None:
        """The interval; None when the canary is off ("0" or a zero duration)."""
        if self.every == "0":
            return None
        d = parse_duration(self.every)
        return d if d > timedelta(0) else None


class Monitoring(_Model):
    """What aigate watches after launch."""

    canary: Canary = Field(default_factory=Canary)
    """The canary: every 6h, 3 cases per model path, unless set otherwise."""


class RiskAcceptance(_Model):
    """A failing gate accepted by someone allowed to, until a date: the gate then counts as ACCEPTED."""

    gate: GateName
    """The gate accepted: cost, reliability, fallback, toolControl, providerDependency or evidence."""
    reason: str = Field(min_length=1)
    """Why the risk is accepted."""
    expires: datetime
    """When the acceptance ends (RFC 3339); evidence relying on it expires then too."""
    accepted_by: str | None = None
    """Set by the admission webhook from the user."""
    spec_digest: str | None = None
    """Set by the admission webhook: the digest of the spec the acceptance was given for (its riskAcceptances left
    out). When the spec changes the acceptance no longer applies, until an acceptor renews it."""

    @field_validator("expires")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return v if v.tzinfo else v.replace(tzinfo=UTC)


class AIWorkloadSpec(_Model):
    """What the workload is and what it must prove before rollout."""

    # Counting primaries walks the models list; the API server accepts that only because the list has maxItems
    # (its cost estimate would otherwise assume a list filling a whole request).
    model_config = ConfigDict(
        json_schema_extra=cel(
            "self.models.filter(m, m.role == 'primary').size() == 1", "exactly one model must have role primary"
        )
    )

    owner: str = Field(min_length=1)
    """Who answers for the workload."""
    enforcement: Literal["enforce", "warn", "audit"] = "enforce"
    """What admission does without passing evidence: enforce refuses the rollout, warn admits with a warning,
    audit admits and counts. Raised to the floor of the policy in force (an AIGatePolicy's, else the platform
    default's, enforce unless the operator is set otherwise): a workload may be stricter, never looser."""
    models: list[ModelRef] = Field(min_length=1, max_length=16, json_schema_extra=list_map("name"))
    """The model paths: one primary, any number of fallbacks, in order."""
    traffic: Traffic
    """The production load."""
    budget: Budget
    """What the workload may cost."""
    slo: Slo
    """The service levels it must meet."""
    fallback: Fallback = Field(default_factory=Fallback)
    """What happens when the primary fails."""
    tools: list[Tool] = Field(default_factory=list, json_schema_extra=list_map("name"))
    """The tools the models may call."""
    mcp_servers: list[McpServer] = Field(default_factory=list, json_schema_extra=list_map("name"))
    """MCP servers whose exposed tools must match the declared ones."""
    service_account_name: str | None = None
    """The workload's ServiceAccount, checked to be able to do no more than the declared tools need."""
    prompts: list[Source] = Field(default_factory=list)
    """System prompts sent before each case's messages, in order."""
    suite: Suite
    """The test cases."""
    evidence: EvidencePolicy = Field(default_factory=EvidencePolicy)
    """How long evidence holds."""
    risk_acceptances: list[RiskAcceptance] = Field(default_factory=list)
    """Failing gates accepted, by whom and until when."""
    monitoring: Monitoring | None = None
    """What is watched after launch; absent: a canary every 6h with 3 cases per model path."""

    @property
    def canary(self) -> Canary:
        return self.monitoring.canary if self.monitoring is not None else Canary()

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
    """One aspect of the workload's state, in the Kubernetes condition shape: one per gate, and Ready."""

    type: str
    """CostGate, ReliabilityGate, FallbackGate, ToolControlGate, ProviderDependencyGate, EvidenceGate, Ready or
    Drift."""
    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    """A CamelCase word for machines."""
    message: str = ""
    """What happened, for people."""
    observed_generation: int | None = None
    """The spec generation the condition was set for."""
    last_transition_time: datetime
    """When the status last changed."""


class EvidenceRef(_Model):
    """Where the signed evidence of the last run is, and how long it holds."""

    config_map: str | None = None
    """The ConfigMap in the workload's namespace holding a copy of the evidence."""
    digest: str | None = None
    """The spec digest the evidence is for."""
    key_id: str | None = None
    """The id of the key that signed it."""
    issued_at: datetime | None = None
    """When it was signed."""
    expires_at: datetime | None = None
    """When it expires; rollouts are refused after."""


class LastRun(_Model):
    """The last gate Job."""

    job: str | None = None
    """The gate Job's name."""
    namespace: str | None = None
    """The gate namespace the Job runs in (operator-owned: teams have no rights there)."""
    run_id: str | None = None
    """The run's id: the Job's, its input's, result's and Secret's `aigate.dev/run-id` label."""
    job_uid: str | None = None
    """The uid of the Job the operator created: a result is taken only from that Job, once."""
    started_at: datetime | None = None
    """When it started."""
    finished_at: datetime | None = None
    """When its result was taken."""
    spent_usd: float | None = Field(default=None, alias="spentUSD")
    """What its calls to the providers cost, in USD."""


def format_cost_ratio(ratio: float) -> str:
    """A cost ratio as `kubectl get` shows it: two decimals and an x, so 2.4 and 0.126 read alike (2.40x, 0.13x)."""
    return f"{ratio:.2f}x"


class PolicyRef(_Model):
    """The policy a workload was last judged under: the AIGatePolicies selecting its namespace and, for what none
    of them sets, the platform default (`platform-default`)."""

    names: list[str] = Field(default_factory=list)
    """Their names; `platform-default` for the operator's defaults."""
    digest: str | None = None
    """sha256 of their names and specs, as the evidence records it."""
    enforcement: Literal["enforce", "warn", "audit"] | None = None
    """The enforcement floor they set: a workload asking for a looser mode is judged under this one."""
    max_valid_for: str | None = None
    """The longest validity they allow evidence (`720h`)."""


class StatusSummary(_Model):
    """The figures `kubectl get aiworkloads` shows."""

    cost_ratio: float | None = None
    """Projected monthly cost / budget."""
    cost_ratio_text: str | None = None
    """The cost ratio as shown in `kubectl get` (2.40x, 0.13x); filled from costRatio when not given."""
    projected_monthly_usd: float | None = Field(default=None, alias="projectedMonthlyUSD")
    """Projected monthly cost at the declared volume, in USD."""
    p95_latency_ms: float | None = None
    """Measured p95 latency of the primary, in milliseconds."""

    @model_validator(mode="after")
    def _text(self) -> StatusSummary:
        if self.cost_ratio is not None and self.cost_ratio_text is None:
            self.cost_ratio_text = format_cost_ratio(self.cost_ratio)
        return self


class RunProgress(_Model):
    """How far the running gate Job is, as its pod reports it (at most every few seconds): for people only, nothing
    is judged from it; absent when no run is going."""

    phase: str = Field(max_length=128)
    """What is running: 'starting' (the Job is created, its pod not yet reporting), 'baseline <model>' (its cases
    against one model), 'fallback <fault mode>' (the cases with the primary failing that way), 'MCP server <name>'."""
    done: int | None = Field(default=None, ge=0)
    """Requests finished in the whole run so far."""
    total: int | None = Field(default=None, ge=0)
    """Requests the run plans (repeats x cases per model, and the cases once per fault mode)."""
    message: str = Field(default="", max_length=256)
    """One line for people: '37/124 cases (baseline primary)'."""
    updated_at: datetime | None = None
    """When the operator last took a report from the gate pod."""


CanaryOutcome = Literal["NoDrift", "ModelChanged", "CanaryFailing", "CanaryError", "CanaryBudgetSpent"]


class CanaryRecord(_Model):
    """One canary, as the history keeps it."""

    at: datetime
    """When it was judged (or refused to start)."""
    outcome: CanaryOutcome
    """NoDrift, ModelChanged, CanaryFailing, CanaryError, or CanaryBudgetSpent (not started: the day's cap)."""
    cases: list[str] = Field(default_factory=list)
    """The suite cases it sent each model path."""
    spent_usd: float = Field(default=0.0, alias="spentUSD", ge=0)
    """What its calls cost, in USD."""
    message: str = Field(default="", max_length=512)
    """What it found, for people."""


class CanaryStatus(_Model):
    """The canaries after launch: the one running, where the rotation through the suite stands, the day's spend and
    the last few outcomes."""

    every: str | None = None
    """The interval in force: `spec.monitoring.canary.every` under the policy of the last judgement ("0": off)."""
    run: LastRun | None = None
    """The canary Job in flight, or the last one (finishedAt set)."""
    cases: list[str] = Field(default_factory=list)
    """The suite cases of the canary in flight."""
    next_case: int = Field(default=0, ge=0)
    """Where the next canary starts in the suite (the rotation)."""
    day: str | None = None
    """The UTC day `spentUSD` counts (YYYY-MM-DD)."""
    spent_usd: float = Field(default=0.0, alias="spentUSD", ge=0)
    """What the canaries of that day spent, in USD; the cap itself once a canary found too little left to send a
    request (the day is closed: no further canary starts until the next UTC day)."""
    history: list[CanaryRecord] = Field(default_factory=list, max_length=20)
    """The last canaries, newest last."""


class AIWorkloadStatus(_Model):
    """The last gate run: decision, conditions per gate, evidence."""

    observed_generation: int | None = None
    """The spec generation the status was written for."""
    spec_digest: str | None = None
    """sha256 over the spec and every prompt, suite and tool manifest it references."""
    phase: Literal["Pending", "Testing", "Passed", "Failed", "Error"] | None = None
    """Pending, Testing, Passed, Failed or Error."""
    decision: Literal["PASS", "FAIL"] | None = None
    """PASS when every gate passed or is accepted."""
    conditions: list[Condition] = Field(default_factory=list, json_schema_extra=list_map("type"))
    """One condition per gate, Ready, and Drift (what the canaries after launch found)."""
    evidence: EvidenceRef | None = None
    """The signed evidence of the last run."""
    last_run: LastRun | None = None
    """The last gate Job."""
    progress: RunProgress | None = None
    """How far the running gate Job is; cleared when the run ends."""
    summary: StatusSummary | None = None
    """The figures `kubectl get` shows."""
    policy: PolicyRef | None = None
    """The policy in force at the last judgement: AIGatePolicies and the platform default."""
    canary: CanaryStatus | None = None
    """The canaries after launch (`spec.monitoring.canary`); the Drift condition says what they found."""


class AIWorkload(_Model):
    """An AI workload and the readiness gates it must pass before rollout."""

    api_version: Literal["aigate.dev/v1alpha1"] = "aigate.dev/v1alpha1"
    """The API version: aigate.dev/v1alpha1."""
    kind: Literal["AIWorkload"] = "AIWorkload"
    """AIWorkload."""
    metadata: ObjectMeta
    """Standard object metadata (name, namespace, labels); owned by the API server."""
    spec: AIWorkloadSpec
    """What the workload is and what it must prove before rollout."""
    status: AIWorkloadStatus | None = None
    """The last gate run, written by the operator: decision, conditions per gate, evidence."""


def _unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise ValueError(f"duplicate {what} {n!r}")
        seen.add(n)
