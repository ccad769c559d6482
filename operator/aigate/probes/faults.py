"""Fault injection in the HTTP transport, so that the fallback path is tested against any real provider.

A request carries the fault in its `extensions` (`FAULT_EXTENSION`); the transport then answers for the
provider without sending anything (no tokens are spent), in the provider's own wire format, exactly as the
failure would reach the client. Requests without the extension pass through untouched.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from aigate.measurements import FaultMode
from aigate.probes.dialects.base import Wire

FAULT_EXTENSION = "aigate.fault"
STREAM_EXTENSION = "aigate.stream"


def error_body(wire: Wire, status: int) -> bytes:
    """The error document each provider sends with a 429 or a 5xx."""
    if wire == "anthropic":
        kind, msg = (
            ("rate_limit_error", "Number of requests has exceeded your rate limit.")
            if status == 429
            else ("overloaded_error", "Overloaded")
        )
        doc: dict[str, object] = {"type": "error", "error": {"type": kind, "message": msg}}
    elif status == 429:
        doc = {
            "error": {
                "message": "Rate limit reached for requests. Please try again later.",
                "type": "requests",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        }
    else:
        doc = {
            "error": {
                "message": "The server is overloaded or not ready yet.",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        }
    return json.dumps(doc).encode()


def _valid_body(wire: Wire, stream: bool) -> bytes:
    if wire == "anthropic":
        if stream:
            return (
                b"event: message_start\ndata: "
                + json.dumps(
                    {
                        "type": "message_start",
                        "message": {
                            "id": "msg_fault",
                            "type": "message",
                            "role": "assistant",
                            "content": [],
                            "model": "fault",
                            "usage": {"input_tokens": 10, "output_tokens": 1},
                        },
                    }
                ).encode()
                + b'\n\nevent: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, '
                b'"delta": {"type": "text_delta", "text": "The answer is'
            )
        return json.dumps(
            {
                "id": "msg_fault",
                "type": "message",
                "role": "assistant",
                "model": "fault",
                "content": [{"type": "text", "text": "The answer is 42."}],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": 10, "output_tokens": 6},
            }
        ).encode()
    if wire == "responses":
        if stream:
            return (
                b'event: response.created\ndata: {"type": "response.created", "sequence_number": 0, '
                b'"response": {"id": "resp_fault", "object": "response", "status": "in_progress", "model": "fault", '
                b'"output": []}}\n\nevent: response.output_text.delta\ndata: {"type": "response.output_text.delta", '
                b'"sequence_number": 1, "item_id": "msg_fault", "output_index": 0, "content_index": 0, '
                b'"delta": "The ans'
            )
        return json.dumps(
            {
                "id": "resp_fault",
                "object": "response",
                "status": "completed",
                "model": "fault",
                "output": [
                    {
                        "type": "message",
                        "id": "msg_fault",
                        "status": "completed",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": "The answer is 42.", "annotations": []}],
                    }
                ],
                "usage": {"input_tokens": 10, "output_tokens": 6, "total_tokens": 16},
            }
        ).encode()
    if stream:
        return (
            b'data: {"id": "chatcmpl-fault", "object": "chat.completion.chunk", '
            b'"choices": [{"index": 0, "delta": {"content": "The ans'
        )
    return json.dumps(
        {
            "id": "chatcmpl-fault",
            "object": "chat.completion",
            "model": "fault",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "The answer is 42."}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 6, "total_tokens": 16},
        }
    ).encode()


def _event(name: str | None, doc: dict[str, Any]) -> bytes:
    head = f"event: {name}\n".encode() if name else b""
    return head + b"data: " + json.dumps(doc).encode() + b"\n\n"


def stalled_stream_head(wire: Wire) -> bytes:
    """The complete events a stream sends before it stalls: the start, and the first words of the answer."""
    if wire == "anthropic":
        message = {
            "id": "msg_stall",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": "fault",
            "usage": {"input_tokens": 10, "output_tokens": 1},
        }
        return (
            _event("message_start", {"type": "message_start", "message": message})
            + _event(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            )
            + _event(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "The answer"}},
            )
        )
    if wire == "responses":
        response = {"id": "resp_stall", "object": "response", "status": "in_progress", "model": "fault", "output": []}
        return _event("response.created", {"type": "response.created", "sequence_number": 0, "response": response}) + (
            _event(
                "response.output_text.delta",
                {
                    "type": "response.output_text.delta",
                    "sequence_number": 1,
                    "item_id": "msg_stall",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": "The answer",
                },
            )
        )
    chunk = {
        "id": "chatcmpl-stall",
        "object": "chat.completion.chunk",
        "model": "fault",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": "The answer"}}],
    }
    return _event(None, chunk)


class _StallingStream(httpx.AsyncByteStream):
    """The first events of an answer, then nothing until the client's read timeout."""

    def __init__(self, head: bytes, wait_s: float | None, request: httpx.Request) -> None:
        self.head, self.wait_s, self.request = head, wait_s, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.head
        if self.wait_s is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(self.wait_s)
        raise httpx.ReadTimeout("stream stalled mid-answer (injected)", request=self.request)


def malformed_body(wire: Wire, stream: bool) -> bytes:
    """A 200 whose JSON stops half way, as when a proxy or the provider cuts the body short."""
    if stream:
        return _valid_body(wire, True)
    body = _valid_body(wire, False)
    return body[: len(body) // 2]


class FaultInjectingTransport(httpx.AsyncBaseTransport):
    """Wraps the real transport; answers requests marked with a fault as the failing provider would."""

    def __init__(self, inner: httpx.AsyncBaseTransport, wire: Wire, *, retry_after_s: float = 1.0) -> None:
        self._inner = inner
        self.wire = wire
        self.retry_after_s = retry_after_s

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        fault: FaultMode | None = request.extensions.get(FAULT_EXTENSION)
        if fault is None:
            return await self._inner.handle_async_request(request)
        return await self._inject(request, fault)

    async def _inject(self, request: httpx.Request, fault: FaultMode) -> httpx.Response:
        stream = bool(request.extensions.get(STREAM_EXTENSION, False))
        if fault == "stream_stall" and stream:
            read = (request.extensions.get("timeout") or {}).get("read")
            wait = float(read) if isinstance(read, int | float) else None
            headers = {"content-type": "text/event-stream"}
            return httpx.Response(
                200,
                headers=headers,
                stream=_StallingStream(stalled_stream_head(self.wire), wait, request),
                request=request,
            )
        if fault in ("timeout", "stream_stall"):  # a stalled generation behind an unstreamed call: no answer
            timeouts = request.extensions.get("timeout") or {}
            read = timeouts.get("read")
            # hang as an unresponsive provider does, until the client gives up
            if not isinstance(read, int | float):
                await asyncio.Event().wait()
            else:
                await asyncio.sleep(float(read))
            raise httpx.ReadTimeout("timed out (injected: provider did not answer)", request=request)
        if fault == "connection_reset":
            raise httpx.ReadError("[Errno 104] Connection reset by peer (injected)", request=request)
        if fault == "http_5xx":
            return httpx.Response(
                503, headers={"content-type": "application/json"}, content=error_body(self.wire, 503), request=request
            )
        if fault == "http_429":
            retry_after = self.retry_after_s
            shown = str(int(retry_after)) if float(retry_after).is_integer() else f"{retry_after:g}"
            headers = {"content-type": "application/json", "retry-after": shown}
            return httpx.Response(429, headers=headers, content=error_body(self.wire, 429), request=request)
        if fault == "malformed_body":
            ctype = "text/event-stream" if stream else "application/json"
            return httpx.Response(
                200, headers={"content-type": ctype}, content=malformed_body(self.wire, stream), request=request
            )
        raise ValueError(f"unknown fault mode {fault!r}")

    async def aclose(self) -> None:
        await self._inner.aclose()
