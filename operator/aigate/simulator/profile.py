"""The simulator profile: which models the simulator serves, on which wire format, and how each behaves.

A profile is YAML (camelCase keys, as in the AIWorkload resource). Validation is strict (unknown keys are
errors, since a misspelt `hangrate` silently doing nothing would make a test lie), and every error names
its field path, e.g. `models.gpt-4.1.latency: p95Ms (100) must be >= p50Ms (400)`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

Z95 = 1.6448536269514722
"""The standard normal quantile at 0.95: a lognormal's p95 is exp(mu + Z95 * sigma)."""


class ProfileError(ValueError):
    """A profile that cannot be read or is invalid; the message names the file and the field path."""


class _Base(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
    )


class Latency(_Base):
    """Total time to answer: fixed, or a lognormal fitted to p50/p95 (the shape real provider latency has)."""

    fixed_ms: float | None = Field(default=None, ge=0)
    p50_ms: float | None = Field(default=None, gt=0)
    p95_ms: float | None = Field(default=None, gt=0)
    max_ms: float | None = Field(default=None, gt=0)
    """Optional cap on a sampled latency (a lognormal has an unbounded tail)."""

    @model_validator(mode="after")
    def _one_form(self) -> Latency:
        if self.fixed_ms is not None:
            if self.p50_ms is not None or self.p95_ms is not None:
                raise ValueError("give either fixedMs or p50Ms/p95Ms, not both")
        elif self.p50_ms is None or self.p95_ms is None:
            raise ValueError("give fixedMs, or both p50Ms and p95Ms")
        elif self.p95_ms < self.p50_ms:
            raise ValueError(f"p95Ms ({self.p95_ms:g}) must be >= p50Ms ({self.p50_ms:g})")
        return self

    @property
    def mu_sigma(self) -> tuple[float, float]:
        """The lognormal's parameters (sigma 0 when fixed)."""
        if self.fixed_ms is not None:
            return (math.log(self.fixed_ms) if self.fixed_ms > 0 else -math.inf), 0.0
        assert self.p50_ms is not None and self.p95_ms is not None
        return math.log(self.p50_ms), math.log(self.p95_ms / self.p50_ms) / Z95


class Usage(_Base):
    """Token counts to report instead of counting ~4 characters per token. Cached input tokens are part of
    `inputTokens` and reasoning tokens part of `outputTokens`, as OpenAI counts them; each API reports them
    in its own fields (Anthropic counts cache reads apart from `input_tokens`)."""

    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cached_tokens: int = Field(default=0, ge=0)
    reasoning_tokens: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _parts_within_totals(self) -> Usage:
        if self.cached_tokens > self.input_tokens:
            raise ValueError("cachedTokens cannot exceed inputTokens (cached tokens are input tokens)")
        if self.reasoning_tokens > self.output_tokens:
            raise ValueError("reasoningTokens cannot exceed outputTokens (reasoning tokens are output tokens)")
        return self


class Match(_Base):
    """When a response rule applies. `contains` is case-insensitive; `regex` uses re.search (add (?i) for
    case-insensitive). Both given: both must match. `scope` picks the text: the last user message, or every
    message (system prompt included)."""

    contains: str | None = None
    regex: str | None = None
    scope: Literal["lastUser", "anyMessage"] = "lastUser"

    @field_validator("regex")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"invalid regular expression: {e}") from None
        return v


class ToolCallSpec(_Base):
    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class ResponseRule(_Base):
    """One scripted answer. No `match` = always applies (a default). `probability` < 1 makes the rule apply
    only to that share of matching requests (seeded), so a model can be wrong some of the time."""

    match: Match | None = None
    probability: float = Field(default=1.0, ge=0, le=1)
    content: str | None = None
    tool_calls: list[ToolCallSpec] | None = None

    @model_validator(mode="after")
    def _says_something(self) -> ResponseRule:
        if self.content is None and not self.tool_calls:
            raise ValueError("a response needs content or toolCalls")
        return self


class ModelSpec(_Base):
    """How one model answers. Rates are probabilities per request; together they may not exceed 1. An
    injected error status answers at once; a malformed body arrives after the usual latency."""

    provider: Literal["anthropic", "openai"]
    served_model: str | None = None
    """The `model` the answers carry (e.g. a dated snapshot); default: the requested name."""
    latency: Latency = Field(default_factory=lambda: Latency(fixed_ms=0))
    ttft_ms: float | None = Field(default=None, ge=0)
    """Streaming: time to the first token; the rest of the latency is spread over the chunks."""
    errors: dict[int, float] = Field(default_factory=dict)
    retry_after_seconds: float = Field(default=1.0, ge=0)
    hang_rate: float = Field(default=0.0, ge=0, le=1)
    malformed_rate: float = Field(default=0.0, ge=0, le=1)
    reset_rate: float = Field(default=0.0, ge=0, le=1)
    stall_rate: float = Field(default=0.0, ge=0, le=1)
    """A streamed answer stops half way (its first half of the chunks, then nothing until the client gives up);
    an unstreamed one hangs."""
    usage: Usage | None = None
    omit_usage: bool = False
    system_fingerprint: str | None = "fp_aigate_sim"
    stream_chunk_chars: int = Field(default=16, ge=1)
    responses: list[ResponseRule] = Field(default_factory=list)

    @field_validator("errors")
    @classmethod
    def _error_codes(cls, v: dict[int, float]) -> dict[int, float]:
        for code, rate in v.items():
            if not 400 <= code <= 599:
                raise ValueError(f"status {code} is not an HTTP error status (400-599)")
            if not 0 <= rate <= 1:
                raise ValueError(f"rate for {code} must be between 0 and 1, got {rate:g}")
        return v

    @model_validator(mode="after")
    def _rates_sum(self) -> ModelSpec:
        total = sum(self.errors.values()) + self.hang_rate + self.malformed_rate + self.reset_rate + self.stall_rate
        if total > 1 + 1e-9:
            raise ValueError(
                f"errors + hangRate + malformedRate + resetRate + stallRate add up to {total:g}, more than 1"
            )
        return self


class SimProfile(_Base):
    """Every model the simulator serves, keyed by the name requests use (or the Azure deployment name)."""

    models: dict[str, ModelSpec] = Field(min_length=1)
    seed: int | None = None
    """Seed for every random draw, so a test sees the same outcomes in the same request order."""
    time_scale: float = Field(default=1.0, gt=0)
    """Multiplies every latency (0.1 = ten times faster); the client scales what it reports, if it wants."""

    def with_time_scale(self, factor: float) -> SimProfile:
        """The same profile running `factor` times as slow (e.g. 0.1 for a quick demo)."""
        return self.model_copy(update={"time_scale": self.time_scale * factor})


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc)


def describe(err: ValidationError) -> str:
    """One line per error, each led by its field path."""
    lines = []
    for e in err.errors():
        msg = str(e["msg"]).removeprefix("Value error, ")
        where = _where(tuple(e["loc"]))
        lines.append(f"{where}: {msg}" if where else msg)
    return "; ".join(lines)


def parse_profile(doc: Any, source: str = "profile") -> SimProfile:
    """Validate a loaded document; raise ProfileError naming `source` and the field path."""
    if not isinstance(doc, dict):
        raise ProfileError(f"{source}: a profile is a mapping with a `models` key")
    try:
        return SimProfile.model_validate(doc)
    except ValidationError as e:
        raise ProfileError(f"{source}: {describe(e)}") from None


def load_profile(path: str | Path) -> SimProfile:
    """Read and validate a profile YAML file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ProfileError(f"{p}: cannot read: {e.strerror or e}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ProfileError(f"{p}: not valid YAML: {' '.join(str(e).split())}") from None
    return parse_profile(doc, str(p))
