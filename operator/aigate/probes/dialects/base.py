"""The contract every provider dialect keeps, and what the client may catch from one.

A dialect is one wire format: where a call goes, what it carries, and how the answer reads, plain and
streamed. It does no I/O and keeps no state between calls, so one instance serves every request of a model;
the client (`probes/providers.py`) owns the connection, the clock, the retries and the mapping of failures
to error kinds. Modelled on httpx's transport interface: one narrow Protocol, and one exception class per
way an answer can fail, so that the client tells failures apart by type, never by message text.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, Literal, Protocol

from aigate.api.load import ResolvedTool
from aigate.api.models import Message
from aigate.measurements import ErrorKind, ToolCall

Wire = Literal["openai", "anthropic", "responses"]
"""The wire formats, as named by fault injection (`probes/faults.py`)."""


class DialectError(Exception):
    """Base of what a dialect raises while reading an answer."""


class Malformed(DialectError):
    """The answer is not what the API defines (broken JSON, missing fields, a stream cut short)."""


class StreamError(DialectError):
    """The provider reported an error inside a 200 answer (an error event in a stream); `kind` says which."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind


class Parsed:
    """What one answer said, in any dialect; `None` where the provider did not say."""

    __slots__ = (
        "cache_read_tokens",
        "cache_write_tokens",
        "fingerprint",
        "input_tokens",
        "model",
        "output_tokens",
        "reasoning_tokens",
        "service_tier",
        "text",
        "token_times",
        "tool_calls",
        "ttft",
    )

    def __init__(self) -> None:
        self.text = ""
        self.tool_calls: list[ToolCall] = []
        self.model: str | None = None
        self.fingerprint: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.cache_read_tokens: int | None = None
        """Input tokens read from the provider's prompt cache (part of `input_tokens`)."""
        self.cache_write_tokens: int | None = None
        """Input tokens written to the provider's prompt cache (part of `input_tokens`)."""
        self.reasoning_tokens: int | None = None
        """Output tokens spent reasoning (part of `output_tokens`)."""
        self.service_tier: str | None = None
        """The tier the provider says it served (OpenAI `service_tier`, Anthropic `usage.service_tier`)."""
        self.ttft: float | None = None
        self.token_times: list[float] = []
        """Streaming: ms from the request to each chunk that carried output (the first is the ttft)."""

    def checked(self) -> Parsed:
        """This answer, once what the runner computes with is of its type: text a string, each token count a
        whole number >= 0 (the SDKs type counts as int, negatives included; a count aigate bills must be one).
        Raises `Malformed` naming the field, so that the client counts a malformed answer instead of failing later
        on `int()` or a text that is a list."""
        if not isinstance(self.text, str):
            raise Malformed(f"the answer's text is a {type(self.text).__name__}, not a string")
        if self.model is not None and not isinstance(self.model, str):
            raise Malformed(f"the answer's model is a {type(self.model).__name__}, not a string")
        counts = {
            "input tokens": self.input_tokens,
            "output tokens": self.output_tokens,
            "cache read tokens": self.cache_read_tokens,
            "cache write tokens": self.cache_write_tokens,
            "reasoning tokens": self.reasoning_tokens,
        }
        for what, count in counts.items():
            if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
                raise Malformed(f"the answer's usage gives {what} {str(count)[:20]!r}, not a token count")
        return self

    def details(self, cache_read: Any = None, cache_write: Any = None, reasoning: Any = None, tier: Any = None) -> None:
        """Token details a usage document gave (ints; anything else is not a count and is ignored), and the
        service tier the answer was billed at."""
        if isinstance(tier, str) and tier:
            self.service_tier = tier
        if isinstance(cache_read, int):
            self.cache_read_tokens = cache_read
        if isinstance(cache_write, int):
            self.cache_write_tokens = cache_write
        if isinstance(reasoning, int):
            self.reasoning_tokens = reasoning


class StreamReader(Protocol):
    """Reads one streamed answer, one server-sent event's `data` at a time.

    `feed` raises `Malformed` for an event that is not valid, `StreamError` for an error event; `done` turns
    true at the dialect's final event (the client stops reading there); `finish` returns the answer, or
    raises `Malformed` if the final event never came.
    """

    done: bool

    def feed(self, data: str) -> None: ...

    def finish(self) -> Parsed: ...


class Dialect(Protocol):
    """One provider API's wire format, for one declared model.

    - `wire` names the format for fault injection, `api` names the API measured (recorded in the evidence).
    - `url(base_url)` is where a call goes: `base_url` (e.g. the simulator) replaces the declared endpoint.
    - `headers(api_key)` are the headers of every call: content type, version, authentication.
    - `body(system_prompt, messages, tools)` is the request document (the client serialises it once per case).
    - `parse(doc)` reads a non-streamed answer already decoded from JSON; raises `Malformed`.
    - `stream(start)` returns a fresh `StreamReader` for one streamed answer; `start` is the perf_counter()
      at which the request left, from which the reader measures the time to the first token.
    """

    wire: Wire
    api: str

    def url(self, base_url: str | None = None) -> str: ...

    def headers(self, api_key: str | None) -> dict[str, str]: ...

    def body(
        self, system_prompt: str, messages: Sequence[Message], tools: Sequence[ResolvedTool]
    ) -> dict[str, Any]: ...

    def parse(self, doc: Any) -> Parsed: ...

    def stream(self, start: float) -> StreamReader: ...


JSON_HEADERS = {"content-type": "application/json", "accept": "application/json"}


def arguments(raw: Any) -> dict[str, Any] | str:
    """A tool call's arguments: a JSON object when they are one, else the raw text (which assertions show)."""
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


def provider_message(body: bytes) -> str:
    """The human part of a provider's error document (any of the three shapes), or the body's start."""
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


def error_kind_of(etype: str) -> ErrorKind:
    """An in-stream error's kind from its type or code, as the providers name them."""
    if "rate_limit" in etype:
        return "http_429"
    if etype in ("overloaded_error", "api_error", "server_error"):
        return "http_5xx"
    return "other"


def stream_error(doc: dict[str, Any]) -> StreamError:
    """An error event of the Chat Completions or Messages shape (`{"error": {"type"|"code": ...}}`)."""
    err = doc.get("error")
    etype = str(err.get("type") or err.get("code") or "") if isinstance(err, dict) else ""
    return StreamError(error_kind_of(etype), provider_message(json.dumps(doc).encode()))


def decode_event(data: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError:
        raise Malformed("a stream event is not valid JSON") from None
    if not isinstance(doc, dict):
        raise Malformed("a stream event is not a JSON object")
    return doc


class Reader:
    """What every stream reader shares: text parts, tool calls by index, and the first-token clock."""

    __slots__ = ("done", "out", "parts", "start", "tools")

    def __init__(self, start: float) -> None:
        self.start = start
        self.out = Parsed()
        self.parts: list[str] = []
        self.tools: dict[int, list[Any]] = {}
        """index -> [name, argument fragments]."""
        self.done = False

    def first_token(self) -> None:
        """Output arrived: the first sets the ttft, each is timed for the inter-token latency."""
        at = (time.perf_counter() - self.start) * 1000
        if self.out.ttft is None:
            self.out.ttft = at
        self.out.token_times.append(at)

    def finish(self) -> Parsed:
        if not self.done:
            raise Malformed("the stream ended before its final event")
        self.out.text = "".join(self.parts)
        for _, (name, frags) in sorted(self.tools.items()):
            self.out.tool_calls.append(ToolCall(name=str(name), arguments=arguments("".join(frags))))
        return self.out.checked()
