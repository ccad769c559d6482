"""The wire formats, as the real providers speak them: request parsing, answers (JSON and SSE), errors.

Pure functions, no I/O: the server decides what happens, this module says how each provider would put it.
Shapes follow the public API references of OpenAI Chat Completions (and Azure OpenAI, which adds content
filter results), OpenAI Responses and Anthropic Messages, and the official SDKs' types parse them
(tests/test_sdk_simulator.py), including the fields a careful client may read (ids, `created`,
`system_fingerprint`, cache token counts, `stop_sequence`).
"""

from __future__ import annotations

import json
import math
import random
import string
import time
from dataclasses import dataclass, field
from typing import Any, Literal

Wire = Literal["openai", "anthropic"]

CHARS_PER_TOKEN = 4
_ALNUM = string.ascii_letters + string.digits
_ids = random.Random()
"""Ids are not part of the seeded behaviour: a separate, unseeded generator."""


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def new_id(prefix: str, n: int = 24) -> str:
    return prefix + "".join(_ids.choices(_ALNUM, k=n))


def count_tokens(chars: int) -> int:
    """~4 characters per token, at least one: what a client estimating usage would also assume."""
    return max(1, math.ceil(chars / CHARS_PER_TOKEN))


class BadRequest(Exception):
    """A request the real provider would refuse with a 400."""


@dataclass(slots=True)
class ChatRequest:
    """What the simulator needs from a request, in either wire format."""

    model: str
    last_user: str
    all_text: str
    input_chars: int
    tool_names: frozenset[str]
    tools_allowed: bool
    stream: bool
    include_usage: bool
    echo: dict[str, Any] = field(default_factory=dict)
    """Request parameters a Responses answer repeats (instructions, tools, max_output_tokens...)."""


def _text_of(content: Any) -> str:
    """A message's text: a string, or the text (and tool result) parts of a content array."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
                elif part.get("type") == "tool_result":
                    parts.append(_text_of(part.get("content")))
                elif part.get("type") == "tool_use" and isinstance(part.get("input"), dict):
                    parts.append(json.dumps(part["input"]))
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    return ""


def _messages(doc: dict[str, Any]) -> list[dict[str, Any]]:
    msgs = doc.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise BadRequest("messages: a non-empty array is required")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise BadRequest(f"messages.{i}.role: Field required")
    return msgs


def parse_openai(doc: Any, deployment: str | None = None) -> ChatRequest:
    """A Chat Completions request; on the Azure path the deployment names the model."""
    if not isinstance(doc, dict):
        raise BadRequest("the request body must be a JSON object")
    model = deployment if deployment is not None else doc.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("you must provide a model parameter")
    msgs = _messages(doc)
    texts = [_text_of(m.get("content")) for m in msgs]
    last_user = next((t for m, t in zip(reversed(msgs), reversed(texts), strict=True) if m["role"] == "user"), "")
    names: set[str] = set()
    tools = doc.get("tools") or []
    if not isinstance(tools, list):
        raise BadRequest("tools: expected an array")
    for t in tools:
        fn = t.get("function") if isinstance(t, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise BadRequest("tools: each tool needs type 'function' and a function.name")
        names.add(fn["name"])
    for fn in doc.get("functions") or []:  # the legacy form
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            names.add(fn["name"])
    stream_options = doc.get("stream_options")
    all_text = "\n".join(texts)
    tools_chars = len(json.dumps(tools)) if tools else 0
    return ChatRequest(
        model=model,
        last_user=last_user,
        all_text=all_text,
        input_chars=len(all_text) + tools_chars,
        tool_names=frozenset(names),
        tools_allowed=doc.get("tool_choice") != "none",
        stream=doc.get("stream") is True,
        include_usage=isinstance(stream_options, dict) and stream_options.get("include_usage") is True,
    )


def parse_anthropic(doc: Any) -> ChatRequest:
    """A Messages request: `model`, `max_tokens` and `messages` are required, as by the real API."""
    if not isinstance(doc, dict):
        raise BadRequest("the request body must be a JSON object")
    model = doc.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: Field required")
    if not isinstance(doc.get("max_tokens"), int):
        raise BadRequest("max_tokens: Field required")
    msgs = _messages(doc)
    texts = [_text_of(m.get("content")) for m in msgs]
    last_user = ""
    for m, t in zip(reversed(msgs), reversed(texts), strict=True):
        # a user turn made only of tool results is not what the user asked
        if m["role"] == "user" and t and not _only_tool_results(m.get("content")):
            last_user = t
            break
    system = _text_of(doc.get("system"))
    tools = doc.get("tools") or []
    if not isinstance(tools, list):
        raise BadRequest("tools: Input should be a valid list")
    names = {t["name"] for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str)}
    all_text = "\n".join([system, *texts]) if system else "\n".join(texts)
    choice = doc.get("tool_choice")
    return ChatRequest(
        model=model,
        last_user=last_user,
        all_text=all_text,
        input_chars=len(all_text) + (len(json.dumps(tools)) if tools else 0),
        tool_names=frozenset(names),
        tools_allowed=not (isinstance(choice, dict) and choice.get("type") == "none"),
        stream=doc.get("stream") is True,
        include_usage=True,
    )


def _only_tool_results(content: Any) -> bool:
    return (
        isinstance(content, list)
        and bool(content)
        and all(isinstance(p, dict) and p.get("type") == "tool_result" for p in content)
    )


@dataclass(slots=True)
class Answer:
    """What the model says and what it costs, independent of the wire format."""

    model: str
    content: str
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    """Part of input_tokens."""
    reasoning_tokens: int = 0
    """Part of output_tokens."""
    usage: bool = True
    fingerprint: str | None = None


@dataclass(slots=True)
class Stream:
    """SSE events in three parts: `head` goes out at once, `body` carries the tokens (paced by the server),
    `tail` closes the stream right after the last token."""

    head: list[bytes]
    body: list[bytes]
    tail: list[bytes]


# ---------------------------------------------------------------- OpenAI


def _openai_usage(a: Answer) -> dict[str, Any]:
    return {
        "prompt_tokens": a.input_tokens,
        "completion_tokens": a.output_tokens,
        "total_tokens": a.input_tokens + a.output_tokens,
        "prompt_tokens_details": {"cached_tokens": a.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": a.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


_AZURE_FILTER = {k: {"filtered": False, "severity": "safe"} for k in ("hate", "self_harm", "sexual", "violence")}
_AZURE_PROMPT_FILTER = [{"prompt_index": 0, "content_filter_results": _AZURE_FILTER}]


def openai_json(a: Answer, *, azure: bool = False) -> bytes:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": a.content if a.content or not a.tool_calls else None,
        "refusal": None,
        "annotations": [],
    }
    if a.tool_calls:
        message["tool_calls"] = [
            {"id": new_id("call_"), "type": "function", "function": {"name": n, "arguments": json.dumps(args)}}
            for n, args in a.tool_calls
        ]
    choice: dict[str, Any] = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": "tool_calls" if a.tool_calls else "stop",
    }
    doc: dict[str, Any] = {
        "id": new_id("chatcmpl-", 29),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": a.model,
        "choices": [choice],
    }
    if a.usage:
        doc["usage"] = _openai_usage(a)
    if azure:
        choice["content_filter_results"] = _AZURE_FILTER
        doc["prompt_filter_results"] = _AZURE_PROMPT_FILTER
    else:
        doc["service_tier"] = "default"
    doc["system_fingerprint"] = a.fingerprint
    return _dumps(doc)


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def openai_events(a: Answer, *, include_usage: bool, chunk_chars: int, azure: bool = False) -> Stream:
    """The SSE events of a streamed completion: role chunk, content and tool-call deltas, the finish chunk,
    the usage chunk (only with stream_options.include_usage), then `data: [DONE]`."""
    cid, created = new_id("chatcmpl-", 29), int(time.time())
    with_usage = include_usage and a.usage

    def event(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        doc: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": a.model,
            "system_fingerprint": a.fingerprint,
            "choices": choices,
        }
        if not azure:
            doc["service_tier"] = "default"
        if with_usage:
            doc["usage"] = usage
        return b"data: " + _dumps(doc) + b"\n\n"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        if azure:
            choice["content_filter_results"] = {} if finish else _AZURE_FILTER
        return event([choice])

    head: list[bytes] = []
    if azure:  # Azure opens with the prompt's content filter verdict and no choices
        first = {"choices": [], "created": 0, "id": "", "model": "", "object": "", "prompt_filter_results": []}
        first["prompt_filter_results"] = _AZURE_PROMPT_FILTER
        head.append(b"data: " + _dumps(first) + b"\n\n")
    head.append(chunk({"role": "assistant", "content": "" if a.content or not a.tool_calls else None, "refusal": None}))
    body = [chunk({"content": piece}) for piece in _chunks(a.content, chunk_chars)]
    for i, (name, args) in enumerate(a.tool_calls):
        opening = {"index": i, "id": new_id("call_"), "type": "function", "function": {"name": name, "arguments": ""}}
        body.append(chunk({"tool_calls": [opening]}))
        body += [
            chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
            for piece in _chunks(json.dumps(args), chunk_chars)
        ]
    tail = [chunk({}, "tool_calls" if a.tool_calls else "stop")]
    if with_usage:
        tail.append(event([], _openai_usage(a)))
    tail.append(b"data: [DONE]\n\n")
    return Stream(head, body, tail)


# ---------------------------------------------------------------- OpenAI Responses

_ECHOED: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "metadata": {},
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "store": True,
    "temperature": 1.0,
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "truncation": "disabled",
    "user": None,
}
"""What a response object repeats from its request, with the API's defaults."""


def _item_text(item: dict[str, Any]) -> str:
    """The text of one input item: a message (string or content parts), a function call or its output."""
    kind = item.get("type")
    if kind == "function_call":
        return str(item.get("arguments") or "")
    if kind == "function_call_output":
        out = item.get("output")
        return out if isinstance(out, str) else _text_of(out)
    return _text_of(item.get("content"))


def parse_responses(doc: Any) -> ChatRequest:
    """A Responses request: `model` and `input` (a string or an array of items); `instructions` is the
    system prompt; function tools are flat (`{"type": "function", "name": ...}`). On Azure, `model` is the
    deployment."""
    if not isinstance(doc, dict):
        raise BadRequest("the request body must be a JSON object")
    model = doc.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("Missing required parameter: 'model'.")
    raw = doc.get("input")
    if isinstance(raw, str):
        items: list[dict[str, Any]] = [{"role": "user", "content": raw}]
    elif isinstance(raw, list) and raw:
        items = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise BadRequest(f"Invalid type for 'input[{i}]': expected an object.")
            if "role" not in item and item.get("type") not in ("function_call", "function_call_output", "reasoning"):
                raise BadRequest(f"Missing required parameter: 'input[{i}].role'.")
            items.append(item)
    else:
        raise BadRequest("Missing required parameter: 'input'.")
    texts = [_item_text(item) for item in items]
    last_user = ""
    for item, text in zip(reversed(items), reversed(texts), strict=True):
        if item.get("role") == "user" and text:
            last_user = text
            break
    instructions = doc.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise BadRequest("Invalid type for 'instructions': expected a string.")
    tools = doc.get("tools") or []
    if not isinstance(tools, list):
        raise BadRequest("Invalid type for 'tools': expected an array.")
    names: set[str] = set()
    for i, t in enumerate(tools):
        if not isinstance(t, dict) or not isinstance(t.get("type"), str):
            raise BadRequest(f"Missing required parameter: 'tools[{i}].type'.")
        if t["type"] == "function":
            if not isinstance(t.get("name"), str) or not t["name"]:
                raise BadRequest(f"Missing required parameter: 'tools[{i}].name'.")
            names.add(t["name"])
    all_text = "\n".join([instructions, *texts]) if instructions else "\n".join(texts)
    echo = {k: doc.get(k, default) for k, default in _ECHOED.items()}
    return ChatRequest(
        model=model,
        last_user=last_user,
        all_text=all_text,
        input_chars=len(all_text) + (len(json.dumps(tools)) if tools else 0),
        tool_names=frozenset(names),
        tools_allowed=doc.get("tool_choice") != "none",
        stream=doc.get("stream") is True,
        include_usage=True,
        echo=echo,
    )


def _responses_usage(a: Answer) -> dict[str, Any]:
    return {
        "input_tokens": a.input_tokens,
        "input_tokens_details": {"cached_tokens": a.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": a.output_tokens,
        "output_tokens_details": {"reasoning_tokens": a.reasoning_tokens},
        "total_tokens": a.input_tokens + a.output_tokens,
    }


def _hex_id(prefix: str) -> str:
    return prefix + "".join(_ids.choices("0123456789abcdef", k=48))


@dataclass(slots=True)
class _Items:
    """The output items of one answer, with their ids fixed so the stream and the final object agree."""

    reasoning: dict[str, Any] | None
    message: dict[str, Any] | None
    calls: list[dict[str, Any]]

    @property
    def all(self) -> list[dict[str, Any]]:
        return [i for i in (self.reasoning, self.message) if i is not None] + self.calls


def _output_items(a: Answer) -> _Items:
    reasoning = None
    if a.reasoning_tokens:  # a reasoning model's summary-less reasoning item comes first
        reasoning = {"id": _hex_id("rs_"), "type": "reasoning", "summary": []}
    message = None
    if a.content or not a.tool_calls:
        part = {"type": "output_text", "text": a.content, "annotations": [], "logprobs": []}
        message = {
            "id": _hex_id("msg_"),
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [part],
        }
    calls = [
        {
            "id": _hex_id("fc_"),
            "type": "function_call",
            "status": "completed",
            "arguments": json.dumps(args),
            "call_id": new_id("call_"),
            "name": name,
        }
        for name, args in a.tool_calls
    ]
    return _Items(reasoning, message, calls)


def _response(
    a: Answer, rid: str, created: int, echo: dict[str, Any], *, status: str, output: list[dict[str, Any]]
) -> dict[str, Any]:
    done = status == "completed"
    return {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "completed_at": int(time.time()) if done else None,
        "error": None,
        "incomplete_details": None,
        **{k: echo.get(k, default) for k, default in _ECHOED.items()},
        "model": a.model,
        "output": output,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "usage": _responses_usage(a) if done and a.usage else None,
    }


def responses_json(a: Answer, echo: dict[str, Any] | None = None) -> bytes:
    """A response object: output items (reasoning, the message, function calls) and the usage."""
    items = _output_items(a)
    doc = _response(a, _hex_id("resp_"), int(time.time()), echo or {}, status="completed", output=items.all)
    return _dumps(doc)


def responses_events(a: Answer, *, chunk_chars: int, echo: dict[str, Any] | None = None) -> Stream:
    """The typed events of a streamed response: response.created and .in_progress, per output item
    output_item.added / its deltas / output_item.done (text via content_part and output_text events,
    function calls via function_call_arguments events), then response.completed with the usage. Every
    event carries its `sequence_number`."""
    rid, created, echo = _hex_id("resp_"), int(time.time()), echo or {}
    items = _output_items(a)
    seq = iter(range(1 << 30))

    def ev(kind: str, **fields: Any) -> bytes:
        return _event(kind, {"type": kind, **fields, "sequence_number": next(seq)})

    pending = _response(a, rid, created, echo, status="in_progress", output=[])
    head = [ev("response.created", response=pending), ev("response.in_progress", response=pending)]
    body: list[bytes] = []
    index = 0
    if items.reasoning is not None:
        head.append(ev("response.output_item.added", output_index=index, item=items.reasoning))
        head.append(ev("response.output_item.done", output_index=index, item=items.reasoning))
        index += 1
    if items.message is not None:
        msg, mid = items.message, items.message["id"]
        part = msg["content"][0]
        opened = {**msg, "status": "in_progress", "content": []}
        head.append(ev("response.output_item.added", output_index=index, item=opened))
        empty = {**part, "text": ""}
        head.append(ev("response.content_part.added", item_id=mid, output_index=index, content_index=0, part=empty))
        body += [
            ev("response.output_text.delta", item_id=mid, output_index=index, content_index=0, delta=d, logprobs=[])
            for d in _chunks(a.content, chunk_chars)
        ]
        body.append(
            ev(
                "response.output_text.done",
                item_id=mid,
                output_index=index,
                content_index=0,
                text=a.content,
                logprobs=[],
            )
            + ev("response.content_part.done", item_id=mid, output_index=index, content_index=0, part=part)
            + ev("response.output_item.done", output_index=index, item=msg)
        )
        index += 1
    for call in items.calls:
        opened = {**call, "status": "in_progress", "arguments": ""}
        body.append(ev("response.output_item.added", output_index=index, item=opened))
        body += [
            ev("response.function_call_arguments.delta", item_id=call["id"], output_index=index, delta=d)
            for d in _chunks(call["arguments"], chunk_chars)
        ]
        body.append(
            ev(
                "response.function_call_arguments.done",
                item_id=call["id"],
                output_index=index,
                name=call["name"],
                arguments=call["arguments"],
            )
            + ev("response.output_item.done", output_index=index, item=call)
        )
        index += 1
    final = _response(a, rid, created, echo, status="completed", output=items.all)
    tail = [ev("response.completed", response=final)]
    return Stream(head, body, tail)


# ---------------------------------------------------------------- Anthropic


def _anthropic_usage(a: Answer, output_tokens: int) -> dict[str, Any]:
    """Anthropic counts cache reads apart: `input_tokens` is only the uncached part."""
    return {
        "input_tokens": a.input_tokens - a.cached_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": a.cached_tokens,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def anthropic_json(a: Answer) -> bytes:
    content: list[dict[str, Any]] = []
    if a.content or not a.tool_calls:
        content.append({"type": "text", "text": a.content})
    content += [
        {"type": "tool_use", "id": new_id("toolu_01", 22), "name": n, "input": args} for n, args in a.tool_calls
    ]
    doc: dict[str, Any] = {
        "id": new_id("msg_01", 22),
        "type": "message",
        "role": "assistant",
        "model": a.model,
        "content": content,
        "stop_reason": "tool_use" if a.tool_calls else "end_turn",
        "stop_sequence": None,
    }
    if a.usage:
        doc["usage"] = _anthropic_usage(a, a.output_tokens)
    return _dumps(doc)


def _event(name: str, doc: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + _dumps(doc) + b"\n\n"


def anthropic_events(a: Answer, *, chunk_chars: int) -> Stream:
    """The SSE events of a streamed message: message_start, per block content_block_start / deltas /
    content_block_stop (a ping after the first start), message_delta with stop_reason and usage, message_stop."""
    message: dict[str, Any] = {
        "id": new_id("msg_01", 22),
        "type": "message",
        "role": "assistant",
        "model": a.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
    }
    if a.usage:
        message["usage"] = _anthropic_usage(a, 1)
    head = [_event("message_start", {"type": "message_start", "message": message})]
    body: list[bytes] = []
    index = 0
    if a.content or not a.tool_calls:
        start = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        head += [_event("content_block_start", start), _event("ping", {"type": "ping"})]
        body += [
            _event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": d})
            for d in ({"type": "text_delta", "text": piece} for piece in _chunks(a.content, chunk_chars))
        ]
        body.append(_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
        index = 1
    for i, (name, args) in enumerate(a.tool_calls, start=index):
        block = {"type": "tool_use", "id": new_id("toolu_01", 22), "name": name, "input": {}}
        body.append(_event("content_block_start", {"type": "content_block_start", "index": i, "content_block": block}))
        if i == 0:
            body.append(_event("ping", {"type": "ping"}))
        body += [
            _event("content_block_delta", {"type": "content_block_delta", "index": i, "delta": d})
            for d in (
                {"type": "input_json_delta", "partial_json": p} for p in ["", *_chunks(json.dumps(args), chunk_chars)]
            )
        ]
        body.append(_event("content_block_stop", {"type": "content_block_stop", "index": i}))
    delta: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use" if a.tool_calls else "end_turn", "stop_sequence": None},
    }
    if a.usage:
        delta["usage"] = {"output_tokens": a.output_tokens}
    tail = [_event("message_delta", delta), _event("message_stop", {"type": "message_stop"})]
    return Stream(head, body, tail)


# ---------------------------------------------------------------- errors

_OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", None, "You are not allowed to perform this request."),
    404: ("invalid_request_error", None, "The model does not exist or you do not have access to it."),
    408: ("timeout", None, "Request timed out."),
    409: ("conflict", None, "The request conflicts with another request."),
    413: ("invalid_request_error", None, "Request too large."),
    422: ("invalid_request_error", None, "Unprocessable request."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
    504: ("server_error", None, "The server timed out while processing your request."),
}

_ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out."),
    529: ("overloaded_error", "Overloaded"),
}


def openai_error(status: int, message: str | None = None, *, code: str | None = None, azure: bool = False) -> bytes:
    etype, default_code, default_msg = _OPENAI_ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, f"HTTP {status}")
    )
    if azure:  # Azure's own error documents carry a code and a message, no type
        return _dumps({"error": {"code": code or str(status), "message": message or default_msg}})
    return _dumps(
        {"error": {"message": message or default_msg, "type": etype, "param": None, "code": code or default_code}}
    )


def anthropic_error(status: int, message: str | None = None) -> bytes:
    etype, default_msg = _ANTHROPIC_ERRORS.get(status, ("api_error" if status >= 500 else "invalid_request_error", ""))
    if status in (502, 503):
        etype = "overloaded_error" if status == 503 else "api_error"
    return _dumps(
        {
            "type": "error",
            "error": {"type": etype, "message": message or default_msg or f"HTTP {status}"},
            "request_id": new_id("req_011", 21),
        }
    )


def error_body(wire: Wire, status: int, message: str | None = None, *, azure: bool = False) -> bytes:
    if wire == "anthropic":
        return anthropic_error(status, message)
    return openai_error(status, message, azure=azure)


def truncated(body: bytes) -> bytes:
    """A broken 200 body: the first half of a real one (what a dropped proxy buffer looks like)."""
    return body[: max(1, len(body) // 2)]
