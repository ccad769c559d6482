"""Provider clients: one HTTP exchange with OpenAI, Azure OpenAI, an openai-compatible server or Anthropic.

The wire format is the model's dialect (`probes/dialects/`), the connections are the transport's
(`probes/transport.py`); this module keeps the exchange itself: the end-to-end timeout, fault injection,
and the mapping of every failure to an error kind.

Each call returns a `Reply` carrying an `Attempt` (status, error kind, latency, ttft, usage) and what the
model said (text, tool calls, identity). Nothing raises for a provider failure: every failure is an error
kind the gates can count. API keys travel only in request headers; every text that leaves this module is
passed through the scrubber.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from aigate.api.load import ResolvedTool
from aigate.api.models import Message, ModelRef
from aigate.measurements import Attempt, ErrorKind, FaultMode, ModelIdentity, ToolCall, Usage
from aigate.probes.credentials import Scrubber
from aigate.probes.dialects import Dialect, Malformed, Parsed, StreamError, Wire, dialect_for
from aigate.probes.dialects.anthropic import ANTHROPIC_VERSION
from aigate.probes.dialects.base import provider_message
from aigate.probes.dialects.openai_chat import AZURE_API_VERSION
from aigate.probes.faults import FAULT_EXTENSION, STREAM_EXTENSION, FaultInjectingTransport
from aigate.probes.transport import ShardedTransport

__all__ = [
    "ANTHROPIC_VERSION",
    "AZURE_API_VERSION",
    "Prepared",
    "ProviderClient",
    "Reply",
    "auth_headers",
    "build_body",
    "endpoint_url",
    "estimate_tokens",
    "parse_retry_after",
    "server_time_ms",
]

CHARS_PER_TOKEN = 4
"""Used to estimate tokens when a provider reports no usage."""
_DETAIL_MAX = 300
RETRY_AFTER_MAX_S = 60.0


def estimate_tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN) if chars > 0 else 0


def endpoint_url(ref: ModelRef, base_url: str | None = None) -> str:
    """Where the call goes; `base_url` (e.g. a simulator) replaces the declared endpoint."""
    return dialect_for(ref).url(base_url)


def auth_headers(ref: ModelRef, api_key: str | None) -> dict[str, str]:
    return dialect_for(ref).headers(api_key)


def build_body(
    ref: ModelRef, system_prompt: str, messages: Sequence[Message], tools: Sequence[ResolvedTool]
) -> dict[str, Any]:
    """The request document in the provider's wire format."""
    return dialect_for(ref).body(system_prompt, messages, tools)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request body serialised once and reused for every repeat of a case."""

    content: bytes
    input_chars: int


@dataclass(slots=True)
class Reply:
    attempt: Attempt
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    identity: ModelIdentity | None = None
    retry_after_s: float | None = None
    """What the provider asked for in Retry-After (429 / 503), capped at RETRY_AFTER_MAX_S."""
    sent_at: float = 0.0
    """perf_counter() when the request was handed to the transport."""

    @property
    def ok(self) -> bool:
        return self.attempt.error is None


def server_time_ms(headers: httpx.Headers) -> float | None:
    """The provider's own account of its time: OpenAI's `openai-processing-ms`, else the first `dur` of a
    W3C `Server-Timing` header (the simulator's `sim;dur=…`). Absent or unreadable: None."""
    raw = headers.get("openai-processing-ms")
    if raw:
        try:
            return max(float(raw), 0.0)
        except ValueError:
            return None
    for metric in (headers.get("server-timing") or "").split(","):
        for param in metric.split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "dur":
                try:
                    return max(float(value.strip().strip('"')), 0.0)
                except ValueError:
                    return None
    return None


def parse_retry_after(headers: httpx.Headers) -> float | None:
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return min(max(float(ms) / 1000, 0.0), RETRY_AFTER_MAX_S)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_S)


def _error_kind(status: int) -> ErrorKind:
    if status == 429:
        return "http_429"
    if status >= 500:
        return "http_5xx"
    return "http_4xx"


class ProviderClient:
    """One model's endpoint behind one shared `httpx.AsyncClient` (pooled connections, no per-call setup)."""

    def __init__(
        self,
        ref: ModelRef,
        *,
        api_key: str | None,
        system_prompt: str = "",
        tools: Sequence[ResolvedTool] = (),
        base_url: str | None = None,
        max_connections: int = 8,
        timeout_s: float = 30.0,
        scrubber: Scrubber | None = None,
        fault_retry_after_s: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.ref = ref
        self.dialect: Dialect = dialect_for(ref)
        self.wire: Wire = self.dialect.wire
        self.url = self.dialect.url(base_url)
        self.system_prompt = system_prompt
        self.tools = list(tools)
        self.timeout_s = timeout_s
        self._scrub = scrubber or Scrubber([api_key] if api_key else [])
        inner = transport or ShardedTransport(max_connections)
        self.transport = FaultInjectingTransport(inner, self.wire, retry_after_s=fault_retry_after_s)
        self._client = httpx.AsyncClient(
            transport=self.transport,
            headers=self.dialect.headers(api_key),
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
        )

    async def __aenter__(self) -> ProviderClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def prepare(self, messages: Sequence[Message]) -> Prepared:
        body = self.dialect.body(self.system_prompt, messages, self.tools)
        chars = len(self.system_prompt) + sum(len(m.content) for m in messages)
        return Prepared(json.dumps(body, separators=(",", ":")).encode(), chars)

    def _reply(
        self,
        start: float,
        *,
        status: int | None = None,
        error: ErrorKind,
        detail: str,
        fault: FaultMode | None,
        retry_after: float | None = None,
        server_ms: float | None = None,
    ) -> Reply:
        latency = (time.perf_counter() - start) * 1000
        detail = self._scrub(detail)[:_DETAIL_MAX]
        attempt = Attempt(
            status=status,
            error=error,
            error_detail=detail,
            latency_ms=latency,
            server_ms=server_ms,
            injected_fault=fault,
        )
        return Reply(attempt=attempt, retry_after_s=retry_after, sent_at=start)

    async def call(
        self, prepared: Prepared, *, timeout_s: float | None = None, fault: FaultMode | None = None
    ) -> Reply:
        """One exchange, bounded by `timeout_s` end to end (a trickling stream cannot outlast it)."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        stream = self.ref.stream
        ext: dict[str, Any] = {"timeout": httpx.Timeout(timeout).as_dict()}
        if fault is not None:
            ext[FAULT_EXTENSION] = fault
            ext[STREAM_EXTENSION] = stream
        start = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                if stream:
                    return await self._stream(prepared, ext, start, fault)
                resp = await self._client.post(self.url, content=prepared.content, extensions=ext)
                return self._complete(prepared, resp, start, fault)
        except (TimeoutError, httpx.TimeoutException):
            return self._reply(start, error="timeout", detail=f"no answer within {timeout * 1000:.0f} ms", fault=fault)
        except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.LocalProtocolError) as e:
            return self._reply(start, error="connection", detail=f"{type(e).__name__}: {e}", fault=fault)
        except httpx.HTTPError as e:
            return self._reply(start, error="other", detail=f"{type(e).__name__}: {e}", fault=fault)

    def _failure(self, resp: httpx.Response, body: bytes, start: float, fault: FaultMode | None) -> Reply:
        status = resp.status_code
        msg = provider_message(body)
        return self._reply(
            start,
            status=status,
            error=_error_kind(status),
            detail=f"HTTP {status}" + (f": {msg}" if msg else ""),
            fault=fault,
            retry_after=parse_retry_after(resp.headers) if status in (429, 503) else None,
            server_ms=server_time_ms(resp.headers),
        )

    def _complete(self, prepared: Prepared, resp: httpx.Response, start: float, fault: FaultMode | None) -> Reply:
        body = resp.content
        if resp.status_code >= 300:
            return self._failure(resp, body, start, fault)
        try:
            out = self.dialect.parse(json.loads(body))
        except ValueError:
            return self._reply(
                start, status=resp.status_code, error="malformed", detail="the body is not valid JSON", fault=fault
            )
        except (Malformed, AttributeError, TypeError) as e:
            detail = str(e) if isinstance(e, Malformed) else "unexpected answer structure"
            return self._reply(start, status=resp.status_code, error="malformed", detail=detail, fault=fault)
        except StreamError as e:
            detail = f"the answer reports an error: {e}"
            return self._reply(start, status=resp.status_code, error=e.kind, detail=detail, fault=fault)
        return self._success(prepared, out, resp, start, fault)

    async def _stream(self, prepared: Prepared, ext: dict[str, Any], start: float, fault: FaultMode | None) -> Reply:
        req = self._client.build_request("POST", self.url, content=prepared.content, extensions=ext)
        resp = await self._client.send(req, stream=True)
        try:
            if resp.status_code >= 300:
                body = await resp.aread()
                return self._failure(resp, body, start, fault)
            reader = self.dialect.stream(start)
            try:
                async for line in resp.aiter_lines():
                    if line.startswith("data:"):
                        reader.feed(line[5:].strip())
                        if reader.done:
                            break
                out = reader.finish()
            except (Malformed, AttributeError, TypeError, ValueError) as e:
                detail = str(e) if isinstance(e, Malformed) else "unexpected stream event structure"
                return self._reply(start, status=resp.status_code, error="malformed", detail=detail, fault=fault)
            except StreamError as e:
                detail = f"error event in the stream: {e}"
                return self._reply(start, status=resp.status_code, error=e.kind, detail=detail, fault=fault)
            return self._success(prepared, out, resp, start, fault)
        finally:
            await resp.aclose()

    def _success(
        self, prepared: Prepared, out: Parsed, resp: httpx.Response, start: float, fault: FaultMode | None
    ) -> Reply:
        latency = (time.perf_counter() - start) * 1000
        if out.input_tokens is None or out.output_tokens is None:
            produced = len(out.text) + sum(len(c.name) + len(json.dumps(c.arguments)) for c in out.tool_calls)
            usage = Usage(
                input_tokens=out.input_tokens
                if out.input_tokens is not None
                else estimate_tokens(prepared.input_chars),
                output_tokens=out.output_tokens if out.output_tokens is not None else estimate_tokens(produced),
                estimated=True,
            )
        else:
            usage = Usage(input_tokens=int(out.input_tokens), output_tokens=int(out.output_tokens))
        usage.cache_read_tokens = out.cache_read_tokens or 0
        usage.cache_write_tokens = out.cache_write_tokens or 0
        usage.reasoning_tokens = out.reasoning_tokens or 0
        usage.service_tier = out.service_tier
        times = out.token_times
        attempt = Attempt(
            status=resp.status_code,
            latency_ms=latency,
            ttft_ms=out.ttft,
            itl_ms=(times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else None,
            output_chunks=len(times) or None,
            server_ms=server_time_ms(resp.headers),
            usage=usage,
            injected_fault=fault,
        )
        identity = ModelIdentity(requested=self.ref.model, model=out.model, system_fingerprint=out.fingerprint)
        return Reply(attempt=attempt, text=out.text, tool_calls=out.tool_calls, identity=identity, sent_at=start)
