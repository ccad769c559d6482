"""Provider clients against the simulator: every wire format, streaming or not, tools, usage, identity;
every fault mode injected in the transport, and the simulator's own failures, end as the right error kind."""

from __future__ import annotations

from typing import Any

import pytest

from aigate.api.load import ResolvedTool
from aigate.api.models import Message, ModelRef
from aigate.measurements import FAULT_MODES, FaultMode
from aigate.probes.providers import ProviderClient
from probes_support import CANARY, simulator

MESSAGES = [Message(role="user", content="look up policy P-7 and summarize")]
TOOLS = [
    ResolvedTool(
        name="lookup_policy",
        access="read",
        approval="none",
        description="Look up a policy",
        parameters={"type": "object", "properties": {"id": {"type": "string"}}},
    )
]
WIRES = [("anthropic", "claude-sonnet-4-5"), ("openai-compatible", "gpt-4.1-mini"), ("openai+responses", "gpt-5")]
"""provider[+api], model."""
KIND: dict[FaultMode, str] = {
    "timeout": "timeout",
    "http_5xx": "http_5xx",
    "http_429": "http_429",
    "connection_reset": "connection",
    "malformed_body": "malformed",
}


def profile(provider: str, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "provider": "anthropic" if provider == "anthropic" else "openai",
        "latency": {"fixedMs": 2},
        "usage": {"inputTokens": 42, "outputTokens": 7},
        "systemFingerprint": "fp_test",
        "responses": [
            {"match": {"contains": "policy"}, "toolCalls": [{"name": "lookup_policy", "arguments": {"id": "P-7"}}]},
            {"match": {"regex": ".*"}, "content": "plain answer"},
        ],
    }
    doc.update(extra)
    return doc


def client(provider: str, model_id: str, url: str, *, stream: bool, **kw: Any) -> ProviderClient:
    provider, _, api = provider.partition("+")
    ref = ModelRef.model_validate(
        {"name": "m", "provider": provider, "model": model_id, "endpoint": url, "stream": stream}
        | ({"api": api} if api else {})
    )
    return ProviderClient(ref, api_key=CANARY, system_prompt="SYS", tools=TOOLS, timeout_s=2, **kw)


@pytest.mark.parametrize(("provider", "model_id"), WIRES)
@pytest.mark.parametrize("stream", [False, True])
async def test_tool_call_usage_identity(provider: str, model_id: str, stream: bool) -> None:
    with simulator({model_id: profile(provider)}) as url:
        async with client(provider, model_id, url, stream=stream) as c:
            reply = await c.call(c.prepare(MESSAGES))
    a = reply.attempt
    assert a.error is None and a.status == 200, a.error_detail
    assert [(t.name, t.arguments) for t in reply.tool_calls] == [("lookup_policy", {"id": "P-7"})]
    assert (a.usage.input_tokens, a.usage.output_tokens, a.usage.estimated) == (42, 7, False)
    assert reply.identity is not None and reply.identity.requested == model_id
    assert reply.identity.model is not None
    if provider == "openai-compatible":  # Responses and Messages answers carry no fingerprint
        assert reply.identity.system_fingerprint == "fp_test"
    assert (a.ttft_ms is not None) == stream
    assert a.latency_ms >= 2


@pytest.mark.parametrize(("provider", "model_id"), WIRES)
@pytest.mark.parametrize("stream", [False, True])
async def test_text_answer_and_estimated_usage(provider: str, model_id: str, stream: bool) -> None:
    with simulator({model_id: profile(provider, omitUsage=True)}) as url:
        async with client(provider, model_id, url, stream=stream) as c:
            reply = await c.call(c.prepare([Message(role="user", content="hello there")]))
    assert reply.ok and reply.text == "plain answer" and reply.tool_calls == []
    u = reply.attempt.usage
    assert u.estimated and u.input_tokens == 4  # "SYS" + "hello there" = 14 chars
    assert u.output_tokens == 3  # "plain answer" = 12 chars


@pytest.mark.parametrize(("provider", "model_id"), WIRES)
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("mode", FAULT_MODES)
async def test_injected_fault_gives_its_error_kind(provider: str, model_id: str, stream: bool, mode: FaultMode) -> None:
    with simulator({model_id: profile(provider)}) as url:
        async with client(provider, model_id, url, stream=stream, fault_retry_after_s=3) as c:
            reply = await c.call(c.prepare(MESSAGES), timeout_s=0.1, fault=mode)
    a = reply.attempt
    assert a.error == KIND[mode], a
    assert a.injected_fault == mode
    assert CANARY not in a.error_detail
    if mode == "http_429":
        assert a.status == 429 and reply.retry_after_s == 3
    if mode == "http_5xx":
        assert a.status == 503
    if mode == "timeout":
        assert a.latency_ms >= 95
    if mode == "malformed_body":
        assert a.status == 200


@pytest.mark.parametrize(("provider", "model_id"), WIRES)
@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        ({"errors": {"500": 1.0}}, "http_5xx"),
        ({"errors": {"429": 1.0}, "retryAfterSeconds": 2}, "http_429"),
        ({"hangRate": 1.0}, "timeout"),
        ({"malformedRate": 1.0}, "malformed"),
        ({"resetRate": 1.0}, "connection"),
    ],
)
async def test_simulator_failures_give_their_error_kind(
    provider: str, model_id: str, failure: dict[str, Any], kind: str
) -> None:
    with simulator({model_id: profile(provider, **failure)}) as url:
        async with client(provider, model_id, url, stream=False) as c:
            reply = await c.call(c.prepare(MESSAGES), timeout_s=0.3)
    assert reply.attempt.error == kind, reply.attempt
    assert reply.attempt.injected_fault is None
    if kind == "http_429":
        assert reply.retry_after_s == 2
