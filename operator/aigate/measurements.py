"""What the runner measured: the boundary between measuring (probes) and judging (gates).

Plain pydantic models so that a gate Job can hand them to the operator as JSON and the evidence can
carry them. Times are milliseconds, money is USD.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FaultMode = Literal["timeout", "http_5xx", "http_429", "connection_reset", "malformed_body", "stream_stall"]
FAULT_MODES: tuple[FaultMode, ...] = ("timeout", "http_5xx", "http_429", "connection_reset", "malformed_body")
"""The faults every primary is tried with."""
STREAM_FAULT_MODES: tuple[FaultMode, ...] = ("stream_stall",)
"""The faults a streaming primary is tried with besides: a stream that stops mid-answer until the timeout."""


def required_fault_modes(primary_streams: bool) -> tuple[FaultMode, ...]:
    return FAULT_MODES + STREAM_FAULT_MODES if primary_streams else FAULT_MODES


ErrorKind = Literal["timeout", "http_4xx", "http_429", "http_5xx", "connection", "malformed", "budget", "other"]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Usage(_M):
    input_tokens: int = 0
    """Every input token, cached ones included (each API's count normalised so: Anthropic reports cache reads and
    writes apart, and the dialect adds them back)."""
    output_tokens: int = 0
    """Every output token, reasoning included."""
    cache_read_tokens: int = 0
    """Of `input_tokens`, those read from the provider's prompt cache (billed at the cache-read price)."""
    cache_write_tokens: int = 0
    """Of `input_tokens`, those written to the prompt cache (billed at the cache-write price)."""
    reasoning_tokens: int = 0
    """Of `output_tokens`, those spent reasoning (billed as output; counted once)."""
    service_tier: str | None = None
    """The tier the provider says it billed (flex, priority, batch, ...), when it says."""
    estimated: bool = False
    """True when the provider did not report usage and the tokens were estimated from the text."""


class ToolCall(_M):
    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)


class ModelIdentity(_M):
    """What the provider said it served, which may differ from what was asked for."""

    requested: str
    model: str | None = None
    system_fingerprint: str | None = None


class AssertionResult(_M):
    name: str
    """jsonSchema | contains | notContains | regex | toolCalls | maxLatencyMs."""
    passed: bool
    detail: str = ""


class Attempt(_M):
    """One HTTP exchange with a provider."""

    status: int | None = None
    error: ErrorKind | None = None
    error_detail: str = ""
    latency_ms: float
    ttft_ms: float | None = None
    itl_ms: float | None = None
    """Streaming: the mean gap between output chunks after the first (inter-token latency)."""
    output_chunks: int | None = None
    """Streaming: how many chunks carried output."""
    server_ms: float | None = None
    """What the provider says it spent (`openai-processing-ms`, `Server-Timing`), when it says: the rest of
    `latency_ms` is network and client."""
    usage: Usage = Field(default_factory=Usage)
    injected_fault: FaultMode | None = None


class CaseRun(_M):
    """One test case sent once to one model, retries included: what a caller of that model would see."""

    case: str
    model: str
    """The spec's model name (spec.models[].name)."""
    repeat: int = 0
    adversarial: bool = False
    ok: bool
    """A well-formed answer arrived (after retries)."""
    error: ErrorKind | None = None
    error_detail: str = ""
    latency_ms: float
    """End to end as the caller sees it: client queue time, every attempt and backoff."""
    queue_ms: float = 0.0
    ttft_ms: float | None = None
    itl_ms: float | None = None
    """Streaming: the answer's mean inter-token latency."""
    attempts: list[Attempt] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    """Tokens billed across all attempts."""
    cost_usd: float | None = None
    """None when the model's price is unknown."""
    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    assertions: list[AssertionResult] = Field(default_factory=list)
    identity: ModelIdentity | None = None

    @property
    def retries(self) -> int:
        return max(0, len(self.attempts) - 1)

    @property
    def passed(self) -> bool:
        return self.ok and all(a.passed for a in self.assertions)


class TierPrice(_M):
    """A service tier's prices where they differ from the model's standard ones (the catalog's variants)."""

    input_per_m_tok_usd: float
    output_per_m_tok_usd: float
    cache_read_per_m_tok_usd: float | None = None


class Price(_M):
    input_per_m_tok_usd: float
    output_per_m_tok_usd: float
    cache_read_per_m_tok_usd: float | None = None
    """Cached input read; None: the input price (nothing cheaper is known)."""
    cache_write_per_m_tok_usd: float | None = None
    """Cached input written; None: the input price."""
    tiers: dict[str, TierPrice] = Field(default_factory=dict)
    """Prices of the service tiers a provider may report (flex, priority, batch), keyed as it names them."""
    source: str
    """'spec' or 'genai-prices <version>'."""


class ModelMeasurement(_M):
    """The whole suite (x repeats) against one model at test concurrency, no faults injected."""

    model: str
    provider: str
    requested_model: str
    api: str = ""
    """The provider API measured: chatCompletions, responses (OpenAI) or messages (Anthropic)."""
    price: Price | None = None
    price_problem: str | None = None
    """Why the price is unknown, when it is."""
    runs: list[CaseRun] = Field(default_factory=list)
    identities: list[ModelIdentity] = Field(default_factory=list)
    concurrency: int = 1


class Outcome(_M):
    """How one case ended when a fault was injected on the primary."""

    case: str
    repeat: int = 0
    served_by: str
    """'primary', 'model:<name>', 'humanRoute', 'safeStop' or 'none'."""
    valid: bool
    """The final answer passed the case's assertions (or a human route / safe stop took the case)."""
    latency_ms: float
    detail: str = ""
    path: list[str] = Field(default_factory=list)
    """Every step tried, e.g. ['primary:timeout', 'primary:timeout', 'model:fallback-1:ok']."""


class FaultRun(_M):
    mode: FaultMode
    outcomes: list[Outcome] = Field(default_factory=list)


class HumanRouteProbe(_M):
    url: str
    acknowledged: bool
    status: int | None = None
    latency_ms: float | None = None
    detail: str = ""


class McpTool(_M):
    name: str
    read_only_hint: bool | None = None
    destructive_hint: bool | None = None
    description: str = ""


class McpServerProbe(_M):
    name: str
    url: str
    reachable: bool
    error: str = ""
    server_name: str | None = None
    protocol_version: str | None = None
    tools: list[McpTool] = Field(default_factory=list)


class RbacCheck(_M):
    verb: str
    resource: str
    group: str = ""
    subresource: str = ""
    namespace: str | None = None
    allowed: bool
    reason: str = ""
    """The authorizer's reason, e.g. which RoleBinding allowed it: what to remove."""


class RbacProbe(_M):
    service_account: str
    namespace: str
    skipped_reason: str | None = None
    checks: list[RbacCheck] = Field(default_factory=list)
    error: str | None = None
    """The checks could not be made (e.g. the SubjectAccessReview was refused): unknown, not clean."""


class Measurements(_M):
    """Everything a gate may look at besides the spec."""

    started_at: datetime
    finished_at: datetime
    runner_version: str
    concurrency: int
    models: dict[str, ModelMeasurement] = Field(default_factory=dict)
    """Keyed by spec model name; primary and every fallback."""
    faults: list[FaultRun] = Field(default_factory=list)
    human_route: HumanRouteProbe | None = None
    mcp: list[McpServerProbe] = Field(default_factory=list)
    rbac: RbacProbe | None = None
    spent_usd: float = 0.0
    budget_exhausted: bool = False
    """The run stopped itself at budget.gateRunMaxUSD; the gates it starved report ERROR."""
    aborted: str | None = None
    """Why the run stopped early, if it did."""
    stopped_by: Literal["budget", "errorRate"] | None = None
    """What stopped the run early: budget.gateRunMaxUSD or suite.stopOnErrorRate."""
    timeout_ms: float | None = None
    """The per-request timeout the run used."""
    arrivals: Literal["poisson", "uniform"] | None = None
    """How requests were scheduled: open loop at `arrival_rate_rps`, Poisson (exponential gaps, as independent
    callers arrive in production) or uniform (even gaps); at most `concurrency` in flight, waiting counted as
    client queue time. None in measurements taken before aigate said."""
    arrival_rate_rps: float | None = None
    """The open-loop rate: traffic.peakRequestsPerSecond unless overridden."""
    timeout_assumed: bool = False
    """slo.timeoutMs was not declared: the run assumed `timeout_ms` (by default 2 x slo.p95LatencyMs)."""
