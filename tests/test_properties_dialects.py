"""Properties of the provider dialects, over answers generated from the official SDKs' own response models (OpenAI
Chat Completions and Responses, Anthropic Messages) and over any JSON at all: an answer the provider's schema allows
is read, its text and tool calls as the provider gave them; anything else is an error the client counts as a
malformed answer (what the fallback gate is tried with), and what a dialect returns is always typed as the runner
uses it (token counts are counts), so no answer can crash the runner after the dialect let it through."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from anthropic.types import Message
from hypothesis import assume, example, given
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion

from aigate.api.models import ModelRef
from aigate.probes.dialects import Malformed, Parsed, StreamError, dialect_for
from schema_strategies import JSON, resolved, sdk_strategy

DIALECTS = {
    "chat": dialect_for(ModelRef(name="m", provider="openai", model="gpt")),
    "responses": dialect_for(ModelRef(name="m", provider="openai", model="gpt", api="responses")),
    "messages": dialect_for(ModelRef(name="m", provider="anthropic", model="claude")),
}
SCHEMAS = {
    "chat": resolved(ChatCompletion.model_json_schema()),
    "messages": resolved(Message.model_json_schema()),
}
"""The Responses API's schema (215 KB, recursive) stalls the generator; its dialect is held to the any-JSON and
any-stream properties below."""
COUNTED = (Malformed, StreamError, AttributeError, TypeError, ValueError)
"""What probes/providers.py catches around a dialect and records as an error of the reply (never a crash)."""


def typed(out: Parsed) -> None:
    """What the runner relies on in a parsed answer (providers.py `_success`, the assertions, the cost)."""
    assert isinstance(out.text, str)
    for call in out.tool_calls:
        assert isinstance(call.name, str) and isinstance(call.arguments, dict | str)
    for count in (out.input_tokens, out.output_tokens):
        assert count is None or (isinstance(count, int) and not isinstance(count, bool) and count >= 0)
    for count in (out.cache_read_tokens, out.cache_write_tokens, out.reasoning_tokens):
        assert count is None or (isinstance(count, int) and count >= 0)
    assert out.model is None or isinstance(out.model, str)


def _texts(wire: str, doc: dict[str, Any]) -> str:
    """The answer's text as the provider's schema defines it, read independently of the dialect."""
    if wire == "chat":
        return doc["choices"][0]["message"].get("content") or ""
    if wire == "messages":
        return "".join(b.get("text", "") for b in doc["content"] if b.get("type") == "text")
    return "".join(
        p.get("text", "")
        for item in doc["output"]
        if item.get("type") == "message"
        for p in item.get("content") or []
        if p.get("type") == "output_text"
    )


def _negative(usage: Any) -> bool:
    """Whether a usage document holds a negative count anywhere (its *_details included)."""
    if isinstance(usage, dict):
        return any(_negative(v) for v in usage.values())
    return isinstance(usage, int) and usage < 0


@given(data=st.data(), wire=st.sampled_from(sorted(SCHEMAS)))
def test_any_answer_the_providers_schema_allows_is_read(data: st.DataObject, wire: str) -> None:
    doc = data.draw(sdk_strategy(SCHEMAS[wire]), label="answer")
    if wire == "chat":
        assume(doc["choices"])
    negative = _negative(doc.get("usage"))
    try:
        out = DIALECTS[wire].parse(json.loads(json.dumps(doc)))
    except Malformed as e:
        # the SDKs type token counts as int, a negative one included: not a count aigate can bill
        assert negative and "count" in str(e), e
        return
    typed(out)
    assert out.text == _texts(wire, doc)


@given(wire=st.sampled_from(sorted(DIALECTS)), doc=JSON)
@example(wire="chat", doc={"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": "many"}})
@example(wire="chat", doc={"choices": [{"message": {"content": ["a", "list"]}}]})
@example(wire="messages", doc={"content": [], "usage": {"input_tokens": 1, "output_tokens": [2]}})
@example(wire="responses", doc={"output": [], "usage": {"input_tokens": -1, "output_tokens": 2}})
def test_any_json_is_read_typed_or_counted_as_malformed(wire: str, doc: Any) -> None:
    try:
        out = DIALECTS[wire].parse(doc)
    except COUNTED:
        return
    typed(out)


EVENTS = st.lists(JSON.map(json.dumps) | st.text(max_size=20) | st.just("[DONE]"), max_size=6)


@given(wire=st.sampled_from(sorted(DIALECTS)), events=EVENTS)
def test_any_stream_is_read_typed_or_counted_as_malformed(wire: str, events: list[str]) -> None:
    reader = DIALECTS[wire].stream(time.perf_counter())
    try:
        for data in events:
            reader.feed(data)
            if reader.done:
                break
        out = reader.finish()
    except COUNTED:
        return
    typed(out)


@pytest.mark.parametrize(
    ("wire", "doc"),
    [
        (
            "chat",
            {"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": "12", "completion_tokens": 1}},
        ),
        ("chat", {"choices": [{"message": {"content": {"text": "hi"}}}]}),
        ("messages", {"content": [{"type": "text", "text": "hi"}], "usage": {"input_tokens": 1, "output_tokens": -5}}),
        ("responses", {"output": [], "usage": {"input_tokens": 1.5, "output_tokens": 2}}),
    ],
)
def test_an_answer_whose_counts_or_text_are_no_such_thing_is_malformed(wire: str, doc: dict[str, Any]) -> None:
    """Found by the any-JSON property: a dialect passed `"12"`, -5, 1.5 or an object through as a count or a text,
    and the client's `int(out.input_tokens)` (outside its error handling) or the assertions then crashed the run."""
    with pytest.raises(Malformed, match="answer"):
        DIALECTS[wire].parse(doc)
