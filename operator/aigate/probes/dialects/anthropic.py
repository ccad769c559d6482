"""Anthropic Messages: `POST /v1/messages`, the system prompt beside the turns, tools with `input_schema`,
and a stream of typed events from `message_start` to `message_stop`.

The headers are those the current official SDK sends (`anthropic` 2.14: `anthropic-version: 2026-10-21`,
the key as a bearer token), so a gate run looks to the provider like any current client; a test keeps them
equal to the SDK's.
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
from aigate.probes.dialects.openai_chat import v1_url

ANTHROPIC_VERSION = "2026-10-21"
"""The `anthropic-version` the official SDK sends (its `ANTHROPIC_API_VERSION`)."""


def input_tokens(usage: dict[str, Any]) -> int | None:
    """Every input token: Anthropic counts cache reads and cache writes apart from `input_tokens`, while
    the other APIs include cached tokens in their input count."""
    base = usage.get("input_tokens")
    if not isinstance(base, int):
        return None
    cached = (usage.get("cache_read_input_tokens") or 0) + (usage.get("cache_creation_input_tokens") or 0)
    return base + int(cached)


def cache_details(usage: dict[str, Any], out: Parsed) -> None:
    out.details(
        cache_read=usage.get("cache_read_input_tokens"),
        cache_write=usage.get("cache_creation_input_tokens"),
        tier=usage.get("service_tier"),
    )


class Messages:
    """Anthropic's Messages API."""

    wire: Wire = "anthropic"
    api = "messages"

    def __init__(self, ref: ModelRef) -> None:
        self.ref = ref

    def url(self, base_url: str | None = None) -> str:
        return v1_url(base_url or self.ref.base_url(), "messages")

    def headers(self, api_key: str | None) -> dict[str, str]:
        headers = {**JSON_HEADERS, "anthropic-version": ANTHROPIC_VERSION}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        return headers

    def body(self, system_prompt: str, messages: Sequence[Message], tools: Sequence[ResolvedTool]) -> dict[str, Any]:
        ref = self.ref
        system = [system_prompt] if system_prompt else []
        system += [m.content for m in messages if m.role == "system"]
        body: dict[str, Any] = {
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
        if ref.stream:
            body["stream"] = True
        return body

    def parse(self, doc: Any) -> Parsed:
        if not isinstance(doc, dict) or not isinstance(doc.get("content"), list):
            raise Malformed("no content in the answer")
        out = Parsed()
        texts = []
        for block in doc["content"]:
            if block.get("type") == "text":
                texts.append(block.get("text", ""))
            elif block.get("type") == "tool_use":
                out.tool_calls.append(
                    ToolCall(name=str(block.get("name", "")), arguments=arguments(block.get("input")))
                )
        out.text = "".join(texts)
        out.model = doc.get("model")
        usage = doc.get("usage")
        if isinstance(usage, dict):
            out.input_tokens = input_tokens(usage)
            out.output_tokens = usage.get("output_tokens")
            cache_details(usage, out)
        return out.checked()

    def stream(self, start: float) -> MessagesReader:
        return MessagesReader(start)


class MessagesReader(Reader):
    """message_start, content blocks (text and tool_use deltas), message_delta with usage, message_stop."""

    __slots__ = ()

    def feed(self, data: str) -> None:
        doc = decode_event(data)
        kind = doc.get("type")
        if kind == "error" and "error" in doc:
            raise stream_error(doc)
        out = self.out
        if kind == "message_start":
            msg = doc.get("message") or {}
            out.model = msg.get("model")
            usage = msg.get("usage") or {}
            out.input_tokens = input_tokens(usage)
            out.output_tokens = usage.get("output_tokens")
            cache_details(usage, out)
        elif kind == "content_block_start":
            block = doc.get("content_block") or {}
            if block.get("type") == "tool_use":
                self.first_token()
                self.tools[int(doc.get("index", 0))] = [block.get("name", ""), []]
            elif block.get("text"):
                self.first_token()
                self.parts.append(block["text"])
        elif kind == "content_block_delta":
            delta = doc.get("delta") or {}
            if delta.get("type") == "text_delta":
                self.first_token()
                self.parts.append(delta.get("text", ""))
            elif delta.get("type") == "input_json_delta":
                slot = self.tools.setdefault(int(doc.get("index", 0)), ["", []])
                slot[1].append(delta.get("partial_json", ""))
        elif kind == "message_delta":
            usage = doc.get("usage") or {}
            if usage.get("output_tokens") is not None:
                out.output_tokens = usage["output_tokens"]
            if usage.get("input_tokens") is not None:
                out.input_tokens = input_tokens(usage)
                cache_details(usage, out)
        elif kind == "message_stop":
            self.done = True
