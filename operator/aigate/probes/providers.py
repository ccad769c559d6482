"""Provider clients: one HTTP exchange with OpenAI, Azure OpenAI, an openai-compatible server or Anthropic.

Each call returns a `Reply` carrying an `Attempt` (status, error kind, latency, ttft, usage) and what the
model said (text, tool calls, identity). Nothing raises for a provider failure: every failure is an error
kind the gates can count. API keys travel only in request headers; every text that leaves this module is
passed through the scrubber.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import math
import ssl
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
from aigate.probes.faults import FAULT_EXTENSION, STREAM_EXTENSION, FaultInjectingTransport, Wire

AZURE_API_VERSION = "2024-10-21"
"""The current GA api-version of Azure OpenAI chat completions."""
ANTHROPIC_VERSION = "2023-06-01"
CHARS_PER_TOKEN = 4
"""Used to estimate tokens when a provider reports no usage."""
_DETAIL_MAX = 300
RETRY_AFTER_MAX_S = 60.0


def estimate_tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN) if chars > 0 else 0


def wire_of(provider: str) -> Wire:
    return "anthropic" if provider == "anthropic" else "openai"


def endpoint_url(ref: ModelRef, base_url: str | None = None) -> str:
    """Where the chat call goes; `base_url` (e.g. a simulator) replaces the declared endpoint."""
    base = (base_url or ref.base_url()).rstrip("/")
    if ref.provider == "azure-openai":
        version = ref.api_version or AZURE_API_VERSION
        return f"{base}/openai/deployments/{ref.model}/chat/completions?api-version={version}"
    if ref.provider == "anthropic":
        return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"
    return f"{base}/chat/completions" if base.endswith("/v1") else f"{base}/v1/chat/completions"


def auth_headers(ref: ModelRef, api_key: str | None) -> dict[str, str]:
    headers = {"content-type": "application/json", "accept": "application/json"}
    if ref.provider == "anthropic":
        headers["anthropic-version"] = ANTHROPIC_VERSION
        if api_key:
            headers["x-api-key"] = api_key
    elif ref.provider == "azure-openai":
        if api_key:
            headers["api-key"] = api_key
    elif api_key:
        headers["authorization"] = f"Bearer {api_key}"
    return headers


def build_body(
    ref: ModelRef, system_prompt: str, messages: Sequence[Message], tools: Sequence[ResolvedTool]
) -> dict[str, Any]:
    """The request document in the provider's wire format."""
    body: dict[str, Any]
    if ref.provider == "anthropic":
        system = [system_prompt] if system_prompt else []
        system += [m.content for m in messages if m.role == "system"]
        body = {
            "model": ref.model,
            "max_tokens": ref.max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in messages if m.role != "system"],
        }
        if system:
            body["system"] = "\n\n".join(system)
        if tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools
            ]
    else:
        msgs = [{"role": "system", "content": system_prompt}] if system_prompt else []
        msgs += [{"role": m.role, "content": m.content} for m in messages]
        body = {"messages": msgs}
        if ref.provider != "azure-openai":
            body["model"] = ref.model
        # OpenAI's newer models refuse max_tokens; local servers may not know max_completion_tokens
        body["max_tokens" if ref.provider == "openai-compatible" else "max_completion_tokens"] = ref.max_tokens
        if tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                }
                for t in tools
            ]
    if ref.temperature is not None:
        body["temperature"] = ref.temperature
    if ref.stream:
        body["stream"] = True
        if ref.provider != "anthropic":
            body["stream_options"] = {"include_usage": True}
    return body


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


class _Malformed(Exception):
    pass


class _StreamError(Exception):
    """An error event inside a 200 stream (Anthropic's overloaded_error, OpenAI's error chunk)."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind


def _stream_error(doc: dict[str, Any]) -> _StreamError:
    err = doc.get("error")
    etype = str(err.get("type") or err.get("code") or "") if isinstance(err, dict) else ""
    kind: ErrorKind = "other"
    if "rate_limit" in etype:
        kind = "http_429"
    elif etype in ("overloaded_error", "api_error", "server_error"):
        kind = "http_5xx"
    return _StreamError(kind, _provider_message(json.dumps(doc).encode()))


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


def _provider_message(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return body[:120].decode("utf-8", "replace").strip()
    if isinstance(doc, dict):
        err = doc.get("error")
        if isinstance(err, dict):
            return str(err.get("message") or err.get("type") or "")
        if isinstance(err, str):
            return err
        if isinstance(doc.get("message"), str):
            return str(doc["message"])
    return ""


def _arguments(raw: Any) -> dict[str, Any] | str:
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        if not raw.strip():
            return {}
        try:
            doc = json.loads(raw)
        except ValueError:
            return raw
        return doc if isinstance(doc, dict) else raw
    return str(raw)


class _Parsed:
    __slots__ = ("fingerprint", "input_tokens", "model", "output_tokens", "text", "tool_calls", "ttft")

    def __init__(self) -> None:
        self.text = ""
        self.tool_calls: list[ToolCall] = []
        self.model: str | None = None
        self.fingerprint: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.ttft: float | None = None


def _parse_openai(doc: Any, out: _Parsed) -> None:
    if not isinstance(doc, dict) or not isinstance(doc.get("choices"), list) or not doc["choices"]:
        raise _Malformed("no choices in the answer")
    choice = doc["choices"][0]
    msg = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(msg, dict):
        raise _Malformed("no message in choices[0]")
    out.text = msg.get("content") or ""
    for tc in msg.get("tool_calls") or []:
        fn = tc.get("function") or {}
        out.tool_calls.append(ToolCall(name=str(fn.get("name", "")), arguments=_arguments(fn.get("arguments"))))
    out.model = doc.get("model")
    out.fingerprint = doc.get("system_fingerprint")
    usage = doc.get("usage")
    if isinstance(usage, dict):
        out.input_tokens = usage.get("prompt_tokens")
        out.output_tokens = usage.get("completion_tokens")


def _parse_anthropic(doc: Any, out: _Parsed) -> None:
    if not isinstance(doc, dict) or not isinstance(doc.get("content"), list):
        raise _Malformed("no content in the answer")
    texts = []
    for block in doc["content"]:
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            out.tool_calls.append(ToolCall(name=str(block.get("name", "")), arguments=_arguments(block.get("input"))))
    out.text = "".join(texts)
    out.model = doc.get("model")
    usage = doc.get("usage")
    if isinstance(usage, dict):
        out.input_tokens = usage.get("input_tokens")
        out.output_tokens = usage.get("output_tokens")


class _StreamState:
    """Accumulates SSE events of either wire format into a _Parsed."""

    __slots__ = ("done", "out", "parts", "start", "tools", "wire")

    def __init__(self, wire: Wire, start: float) -> None:
        self.wire = wire
        self.start = start
        self.out = _Parsed()
        self.parts: list[str] = []
        self.tools: dict[int, list[Any]] = {}
        """index -> [name, argument fragments or input dict]."""
        self.done = False

    def _first_token(self) -> None:
        if self.out.ttft is None:
            self.out.ttft = (time.perf_counter() - self.start) * 1000

    def feed(self, data: str) -> None:
        if self.wire == "openai" and data == "[DONE]":
            self.done = True
            return
        try:
            doc = json.loads(data)
        except ValueError:
            raise _Malformed("a stream event is not valid JSON") from None
        if not isinstance(doc, dict):
            raise _Malformed("a stream event is not a JSON object")
        if "error" in doc and (self.wire == "openai" or doc.get("type") == "error"):
            raise _stream_error(doc)
        if self.wire == "openai":
            self._openai(doc)
        else:
            self._anthropic(doc)

    def _openai(self, doc: dict[str, Any]) -> None:
        out = self.out
        out.model = doc.get("model") or out.model
        out.fingerprint = doc.get("system_fingerprint") or out.fingerprint
        usage = doc.get("usage")
        if isinstance(usage, dict):
            out.input_tokens = usage.get("prompt_tokens")
            out.output_tokens = usage.get("completion_tokens")
        for choice in doc.get("choices") or []:
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                self._first_token()
                self.parts.append(content)
            for tc in delta.get("tool_calls") or []:
                self._first_token()
                slot = self.tools.setdefault(int(tc.get("index", 0)), ["", []])
                fn = tc.get("function") or {}
                if fn.get("name"):
                    slot[0] = fn["name"]
                if fn.get("arguments"):
                    slot[1].append(fn["arguments"])

    def _anthropic(self, doc: dict[str, Any]) -> None:
        out = self.out
        kind = doc.get("type")
        if kind == "message_start":
            msg = doc.get("message") or {}
            out.model = msg.get("model")
            usage = msg.get("usage") or {}
            out.input_tokens = usage.get("input_tokens")
            out.output_tokens = usage.get("output_tokens")
        elif kind == "content_block_start":
            block = doc.get("content_block") or {}
            if block.get("type") == "tool_use":
                self._first_token()
                self.tools[int(doc.get("index", 0))] = [block.get("name", ""), []]
            elif block.get("text"):
                self._first_token()
                self.parts.append(block["text"])
        elif kind == "content_block_delta":
            delta = doc.get("delta") or {}
            if delta.get("type") == "text_delta":
                self._first_token()
                self.parts.append(delta.get("text", ""))
            elif delta.get("type") == "input_json_delta":
                slot = self.tools.setdefault(int(doc.get("index", 0)), ["", []])
                slot[1].append(delta.get("partial_json", ""))
        elif kind == "message_delta":
            usage = doc.get("usage") or {}
            if usage.get("output_tokens") is not None:
                out.output_tokens = usage["output_tokens"]
            if usage.get("input_tokens") is not None:
                out.input_tokens = usage["input_tokens"]
        elif kind == "message_stop":
            self.done = True

    def finish(self) -> _Parsed:
        if not self.done:
            raise _Malformed("the stream ended before its final event")
        self.out.text = "".join(self.parts)
        for _, (name, frags) in sorted(self.tools.items()):
            self.out.tool_calls.append(ToolCall(name=str(name), arguments=_arguments("".join(frags))))
        return self.out


SHARD_CONNECTIONS = 8
"""Connections per pool shard: httpcore's pool does work linear in its size on every request, so one pool of
200 connections costs several ms of CPU per request; many small pools keep the client's overhead flat."""


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verified TLS context for every pool: loading the CA bundle costs ~15 ms each time."""
    return httpx.create_ssl_context()


class ShardedTransport(httpx.AsyncBaseTransport):
    """Round-robin over small connection pools, so that the client's own overhead stays out of the latency."""

    def __init__(self, max_connections: int, *, per_shard: int = SHARD_CONNECTIONS) -> None:
        per = max(1, min(per_shard, max_connections))
        n = max(1, math.ceil(max_connections / per))
        limits = httpx.Limits(max_connections=per, max_keepalive_connections=per)
        self._shards = [httpx.AsyncHTTPTransport(limits=limits, verify=_ssl_context()) for _ in range(n)]
        self._next = itertools.cycle(self._shards).__next__

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._next().handle_async_request(request)

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()


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
        self.wire: Wire = wire_of(ref.provider)
        self.url = endpoint_url(ref, base_url)
        self.system_prompt = system_prompt
        self.tools = list(tools)
        self.timeout_s = timeout_s
        self._scrub = scrubber or Scrubber([api_key] if api_key else [])
        inner = transport or ShardedTransport(max_connections)
        self.transport = FaultInjectingTransport(inner, self.wire, retry_after_s=fault_retry_after_s)
        self._client = httpx.AsyncClient(
            transport=self.transport,
            headers=auth_headers(ref, api_key),
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
        body = build_body(self.ref, self.system_prompt, messages, self.tools)
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
        msg = _provider_message(body)
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
        out = _Parsed()
        try:
            doc = json.loads(body)
            if self.wire == "anthropic":
                _parse_anthropic(doc, out)
            else:
                _parse_openai(doc, out)
        except ValueError:
            return self._reply(
                start, status=resp.status_code, error="malformed", detail="the body is not valid JSON", fault=fault
            )
        except (_Malformed, AttributeError, TypeError) as e:
            detail = str(e) if isinstance(e, _Malformed) else "unexpected answer structure"
            return self._reply(start, status=resp.status_code, error="malformed", detail=detail, fault=fault)
        return self._success(prepared, out, resp, start, fault)

    async def _stream(self, prepared: Prepared, ext: dict[str, Any], start: float, fault: FaultMode | None) -> Reply:
        req = self._client.build_request("POST", self.url, content=prepared.content, extensions=ext)
        resp = await self._client.send(req, stream=True)
        try:
            if resp.status_code >= 300:
                body = await resp.aread()
                return self._failure(resp, body, start, fault)
            state = _StreamState(self.wire, start)
            try:
                async for line in resp.aiter_lines():
                    if line.startswith("data:"):
                        state.feed(line[5:].strip())
                        if state.done and self.wire == "openai":
                            break
                out = state.finish()
            except (_Malformed, AttributeError, TypeError, ValueError) as e:
                detail = str(e) if isinstance(e, _Malformed) else "unexpected stream event structure"
                return self._reply(start, status=resp.status_code, error="malformed", detail=detail, fault=fault)
            except _StreamError as e:
                detail = f"error event in the stream: {e}"
                return self._reply(start, status=resp.status_code, error=e.kind, detail=detail, fault=fault)
            return self._success(prepared, out, resp, start, fault)
        finally:
            await resp.aclose()

    def _success(
        self, prepared: Prepared, out: _Parsed, resp: httpx.Response, start: float, fault: FaultMode | None
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
        attempt = Attempt(
            status=resp.status_code,
            latency_ms=latency,
            ttft_ms=out.ttft,
            server_ms=server_time_ms(resp.headers),
            usage=usage,
            injected_fault=fault,
        )
        identity = ModelIdentity(requested=self.ref.model, model=out.model, system_fingerprint=out.fingerprint)
        return Reply(attempt=attempt, text=out.text, tool_calls=out.tool_calls, identity=identity, sent_at=start)
