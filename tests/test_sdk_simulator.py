"""The official SDKs, unmodified, as clients of `aigate simulate`: every endpoint and mode the simulator serves
parses into the SDK's own types, and every scripted fault reaches the application as the SDK's own error.

The simulator runs as users run it (the `aigate simulate` command, on a loopback port); the SDKs are pinned in
the dev extras, so a new SDK release that reads the wire differently shows here first.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import yaml

from factories import ROOT

ANSWER = '{"risk": "high", "summary": "burst of card-not-present purchases"}'
RULES = [
    {"match": {"contains": "write a note"}, "toolCalls": [{"name": "create_case_note", "arguments": {"note": "x"}}]},
    {"content": ANSWER},
]
USAGE = {"inputTokens": 40, "outputTokens": 30, "cachedTokens": 32, "reasoningTokens": 12}
PROFILE = {
    "seed": 3,
    "models": {
        "gpt-sim": {"provider": "openai", "servedModel": "gpt-sim-2026", "usage": USAGE, "responses": RULES},
        "claude-sim": {
            "provider": "anthropic",
            "servedModel": "claude-sim-2026",
            "usage": {"inputTokens": 40, "outputTokens": 30, "cachedTokens": 32},
            "responses": RULES,
        },
        "gpt-limited": {"provider": "openai", "errors": {"429": 1}, "retryAfterSeconds": 0.01},
        "gpt-down": {"provider": "openai", "errors": {"500": 1}},
        "gpt-broken": {"provider": "openai", "malformedRate": 1, "responses": RULES},
        "claude-limited": {"provider": "anthropic", "errors": {"429": 1}, "retryAfterSeconds": 7},
        "claude-overloaded": {"provider": "anthropic", "errors": {"529": 1}},
        "claude-down": {"provider": "anthropic", "errors": {"500": 1}},
        "claude-broken": {"provider": "anthropic", "malformedRate": 1, "responses": RULES},
    },
}
KEY = "sk-sim-sdk"
OPENAI_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "create_case_note",
        "description": "Append a note to the case.",
        "parameters": {"type": "object", "properties": {"note": {"type": "string"}}, "required": ["note"]},
    },
}
RESPONSES_TOOL: Any = {"type": "function", "strict": False, **OPENAI_TOOL["function"]}
ANTHROPIC_TOOL: Any = {
    "name": "create_case_note",
    "description": "Append a note to the case.",
    "input_schema": OPENAI_TOOL["function"]["parameters"],
}
ASK = "Review case 1041."
NOTE = "Please write a note on case 1041."


@contextlib.contextmanager
def aigate_simulate(profile: Path) -> Iterator[str]:
    """`aigate simulate` on a free loopback port, stopped (SIGTERM) at the end; yields its URL."""
    aigate = Path(sys.executable).with_name("aigate")
    proc = subprocess.Popen(
        [str(aigate), "simulate", "--profile", str(profile), "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on " in line, (line, proc.stderr.read() if proc.stderr else "")
        yield line.split("listening on ")[1].split()[0]
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0


@pytest.fixture(scope="module")
def sim_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    profile = tmp_path_factory.mktemp("sdk") / "profile.yaml"
    profile.write_text(yaml.safe_dump(PROFILE))
    with aigate_simulate(profile) as url:
        yield url


def stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_sim/stats", timeout=5) as r:
        doc: dict[str, Any] = json.load(r)
    return doc


def oai(url: str, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, **kw)


def claude(url: str, **kw: Any) -> anthropic.Anthropic:
    # no base_url suffix, no extra header: exactly what an application sets to point the SDK elsewhere
    return anthropic.Anthropic(base_url=url, api_key=KEY, **kw)


# ---------------------------------------------------------------- OpenAI Chat Completions


def test_openai_chat(sim_url: str) -> None:
    done = oai(sim_url).chat.completions.create(
        model="gpt-sim", messages=[{"role": "system", "content": "JSON."}, {"role": "user", "content": ASK}]
    )
    assert isinstance(done, openai.types.chat.ChatCompletion)
    assert done.model == "gpt-sim-2026" and done.choices[0].message.content == ANSWER
    assert done.choices[0].finish_reason == "stop"
    u = done.usage
    assert u is not None and (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (40, 30, 70)
    assert u.prompt_tokens_details is not None and u.prompt_tokens_details.cached_tokens == 32
    assert u.completion_tokens_details is not None and u.completion_tokens_details.reasoning_tokens == 12


def test_openai_chat_stream_with_usage(sim_url: str) -> None:
    chunks = list(
        oai(sim_url).chat.completions.create(
            model="gpt-sim",
            messages=[{"role": "user", "content": ASK}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ANSWER and len(chunks) > 3
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None and usage.prompt_tokens == 40
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 32


@pytest.mark.parametrize("stream", [False, True])
def test_openai_chat_tools(sim_url: str, stream: bool) -> None:
    client = oai(sim_url)
    messages: Any = [{"role": "user", "content": NOTE}]
    if stream:
        with client.chat.completions.stream(model="gpt-sim", messages=messages, tools=[OPENAI_TOOL]) as s:
            done: Any = s.get_final_completion()
    else:
        done = client.chat.completions.create(model="gpt-sim", messages=messages, tools=[OPENAI_TOOL])
    calls = done.choices[0].message.tool_calls or []
    assert done.choices[0].finish_reason == "tool_calls" and len(calls) == 1
    assert calls[0].type == "function" and calls[0].function.name == "create_case_note"
    assert json.loads(calls[0].function.arguments) == {"note": "x"} and calls[0].id.startswith("call_")


@pytest.mark.parametrize("stream", [False, True])
def test_azure_openai_chat(sim_url: str, stream: bool) -> None:
    client = openai.AzureOpenAI(azure_endpoint=sim_url, api_key=KEY, api_version="2024-10-21")
    messages: Any = [{"role": "user", "content": ASK}]
    if stream:
        chunks = list(client.chat.completions.create(model="gpt-sim", messages=messages, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
        assert chunks[0].choices == []  # Azure's prompt filter verdict comes first
    else:
        done = client.chat.completions.create(model="gpt-sim", messages=messages)
        assert done.choices[0].message.content == ANSWER and done.usage is not None


# ---------------------------------------------------------------- OpenAI Responses


def test_openai_responses(sim_url: str) -> None:
    r = oai(sim_url).responses.create(model="gpt-sim", instructions="JSON.", input=ASK, max_output_tokens=300)
    assert isinstance(r, openai.types.responses.Response)
    assert r.status == "completed" and r.model == "gpt-sim-2026" and r.output_text == ANSWER
    assert r.instructions == "JSON." and r.max_output_tokens == 300  # echoed, as the API does
    assert [item.type for item in r.output] == ["reasoning", "message"]
    u = r.usage
    assert u is not None and (u.input_tokens, u.output_tokens, u.total_tokens) == (40, 30, 70)
    assert u.input_tokens_details.cached_tokens == 32 and u.output_tokens_details.reasoning_tokens == 12


def test_openai_responses_stream_events(sim_url: str) -> None:
    events = list(oai(sim_url).responses.create(model="gpt-sim", input=[{"role": "user", "content": ASK}], stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e for e in events if isinstance(e, openai.types.responses.ResponseTextDeltaEvent)]
    assert len(deltas) > 1 and "".join(d.delta for d in deltas) == ANSWER
    done = next(e for e in events if isinstance(e, openai.types.responses.ResponseTextDoneEvent))
    assert done.text == ANSWER
    final = events[-1]
    assert isinstance(final, openai.types.responses.ResponseCompletedEvent)
    assert final.response.usage is not None and final.response.usage.input_tokens_details.cached_tokens == 32


@pytest.mark.parametrize("stream", [False, True])
def test_openai_responses_function_tools(sim_url: str, stream: bool) -> None:
    client = oai(sim_url)
    if stream:
        # the SDK's stream helper rebuilds the response from the events and checks them against each other
        with client.responses.stream(model="gpt-sim", input=NOTE, tools=[RESPONSES_TOOL]) as s:
            r: Any = s.get_final_response()
    else:
        r = client.responses.create(model="gpt-sim", input=NOTE, tools=[RESPONSES_TOOL])
    calls = [item for item in r.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "create_case_note" and json.loads(calls[0].arguments) == {"note": "x"}
    assert calls[0].call_id.startswith("call_") and r.output_text == ""


def test_openai_responses_tool_result_turn(sim_url: str) -> None:
    """The second turn of a tool call: the call and its output go back as input items."""
    r = oai(sim_url).responses.create(
        model="gpt-sim",
        input=[
            {"role": "user", "content": ASK},
            {"type": "function_call", "call_id": "call_1", "name": "create_case_note", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "noted"},
        ],
        tools=[RESPONSES_TOOL],
    )
    assert r.output_text == ANSWER


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("dated", [False, True])
def test_azure_openai_responses(sim_url: str, dated: bool, stream: bool) -> None:
    """Azure's v1 API (an OpenAI client on `<endpoint>/openai/v1`) and its dated path (AzureOpenAI, which
    sends `/openai/responses?api-version=...`); the deployment is the `model`."""
    if dated:
        client: openai.OpenAI = openai.AzureOpenAI(
            azure_endpoint=sim_url, api_key=KEY, api_version="2025-04-01-preview"
        )
    else:
        client = openai.OpenAI(base_url=f"{sim_url}/openai/v1", api_key=KEY)
    if stream:
        with client.responses.stream(model="gpt-sim", input=ASK) as s:
            r: Any = s.get_final_response()
    else:
        r = client.responses.create(model="gpt-sim", input=ASK)
    assert r.output_text == ANSWER and r.usage is not None and r.usage.input_tokens == 40


# ---------------------------------------------------------------- Anthropic Messages


def test_anthropic_messages(sim_url: str) -> None:
    m = claude(sim_url).messages.create(
        model="claude-sim", max_tokens=300, system="JSON.", messages=[{"role": "user", "content": ASK}]
    )
    assert isinstance(m, anthropic.types.Message)
    assert m.model == "claude-sim-2026" and m.stop_reason == "end_turn"
    assert [b.text for b in m.content if b.type == "text"] == [ANSWER]
    # Anthropic counts cache reads apart: 8 fresh + 32 read from the cache
    assert (m.usage.input_tokens, m.usage.cache_read_input_tokens, m.usage.output_tokens) == (8, 32, 30)


def test_anthropic_stream(sim_url: str) -> None:
    client = claude(sim_url)
    with client.messages.stream(model="claude-sim", max_tokens=300, messages=[{"role": "user", "content": ASK}]) as s:
        text = "".join(s.text_stream)
        m = s.get_final_message()
    assert text == ANSWER and m.stop_reason == "end_turn"
    assert (m.usage.input_tokens, m.usage.cache_read_input_tokens, m.usage.output_tokens) == (8, 32, 30)


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_tools(sim_url: str, stream: bool) -> None:
    client = claude(sim_url)
    messages: Any = [{"role": "user", "content": NOTE}]
    if stream:
        with client.messages.stream(model="claude-sim", max_tokens=300, messages=messages, tools=[ANTHROPIC_TOOL]) as s:
            m: Any = s.get_final_message()
    else:
        m = client.messages.create(model="claude-sim", max_tokens=300, messages=messages, tools=[ANTHROPIC_TOOL])
    uses = [b for b in m.content if b.type == "tool_use"]
    assert m.stop_reason == "tool_use" and len(uses) == 1
    assert uses[0].name == "create_case_note" and uses[0].input == {"note": "x"}


# ---------------------------------------------------------------- faults, as the SDKs report them


def test_openai_429_is_the_sdks_rate_limit_error_and_it_honours_retry_after(sim_url: str) -> None:
    before = stats(sim_url)["models"]["gpt-limited"]["requests"]
    with pytest.raises(openai.RateLimitError) as e:
        oai(sim_url, max_retries=1).chat.completions.create(
            model="gpt-limited", messages=[{"role": "user", "content": ASK}]
        )
    assert e.value.status_code == 429 and e.value.code == "rate_limit_exceeded"
    assert e.value.response.headers["retry-after-ms"] == "10"
    # one retry, after the 10 ms the server asked for
    assert stats(sim_url)["models"]["gpt-limited"]["requests"] - before == 2
    with pytest.raises(openai.RateLimitError):
        oai(sim_url, max_retries=0).responses.create(model="gpt-limited", input=ASK)


def test_anthropic_429_is_the_sdks_rate_limit_error(sim_url: str) -> None:
    with pytest.raises(anthropic.RateLimitError) as e:
        claude(sim_url, max_retries=0).messages.create(
            model="claude-limited", max_tokens=10, messages=[{"role": "user", "content": ASK}]
        )
    assert e.value.status_code == 429 and e.value.response.headers["retry-after"] == "7"
    assert isinstance(e.value.body, dict) and e.value.body["error"]["type"] == "rate_limit_error"


def test_5xx_are_the_sdks_server_errors(sim_url: str) -> None:
    ask: Any = [{"role": "user", "content": ASK}]
    with pytest.raises(openai.InternalServerError) as oe:
        oai(sim_url, max_retries=0).chat.completions.create(model="gpt-down", messages=ask)
    assert oe.value.status_code == 500
    with pytest.raises(openai.InternalServerError):
        oai(sim_url, max_retries=0).responses.create(model="gpt-down", input=ASK, stream=True)
    with pytest.raises(anthropic.InternalServerError) as ae:
        claude(sim_url, max_retries=0).messages.create(model="claude-down", max_tokens=10, messages=ask)
    assert ae.value.status_code == 500
    with pytest.raises(anthropic.OverloadedError) as over:
        claude(sim_url, max_retries=0).messages.create(model="claude-overloaded", max_tokens=10, messages=ask)
    assert over.value.status_code == 529


def test_malformed_bodies_are_errors_in_the_sdks(sim_url: str) -> None:
    """A 200 whose JSON stops half way, plain or as the last event of a stream: each SDK raises."""
    client, ask = oai(sim_url, max_retries=0), [{"role": "user", "content": ASK}]
    with pytest.raises(json.JSONDecodeError):
        client.chat.completions.create(model="gpt-broken", messages=ask)  # type: ignore[arg-type]
    with pytest.raises(json.JSONDecodeError):
        list(client.chat.completions.create(model="gpt-broken", messages=ask, stream=True))  # type: ignore[arg-type]
    with pytest.raises(json.JSONDecodeError):
        client.responses.create(model="gpt-broken", input=ASK)
    with pytest.raises(json.JSONDecodeError), client.responses.stream(model="gpt-broken", input=ASK) as s:
        s.get_final_response()
    c = claude(sim_url, max_retries=0)
    with pytest.raises(json.JSONDecodeError):
        c.messages.create(model="claude-broken", max_tokens=10, messages=ask)  # type: ignore[arg-type]
    with (
        pytest.raises(json.JSONDecodeError),
        c.messages.stream(model="claude-broken", max_tokens=10, messages=ask) as ms,  # type: ignore[arg-type]
    ):
        ms.get_final_message()


def test_unknown_model_is_the_sdks_not_found_error(sim_url: str) -> None:
    with pytest.raises(openai.NotFoundError):
        oai(sim_url).responses.create(model="claude-sim", input=ASK)  # a model on the other wire format
    with pytest.raises(anthropic.NotFoundError):
        claude(sim_url).messages.create(model="gpt-sim", max_tokens=10, messages=[{"role": "user", "content": ASK}])


def test_the_readmes_rehearsal_runs_as_written(tmp_path: Path) -> None:
    """The README's SDK block, run as it stands against `aigate simulate` with the demo profile."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Rehearse offline with the simulator", 1)[1].split("\n## ", 1)[0]
    [code] = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    with aigate_simulate(ROOT / "examples" / "profiles" / "fraud-demo.yaml") as url:
        script = tmp_path / "rehearse.py"
        script.write_text(code.replace("http://127.0.0.1:8788", url))
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(answers) == 4 and all(a["risk"] in ("low", "medium", "high") for a in answers)
