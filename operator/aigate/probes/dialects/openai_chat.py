"""OpenAI Chat Completions, as spoken by OpenAI, Azure OpenAI and openai-compatible servers (vLLM, Ollama...).

The three differ only at the edges: Azure names the model by its deployment in the URL and authenticates
with `api-key`; local servers may not know `max_completion_tokens`, which OpenAI's newer models require.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aigate.api.load import ResolvedTool
from aigate.api.models import Message, ModelRef
from aigate.measurements import ToolCall
from aigate.probes.dialects.base import (
    JSON_HEADERS,
    Malformed,
    Parsed,
    Reader,
    Wire,
    arguments,
    decode_event,
    stream_error,
)

AZURE_API_VERSION = "2024-10-21"
"""The current GA api-version of Azure OpenAI chat completions."""


def v1_url(base: str, path: str) -> str:
    """`base` + `/v1/<path>`, without doubling a `/v1` the declared endpoint already ends with."""
    base = base.rstrip("/")
    return f"{base}/{path}" if base.endswith("/v1") else f"{base}/v1/{path}"


def openai_auth(ref: ModelRef, api_key: str | None) -> dict[str, str]:
    """Azure's `api-key`, everyone else's bearer token; no header at all without a key."""
    headers = dict(JSON_HEADERS)
    if api_key:
        if ref.provider == "azure-openai":
            headers["api-key"] = api_key
        else:
            headers["authorization"] = f"Bearer {api_key}"
    return headers


def chat_usage(usage: Any, out: Parsed) -> None:
    """Chat Completions' usage, in an answer or in a stream's usage chunk: cached input and reasoning tokens sit in
    its *_details, each counted once."""
    if not isinstance(usage, dict):
        return
    out.input_tokens = usage.get("prompt_tokens")
    out.output_tokens = usage.get("completion_tokens")
    out.details(
        cache_read=(usage.get("prompt_tokens_details") or {}).get("cached_tokens"),
        reasoning=(usage.get("completion_tokens_details") or {}).get("reasoning_tokens"),
    )


def function_tools(tools: Sequence[ResolvedTool]) -> list[dict[str, Any]]:
    return [
        {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
        for t in tools
    ]


class ChatCompletions:
    """`POST /v1/chat/completions` (Azure: `/openai/deployments/<deployment>/chat/completions`)."""

    wire: Wire = "openai"
    api = "chatCompletions"

    def __init__(self, ref: ModelRef) -> None:
        self.ref = ref

    def url(self, base_url: str | None = None) -> str:
        ref = self.ref
        base = (base_url or ref.base_url()).rstrip("/")
        if ref.provider == "azure-openai":
            version = ref.api_version or AZURE_API_VERSION
            return f"{base}/openai/deployments/{ref.model}/chat/completions?api-version={version}"
        return v1_url(base, "chat/completions")

    def headers(self, api_key: str | None) -> dict[str, str]:
        return openai_auth(self.ref, api_key)

    def body(self, system_prompt: str, messages: Sequence[Message], tools: Sequence[ResolvedTool]) -> dict[str, Any]:
        ref = self.ref
        msgs = [{"role": "system", "content": system_prompt}] if system_prompt else []
        msgs += [{"role": m.role, "content": m.content} for m in messages]
        body: dict[str, Any] = {"messages": msgs}
        if ref.provider != "azure-openai":
            body["model"] = ref.model
        # OpenAI's newer models refuse max_tokens; local servers may not know max_completion_tokens
        body["max_tokens" if ref.provider == "openai-compatible" else "max_completion_tokens"] = ref.max_tokens
        if tools:
            body["tools"] = function_tools(tools)
        if ref.temperature is not None:
            body["temperature"] = ref.temperature
        if ref.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def parse(self, doc: Any) -> Parsed:
        if not isinstance(doc, dict) or not isinstance(doc.get("choices"), list) or not doc["choices"]:
            raise Malformed("no choices in the answer")
        choice = doc["choices"][0]
        msg = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(msg, dict):
            raise Malformed("no message in choices[0]")
        out = Parsed()
        out.text = msg.get("content") or ""
        for tc in msg.get("tool_calls") or []:
            fn = tc.get("function") or {}
            out.tool_calls.append(ToolCall(name=str(fn.get("name", "")), arguments=arguments(fn.get("arguments"))))
        out.model = doc.get("model")
        out.fingerprint = doc.get("system_fingerprint")
        out.details(tier=doc.get("service_tier"))
        chat_usage(doc.get("usage"), out)
        return out.checked()

    def stream(self, start: float) -> ChatCompletionsReader:
        return ChatCompletionsReader(start)


class ChatCompletionsReader(Reader):
    """`data:` chunks with choice deltas, an optional usage chunk, then `data: [DONE]`."""

    __slots__ = ()

    def feed(self, data: str) -> None:
        if data == "[DONE]":
            self.done = True
            return
        doc = decode_event(data)
        if "error" in doc:
            raise stream_error(doc)
        out = self.out
        out.model = doc.get("model") or out.model
        out.fingerprint = doc.get("system_fingerprint") or out.fingerprint
        out.details(tier=doc.get("service_tier"))
        chat_usage(doc.get("usage"), out)
        for choice in doc.get("choices") or []:
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                self.first_token()
                self.parts.append(content)
            for tc in delta.get("tool_calls") or []:
                self.first_token()
                slot = self.tools.setdefault(int(tc.get("index", 0)), ["", []])
                fn = tc.get("function") or {}
                if fn.get("name"):
                    slot[0] = fn["name"]
                if fn.get("arguments"):
                    slot[1].append(fn["arguments"])
