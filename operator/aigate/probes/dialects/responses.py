"""OpenAI Responses: `POST /v1/responses`, OpenAI's API for new applications, and Azure OpenAI's
(`/openai/v1/responses`, or `/openai/responses?api-version=...` when an api-version is declared).

The system prompt goes in `instructions`, the turns in `input`, function tools flat (`name` beside `type`),
and a stream is typed events from `response.created` to `response.completed`, whose usage counts every token
(cached input included in `input_tokens`, reasoning included in `output_tokens`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aigate.api.load import ResolvedTool
from aigate.api.models import Message, ModelRef
from aigate.measurements import ToolCall
from aigate.probes.dialects.base import (
    Malformed,
    Parsed,
    Reader,
    StreamError,
    Wire,
    arguments,
    decode_event,
    error_kind_of,
)
from aigate.probes.dialects.openai_chat import openai_auth, v1_url


class Responses:
    """OpenAI's Responses API (and Azure OpenAI's, where the deployment is the `model`)."""

    wire: Wire = "responses"
    api = "responses"

    def __init__(self, ref: ModelRef) -> None:
        self.ref = ref

    def url(self, base_url: str | None = None) -> str:
        ref = self.ref
        base = (base_url or ref.base_url()).rstrip("/")
        if ref.provider == "azure-openai":
            if ref.api_version:
                return f"{base}/openai/responses?api-version={ref.api_version}"
            return f"{base}/openai/v1/responses"
        return v1_url(base, "responses")

    def headers(self, api_key: str | None) -> dict[str, str]:
        return openai_auth(self.ref, api_key)

    def body(self, system_prompt: str, messages: Sequence[Message], tools: Sequence[ResolvedTool]) -> dict[str, Any]:
        ref = self.ref
        body: dict[str, Any] = {
            "model": ref.model,
            "input": [{"role": m.role, "content": m.content} for m in messages],
            "max_output_tokens": ref.max_tokens,
            # a gate run's prompts and answers are not kept by the provider
            "store": False,
        }
        if system_prompt:
            body["instructions"] = system_prompt
        if tools:
            # strict off: as in Chat Completions, a declared schema need not list every property as required
            body["tools"] = [
                {
                    "type": "function",
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                    "strict": False,
                }
                for t in tools
            ]
        if ref.temperature is not None:
            body["temperature"] = ref.temperature
        if ref.stream:
            body["stream"] = True
        return body

    def parse(self, doc: Any) -> Parsed:
        if not isinstance(doc, dict) or not isinstance(doc.get("output"), list):
            raise Malformed("no output in the answer")
        if doc.get("status") == "failed":
            raise _failed(doc)
        out = Parsed()
        read_output(doc["output"], out)
        read_response(doc, out)
        return out.checked()

    def stream(self, start: float) -> ResponsesReader:
        return ResponsesReader(start)


def read_output(items: list[Any], out: Parsed) -> None:
    texts = []
    for item in items:
        if not isinstance(item, dict):
            raise Malformed("an output item is not an object")
        if item.get("type") == "message":
            for part in item.get("content") or []:
                if part.get("type") == "output_text":
                    texts.append(part.get("text", ""))
        elif item.get("type") == "function_call":
            out.tool_calls.append(ToolCall(name=str(item.get("name", "")), arguments=arguments(item.get("arguments"))))
    out.text = "".join(texts)


def read_response(doc: dict[str, Any], out: Parsed) -> None:
    """Model and usage of a response object (the answer, or the one `response.completed` carries)."""
    out.model = doc.get("model") or out.model
    out.details(tier=doc.get("service_tier"))
    usage = doc.get("usage")
    if isinstance(usage, dict):
        out.input_tokens = usage.get("input_tokens")
        out.output_tokens = usage.get("output_tokens")
        cached = usage.get("input_tokens_details") or {}
        out.details(
            cache_read=cached.get("cached_tokens"),
            cache_write=cached.get("cache_write_tokens"),
            reasoning=(usage.get("output_tokens_details") or {}).get("reasoning_tokens"),
        )


def _failed(response: dict[str, Any]) -> StreamError:
    """A response whose status is `failed`: its error's code says which kind."""
    err = response.get("error")
    if not isinstance(err, dict):
        err = {}
    code = str(err.get("code") or "")
    return StreamError(error_kind_of(code), str(err.get("message") or code or "response failed"))


class ResponsesReader(Reader):
    """Typed events: text and function-call argument deltas, then `response.completed` (or `.incomplete`,
    an answer cut at max_output_tokens, still an answer) with the usage; `error` and `response.failed` are
    errors inside the stream."""

    __slots__ = ()

    def feed(self, data: str) -> None:
        doc = decode_event(data)
        kind = doc.get("type")
        out = self.out
        if kind == "response.output_text.delta":
            self.first_token()
            self.parts.append(str(doc.get("delta", "")))
        elif kind == "response.output_item.added":
            item = doc.get("item") or {}
            if item.get("type") == "function_call":
                self.first_token()
                self.tools[int(doc.get("output_index", 0))] = [item.get("name", ""), []]
        elif kind == "response.function_call_arguments.delta":
            slot = self.tools.setdefault(int(doc.get("output_index", 0)), ["", []])
            slot[1].append(str(doc.get("delta", "")))
        elif kind == "response.function_call_arguments.done":
            slot = self.tools.setdefault(int(doc.get("output_index", 0)), ["", []])
            slot[1] = [str(doc.get("arguments", ""))]
        elif kind in ("response.created", "response.in_progress"):
            read_response(doc.get("response") or {}, out)
        elif kind in ("response.completed", "response.incomplete"):
            read_response(doc.get("response") or {}, out)
            self.done = True
        elif kind == "response.failed":
            raise _failed(doc.get("response") or {})
        elif kind == "error":
            code = str(doc.get("code") or "")
            raise StreamError(error_kind_of(code), str(doc.get("message") or code or "error event"))
