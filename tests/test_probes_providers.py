"""Provider clients: request documents in each wire format, and exchanges with real loopback servers."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from aigate.api.load import ResolvedTool
from aigate.api.models import Message, ModelRef
from aigate.probes.credentials import Scrubber
from aigate.probes.dialects import Malformed, StreamError, dialect_for
from aigate.probes.providers import (
    AZURE_API_VERSION,
    ProviderClient,
    auth_headers,
    build_body,
    endpoint_url,
    parse_retry_after,
    server_time_ms,
)
from probes_support import CANARY, key_echo_server

TOOLS = [
    ResolvedTool(
        name="lookup_policy",
        access="read",
        approval="none",
        description="Look up a policy",
        parameters={"type": "object", "properties": {"id": {"type": "string"}}},
    )
]
MESSAGES = [Message(role="system", content="Be brief."), Message(role="user", content="Is this fraud?")]


def ref(provider: str, **extra: Any) -> ModelRef:
    doc: dict[str, Any] = {"name": "m", "provider": provider, "model": "the-model", **extra}
    if provider in ("azure-openai", "openai-compatible") and "endpoint" not in extra:
        doc["endpoint"] = "https://example.test"
    return ModelRef.model_validate(doc)


@pytest.mark.parametrize(
    ("provider", "endpoint", "url"),
    [
        ("openai", None, "https://api.openai.com/v1/chat/completions"),
        ("openai-compatible", "http://127.0.0.1:8000", "http://127.0.0.1:8000/v1/chat/completions"),
        ("openai-compatible", "http://vllm:8000/v1/", "http://vllm:8000/v1/chat/completions"),
        ("anthropic", None, "https://api.anthropic.com/v1/messages"),
        ("anthropic", "http://sim:1/v1", "http://sim:1/v1/messages"),
        (
            "azure-openai",
            "https://acme.openai.azure.com",
            f"https://acme.openai.azure.com/openai/deployments/the-model/chat/completions?api-version={AZURE_API_VERSION}",
        ),
    ],
)
def test_endpoint_url(provider: str, endpoint: str | None, url: str) -> None:
    extra = {"endpoint": endpoint} if endpoint else {}
    assert endpoint_url(ref(provider, **extra)) == url


def test_endpoint_override_and_azure_api_version() -> None:
    r = ref("azure-openai", apiVersion="2025-01-01")
    assert endpoint_url(r, "http://127.0.0.1:9") == (
        "http://127.0.0.1:9/openai/deployments/the-model/chat/completions?api-version=2025-01-01"
    )


def test_auth_headers_per_provider() -> None:
    assert auth_headers(ref("openai"), "k1")["authorization"] == "Bearer k1"
    h = auth_headers(ref("anthropic"), "k2")
    # what the current official SDK sends (tests/test_sdk_requests.py compares with the SDK itself)
    assert h["authorization"] == "Bearer k2" and h["anthropic-version"] == "2026-10-21" and "x-api-key" not in h
    assert auth_headers(ref("azure-openai"), "k3")["api-key"] == "k3"
    no_key = auth_headers(ref("openai-compatible"), None)
    assert not {"authorization", "x-api-key", "api-key"} & set(no_key)


def test_openai_body() -> None:
    body = build_body(ref("openai", maxTokens=99, temperature=0.2), "SYS", MESSAGES, TOOLS)
    assert body["model"] == "the-model"
    assert body["messages"] == [
        {"role": "system", "content": "SYS"},
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Is this fraud?"},
    ]
    assert body["max_completion_tokens"] == 99 and body["temperature"] == 0.2
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "lookup_policy",
                "description": "Look up a policy",
                "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
            },
        }
    ]
    assert "stream" not in body


def test_openai_compatible_and_azure_bodies() -> None:
    local = build_body(ref("openai-compatible", stream=True), "", MESSAGES, [])
    assert local["max_tokens"] == 1024 and "tools" not in local
    assert local["stream"] is True and local["stream_options"] == {"include_usage": True}
    assert local["messages"][0] == {"role": "system", "content": "Be brief."}
    azure = build_body(ref("azure-openai"), "SYS", MESSAGES, [])
    assert "model" not in azure  # the deployment is in the URL


def test_anthropic_body() -> None:
    body = build_body(ref("anthropic", stream=True), "SYS", MESSAGES, TOOLS)
    assert body["system"] == "SYS\n\nBe brief."
    assert body["messages"] == [{"role": "user", "content": "Is this fraud?"}]
    assert body["max_tokens"] == 1024 and body["stream"] is True and "stream_options" not in body
    assert body["tools"] == [
        {"name": "lookup_policy", "description": "Look up a policy", "input_schema": TOOLS[0].parameters}
    ]


def test_parse_retry_after() -> None:
    assert parse_retry_after(httpx.Headers({"retry-after": "2"})) == 2.0
    assert parse_retry_after(httpx.Headers({"retry-after": "0.25"})) == 0.25
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    assert parse_retry_after(httpx.Headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert parse_retry_after(httpx.Headers({"retry-after": "3600"})) == 60.0
    assert parse_retry_after(httpx.Headers({"retry-after": "soon"})) is None
    assert parse_retry_after(httpx.Headers({})) is None


def test_server_time_ms() -> None:
    assert server_time_ms(httpx.Headers({"openai-processing-ms": "412"})) == 412.0
    assert server_time_ms(httpx.Headers({"server-timing": "sim;dur=51.25"})) == 51.25
    assert server_time_ms(httpx.Headers({"server-timing": 'cache;desc="hit", app;dur="7.5";desc=x'})) == 7.5
    assert server_time_ms(httpx.Headers({"openai-processing-ms": "12", "server-timing": "sim;dur=3"})) == 12.0
    assert server_time_ms(httpx.Headers({"server-timing": "miss"})) is None
    assert server_time_ms(httpx.Headers({"server-timing": "app;dur=fast"})) is None
    assert server_time_ms(httpx.Headers({"openai-processing-ms": "n/a"})) is None
    assert server_time_ms(httpx.Headers({})) is None


@pytest.mark.parametrize("provider", ["openai-compatible", "anthropic", "azure-openai"])
@pytest.mark.parametrize("stream", [False, True])
async def test_key_quoted_back_by_the_provider_is_scrubbed(provider: str, stream: bool) -> None:
    with key_echo_server() as url:
        r = ref(provider, endpoint=url, stream=stream)
        async with ProviderClient(r, api_key=CANARY, scrubber=Scrubber([CANARY]), timeout_s=5) as client:
            reply = await client.call(client.prepare(MESSAGES))
    assert reply.attempt.error == "http_4xx" and reply.attempt.status == 401
    dumped = json.dumps(reply.attempt.model_dump())
    assert CANARY not in dumped
    assert "[REDACTED]" in reply.attempt.error_detail


async def test_connection_refused_is_a_connection_error() -> None:
    r = ref("openai-compatible", endpoint="http://127.0.0.1:9")
    async with ProviderClient(r, api_key=None, timeout_s=2) as client:
        reply = await client.call(client.prepare(MESSAGES))
    assert reply.attempt.error == "connection" and reply.attempt.status is None
    assert reply.attempt.latency_ms >= 0


def test_responses_body_and_url() -> None:
    r = ref("openai", api="responses", maxTokens=99, temperature=0.2, stream=True)
    assert endpoint_url(r) == "https://api.openai.com/v1/responses"
    body = build_body(r, "SYS", MESSAGES, TOOLS)
    assert body["instructions"] == "SYS" and body["store"] is False
    assert body["input"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Is this fraud?"}]
    assert body["max_output_tokens"] == 99 and body["temperature"] == 0.2
    assert body["stream"] is True and "stream_options" not in body
    assert body["tools"] == [
        {
            "type": "function",
            "name": "lookup_policy",
            "description": "Look up a policy",
            "parameters": TOOLS[0].parameters,
            "strict": False,
        }
    ]
    azure = ref("azure-openai", api="responses")
    assert endpoint_url(azure) == "https://example.test/openai/v1/responses"
    assert build_body(azure, "", MESSAGES, [])["model"] == "the-model"  # the deployment
    assert auth_headers(azure, "k")["api-key"] == "k"


def test_api_defaults_to_chat_completions_and_fits_the_provider() -> None:
    assert ref("openai").api == "chatCompletions"
    with pytest.raises(ValidationError, match="@api: responses is an OpenAI API"):
        ref("anthropic", api="responses")
    with pytest.raises(ValidationError, match="@temperature: Anthropic's current Messages API takes no temperature"):
        ref("anthropic", temperature=0.5)
    with pytest.raises(ValidationError, match="api"):
        ref("openai", api="completions")


def test_responses_reader_errors_and_incomplete_answers() -> None:
    dialect = dialect_for(ref("openai", api="responses", stream=True))
    reader = dialect.stream(time.perf_counter())
    reader.feed(json.dumps({"type": "response.output_text.delta", "delta": "Hi"}))
    usage = {"input_tokens": 3, "output_tokens": 1}
    reader.feed(json.dumps({"type": "response.incomplete", "response": {"model": "m", "usage": usage}}))
    out = reader.finish()  # cut at max_output_tokens: still an answer
    assert (out.text, out.model, out.input_tokens, out.output_tokens) == ("Hi", "m", 3, 1) and out.ttft is not None
    with pytest.raises(StreamError) as limited:
        dialect.stream(0).feed(json.dumps({"type": "error", "code": "rate_limit_exceeded", "message": "slow down"}))
    assert limited.value.kind == "http_429" and str(limited.value) == "slow down"
    failed = {"type": "response.failed", "response": {"error": {"code": "server_error", "message": "boom"}}}
    with pytest.raises(StreamError) as down:
        dialect.stream(0).feed(json.dumps(failed))
    assert down.value.kind == "http_5xx"
    with pytest.raises(StreamError):
        dialect.parse({"output": [], "status": "failed", "error": {"code": "server_error"}})
    with pytest.raises(Malformed, match="before its final event"):
        dialect.stream(0).finish()
    with pytest.raises(Malformed, match="no output"):
        dialect.parse({"choices": []})
