"""aigate's requests, checked against the official SDKs: for the same call, each dialect sends what the SDK sends.

Each SDK is pointed at a loopback server that records what arrives (and answers in the right wire format). The
SDK is called with aigate's own request body as its keyword arguments, so the SDK's signature refuses any
parameter it does not know; then the recorded request, body, path and the headers that matter, is compared
field by field with what aigate's dialect sends. aigate's bodies are also validated against the SDKs' typed
request parameters.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anthropic
import httpx
import openai
import pytest
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming, MessageCreateParamsStreaming
from openai.types.chat.completion_create_params import (
    CompletionCreateParamsNonStreaming,
    CompletionCreateParamsStreaming,
)
from openai.types.responses.response_create_params import (
    ResponseCreateParamsNonStreaming,
    ResponseCreateParamsStreaming,
)
from pydantic import TypeAdapter

from aigate.api.load import ResolvedTool
from aigate.api.models import Message, ModelRef
from aigate.probes.dialects.anthropic import ANTHROPIC_VERSION
from aigate.probes.providers import ProviderClient, auth_headers, build_body, endpoint_url
from aigate.simulator import wire

KEY = "sk-compare"
SYSTEM = "Answer in JSON."
MESSAGES = [Message(role="user", content="Review case 1041."), Message(role="assistant", content="Which one?")]
MESSAGES += [Message(role="user", content="The card one.")]
TOOLS = [
    ResolvedTool(
        name="lookup_policy",
        access="read",
        approval="none",
        description="Look up a policy",
        parameters={"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
    )
]


class Recorder(BaseHTTPRequestHandler):
    """Records each request and answers it as the API on its path would (JSON or a stream)."""

    seen: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.seen.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
        answer = wire.Answer(model="m", content="ok", input_tokens=3, output_tokens=1)
        stream = body.get("stream") is True
        if "/messages" in self.path:
            payload = wire.anthropic_json(answer) if not stream else _sse(wire.anthropic_events(answer, chunk_chars=8))
        elif "/responses" in self.path:
            payload = wire.responses_json(answer) if not stream else _sse(wire.responses_events(answer, chunk_chars=8))
        elif stream:
            payload = _sse(wire.openai_events(answer, include_usage=True, chunk_chars=8))
        else:
            payload = wire.openai_json(answer)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream" if stream else "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _sse(s: wire.Stream) -> bytes:
    return b"".join([*s.head, *s.body, *s.tail])


@pytest.fixture(scope="module")
def recorder() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    handler = type("H", (Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def ref(provider: str, url: str, **extra: Any) -> ModelRef:
    return ModelRef.model_validate(
        {"name": "m", "provider": provider, "model": "the-model", "endpoint": url, "maxTokens": 99, **extra}
    )


def last(seen: list[dict[str, Any]]) -> dict[str, Any]:
    return seen[-1]


async def aigate_sends(r: ModelRef, seen: list[dict[str, Any]]) -> dict[str, Any]:
    """What aigate's client really puts on the wire for one case (not just what build_body returns)."""
    async with ProviderClient(r, api_key=KEY, system_prompt=SYSTEM, tools=TOOLS, timeout_s=5) as client:
        reply = await client.call(client.prepare(MESSAGES))
    assert reply.ok, reply.attempt.error_detail
    return last(seen)


def drain(result: Any) -> None:
    """Read a streamed SDK answer to its end (so the request is complete and the answer parsed)."""
    if isinstance(result, openai.Stream | anthropic.Stream):
        for _ in result:
            pass


# ---------------------------------------------------------------- OpenAI Chat Completions


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("provider", ["openai", "openai-compatible"])
async def test_chat_completions_body_and_headers_are_the_sdks(
    recorder: tuple[str, list[dict[str, Any]]], provider: str, stream: bool
) -> None:
    url, seen = recorder
    r = ref(provider, f"{url}/v1", stream=stream, temperature=0.2)
    ours = await aigate_sends(r, seen)
    sdk = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
    drain(sdk.chat.completions.create(**ours["body"]))
    theirs = last(seen)
    assert ours["body"] == theirs["body"]
    assert ours["path"] == theirs["path"] == "/v1/chat/completions"
    assert ours["headers"]["authorization"] == theirs["headers"]["authorization"] == f"Bearer {KEY}"
    assert ours["headers"]["content-type"] == theirs["headers"]["content-type"] == "application/json"
    params = CompletionCreateParamsStreaming if stream else CompletionCreateParamsNonStreaming
    TypeAdapter(params).validate_python(ours["body"], strict=True)


@pytest.mark.parametrize("stream", [False, True])
async def test_azure_chat_completions_are_the_sdks(recorder: tuple[str, list[dict[str, Any]]], stream: bool) -> None:
    url, seen = recorder
    r = ref("azure-openai", url, stream=stream)
    ours = await aigate_sends(r, seen)
    sdk = openai.AzureOpenAI(azure_endpoint=url, api_key=KEY, api_version="2024-10-21", max_retries=0)
    drain(sdk.chat.completions.create(model="the-model", **ours["body"]))
    theirs = last(seen)
    # the deployment is in the path; the SDK repeats it in the body, aigate does not (Azure ignores it)
    assert theirs["body"].pop("model") == "the-model"
    assert ours["body"] == theirs["body"]
    assert ours["path"] == theirs["path"] == "/openai/deployments/the-model/chat/completions?api-version=2024-10-21"
    assert ours["headers"]["api-key"] == theirs["headers"]["api-key"] == KEY


# ---------------------------------------------------------------- OpenAI Responses


@pytest.mark.parametrize("stream", [False, True])
async def test_responses_body_and_headers_are_the_sdks(
    recorder: tuple[str, list[dict[str, Any]]], stream: bool
) -> None:
    url, seen = recorder
    r = ref("openai", f"{url}/v1", stream=stream, api="responses", temperature=0.2)
    ours = await aigate_sends(r, seen)
    assert ours["body"]["instructions"] == SYSTEM and ours["body"]["store"] is False
    sdk = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
    drain(sdk.responses.create(**ours["body"]))
    theirs = last(seen)
    assert ours["body"] == theirs["body"]
    assert ours["path"] == theirs["path"] == "/v1/responses"
    assert ours["headers"]["authorization"] == theirs["headers"]["authorization"] == f"Bearer {KEY}"
    params = ResponseCreateParamsStreaming if stream else ResponseCreateParamsNonStreaming
    TypeAdapter(params).validate_python(ours["body"], strict=True)


@pytest.mark.parametrize(
    ("api_version", "path"),
    [(None, "/openai/v1/responses"), ("2025-04-01-preview", "/openai/responses?api-version=2025-04-01-preview")],
)
async def test_azure_responses_are_the_sdks(
    recorder: tuple[str, list[dict[str, Any]]], api_version: str | None, path: str
) -> None:
    url, seen = recorder
    r = ref("azure-openai", url, api="responses", apiVersion=api_version)
    ours = await aigate_sends(r, seen)
    if api_version is None:  # Azure's v1 API takes the OpenAI client as it is
        sdk: openai.OpenAI = openai.OpenAI(base_url=f"{url}/openai/v1", api_key=KEY, max_retries=0)
    else:
        sdk = openai.AzureOpenAI(azure_endpoint=url, api_key=KEY, api_version=api_version, max_retries=0)
    drain(sdk.responses.create(**ours["body"]))
    theirs = last(seen)
    assert ours["body"] == theirs["body"] and ours["body"]["model"] == "the-model"  # the deployment
    assert ours["path"] == theirs["path"] == path
    if api_version is None:
        assert ours["headers"]["api-key"] == KEY and theirs["headers"]["authorization"] == f"Bearer {KEY}"
    else:
        assert ours["headers"]["api-key"] == theirs["headers"]["api-key"] == KEY


# ---------------------------------------------------------------- Anthropic Messages


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_body_and_headers_are_the_sdks(
    recorder: tuple[str, list[dict[str, Any]]], stream: bool
) -> None:
    url, seen = recorder
    r = ref("anthropic", url, stream=stream)
    ours = await aigate_sends(r, seen)
    sdk = anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0)
    drain(sdk.messages.create(**ours["body"]))
    theirs = last(seen)
    assert ours["body"] == theirs["body"]
    assert ours["path"] == theirs["path"] == "/v1/messages"
    for header in ("authorization", "anthropic-version", "content-type"):
        assert ours["headers"][header] == theirs["headers"][header], header
    assert "x-api-key" not in ours["headers"] and "x-api-key" not in theirs["headers"]
    params = MessageCreateParamsStreaming if stream else MessageCreateParamsNonStreaming
    TypeAdapter(params).validate_python(ours["body"], strict=True)


def test_anthropic_version_is_the_sdks() -> None:
    assert ANTHROPIC_VERSION == anthropic._constants.ANTHROPIC_API_VERSION
    assert auth_headers(ref("anthropic", "http://127.0.0.1:9"), KEY)["anthropic-version"] == ANTHROPIC_VERSION


def test_default_endpoints_are_the_sdks() -> None:
    """With no endpoint declared, aigate calls the hosts the SDKs call by default."""
    assert (
        endpoint_url(ModelRef(name="m", provider="openai", model="x"))
        == f"{openai.OpenAI(api_key=KEY).base_url}chat/completions"
    )
    assert endpoint_url(ModelRef(name="m", provider="openai", model="x", api="responses")) == (
        f"{openai.OpenAI(api_key=KEY).base_url}responses"
    )
    base = str(anthropic.Anthropic(api_key=KEY).base_url).rstrip("/")
    assert endpoint_url(ModelRef(name="m", provider="anthropic", model="x")) == f"{base}/v1/messages"
    assert build_body(ModelRef(name="m", provider="anthropic", model="x"), "", MESSAGES, [])["model"] == "x"
    assert httpx.URL(endpoint_url(ModelRef(name="m", provider="openai", model="x"))).host == "api.openai.com"
