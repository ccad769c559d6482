"""The simulator's Responses API over real loopback HTTP, read as raw bytes: request validation, auth, Azure's
two paths, the typed stream's order and sequence numbers, the scripted faults, and the Anthropic endpoint's
acceptance of either credential header. (The official SDKs' view of the same: tests/test_sdk_simulator.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from aigate.simulator.profile import ProfileError, SimProfile, parse_profile
from aigate.simulator.server import SimulatorServer
from simulator_support import sse

BEARER = {"authorization": "Bearer sk-test-key"}
RULES = [
    {"match": {"contains": "note"}, "toolCalls": [{"name": "create_case_note", "arguments": {"note": "x"}}]},
    {"content": "All clear."},
]
TOOLS = [{"type": "function", "name": "create_case_note", "parameters": {"type": "object"}}]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    models = {
        "gpt-r": {"provider": "openai", "responses": RULES, "streamChunkChars": 4},
        "gpt-r-limited": {"provider": "openai", "errors": {"429": 1}, "retryAfterSeconds": 1.5},
        "gpt-r-broken": {"provider": "openai", "malformedRate": 1, "responses": RULES},
        "gpt-r-reset": {"provider": "openai", "resetRate": 1},
        "gpt-r-nousage": {"provider": "openai", "omitUsage": True},
        "claude-r": {"provider": "anthropic", "responses": RULES},
    }
    with SimulatorServer(SimProfile.model_validate({"seed": 1, "models": models})) as s:
        yield s


@pytest.fixture
async def client(sim: SimulatorServer) -> Any:
    async with httpx.AsyncClient(base_url=sim.url, timeout=10) as c:
        yield c


async def test_answer_echoes_the_request_and_reports_usage(client: httpx.AsyncClient) -> None:
    body = {"model": "gpt-r", "instructions": "Be brief.", "input": "hi", "max_output_tokens": 50, "store": False}
    r = await client.post("/v1/responses", headers=BEARER, json=body)
    assert r.status_code == 200 and r.headers["x-request-id"]
    doc = r.json()
    assert doc["object"] == "response" and doc["status"] == "completed" and doc["id"].startswith("resp_")
    assert (doc["instructions"], doc["max_output_tokens"], doc["store"]) == ("Be brief.", 50, False)
    [msg] = doc["output"]
    assert msg["type"] == "message" and msg["content"][0] == {
        "type": "output_text",
        "text": "All clear.",
        "annotations": [],
        "logprobs": [],
    }
    u = doc["usage"]
    assert u["total_tokens"] == u["input_tokens"] + u["output_tokens"] and u["input_tokens"] >= 3
    assert u["input_tokens_details"]["cached_tokens"] == 0 and u["output_tokens_details"]["reasoning_tokens"] == 0


async def test_tool_calls_need_the_tool_declared_and_allowed(client: httpx.AsyncClient) -> None:
    ask = {"model": "gpt-r", "input": [{"role": "user", "content": [{"type": "input_text", "text": "a note"}]}]}
    r = await client.post("/v1/responses", headers=BEARER, json={**ask, "tools": TOOLS})
    [call] = r.json()["output"]
    assert call["type"] == "function_call" and call["name"] == "create_case_note"
    assert json.loads(call["arguments"]) == {"note": "x"} and call["call_id"].startswith("call_")
    for extra in ({}, {"tools": TOOLS, "tool_choice": "none"}):
        r = await client.post("/v1/responses", headers=BEARER, json={**ask, **extra})
        assert [i["type"] for i in r.json()["output"]] == ["message"]


async def test_stream_events_in_order(client: httpx.AsyncClient) -> None:
    body = {"model": "gpt-r", "input": "write a note", "tools": TOOLS, "stream": True}
    r = await client.post("/v1/responses", headers=BEARER, json=body)
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [(name, json.loads(data)) for name, data in sse(r.text)]
    assert all(name == doc["type"] for name, doc in events)
    assert [doc["sequence_number"] for _, doc in events] == list(range(len(events)))
    kinds = [name for name, _ in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-3:] == ["response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    args = "".join(d["delta"] for n, d in events if n == "response.function_call_arguments.delta")
    assert json.loads(args) == {"note": "x"} and kinds.count("response.function_call_arguments.delta") > 1
    final = events[-1][1]["response"]
    assert final["status"] == "completed" and final["output"][0]["arguments"] == args
    assert events[0][1]["response"]["status"] == "in_progress" and events[0][1]["response"]["usage"] is None


async def test_stream_of_text_and_no_usage(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/responses", headers=BEARER, json={"model": "gpt-r-nousage", "input": "hi", "stream": True}
    )
    events = [json.loads(data) for _, data in sse(r.text)]
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    done = next(e for e in events if e["type"] == "response.output_text.done")
    assert text == done["text"] == "This is a simulated answer."
    assert events[-1]["type"] == "response.completed" and events[-1]["response"]["usage"] is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"input": "hi"}, "Missing required parameter: 'model'."),
        ({"model": "gpt-r"}, "Missing required parameter: 'input'."),
        ({"model": "gpt-r", "input": [{"content": "hi"}]}, "Missing required parameter: 'input[0].role'."),
        ({"model": "gpt-r", "input": "hi", "tools": [{"type": "function"}]}, "'tools[0].name'"),
        ({"model": "gpt-r", "input": "hi", "instructions": 3}, "Invalid type for 'instructions'"),
    ],
)
async def test_bad_requests(client: httpx.AsyncClient, body: dict[str, Any], message: str) -> None:
    r = await client.post("/v1/responses", headers=BEARER, json=body)
    assert r.status_code == 400 and message in r.json()["error"]["message"]
    assert r.json()["error"]["type"] == "invalid_request_error"


async def test_auth_and_unknown_model(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/responses", json={"model": "gpt-r", "input": "hi"})
    assert r.status_code == 401 and "API key" in r.json()["error"]["message"]
    r = await client.post("/v1/responses", headers=BEARER, json={"model": "claude-r", "input": "hi"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


async def test_azure_paths(client: httpx.AsyncClient) -> None:
    body = {"model": "gpt-r", "input": "hi"}
    for path in ("/openai/v1/responses", "/openai/responses?api-version=2025-04-01-preview"):
        for headers in ({"api-key": "k"}, BEARER):
            r = await client.post(path, headers=headers, json=body)
            assert r.status_code == 200 and r.json()["output"][-1]["content"][0]["text"] == "All clear.", path
    r = await client.post("/openai/responses", headers={"api-key": "k"}, json=body)
    assert r.status_code == 404  # the dated path needs its api-version
    r = await client.post("/openai/v1/responses", json=body)
    assert r.status_code == 401 and "subscription key" in r.json()["error"]["message"]
    r = await client.post("/openai/v1/responses", headers={"api-key": "k"}, json={"model": "nope", "input": "hi"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "DeploymentNotFound"


async def test_scripted_faults(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/responses", headers=BEARER, json={"model": "gpt-r-limited", "input": "hi"})
    assert r.status_code == 429 and r.headers["retry-after"] == "2" and r.headers["retry-after-ms"] == "1500"
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    r = await client.post("/v1/responses", headers=BEARER, json={"model": "gpt-r-broken", "input": "hi"})
    assert r.status_code == 200
    with pytest.raises(ValueError):
        json.loads(r.content)
    r = await client.post(
        "/v1/responses", headers=BEARER, json={"model": "gpt-r-broken", "input": "hi", "stream": True}
    )
    assert "response.completed" not in r.text and r.text.endswith("\n\n")
    with pytest.raises(ValueError):
        [json.loads(data) for _, data in sse(r.text)]
    with pytest.raises((httpx.NetworkError, httpx.RemoteProtocolError)):
        await client.post("/v1/responses", headers=BEARER, json={"model": "gpt-r-reset", "input": "hi"})


@pytest.mark.parametrize(
    "headers",
    [
        {"x-api-key": "k", "anthropic-version": "2023-06-01"},
        {"authorization": "Bearer k", "anthropic-version": "2026-10-21"},
        {"authorization": "Bearer k", "anthropic-version": "2031-01-01"},
    ],
)
async def test_anthropic_accepts_either_credential_and_any_version(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    body = {"model": "claude-r", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    r = await client.post("/v1/messages", headers=headers, json=body)
    assert r.status_code == 200 and r.json()["content"][0]["text"] == "All clear."
    r = await client.post("/v1/messages", headers={"authorization": "Bearer k"}, json=body)
    assert r.status_code == 400 and "anthropic-version" in r.json()["error"]["message"]


async def test_requests_are_counted_per_api(sim: SimulatorServer, client: httpx.AsyncClient) -> None:
    sim.reset()
    await client.post("/v1/responses", headers=BEARER, json={"model": "gpt-r", "input": "hi"})
    await client.post(
        "/v1/chat/completions", headers=BEARER, json={"model": "gpt-r", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert sim.stats()["apis"] == {"chatCompletions": 1, "responses": 1, "messages": 0}


def test_profile_usage_parts_within_totals() -> None:
    ok = {
        "provider": "openai",
        "usage": {"inputTokens": 10, "outputTokens": 5, "cachedTokens": 10, "reasoningTokens": 5},
    }
    parse_profile({"models": {"m": ok}})
    for part, msg in (
        ("cachedTokens", "cachedTokens cannot exceed inputTokens"),
        ("reasoningTokens", "reasoningTokens cannot exceed outputTokens"),
    ):
        bad = {"provider": "openai", "usage": {"inputTokens": 10, "outputTokens": 5, part: 11}}
        with pytest.raises(ProfileError, match=msg):
            parse_profile({"models": {"m": bad}})
