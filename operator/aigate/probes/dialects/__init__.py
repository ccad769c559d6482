"""Provider dialects: one module per wire format, each keeping the contract in `base.Dialect`."""

from __future__ import annotations

from aigate.api.models import ModelRef
from aigate.probes.dialects.anthropic import Messages
from aigate.probes.dialects.base import Dialect, DialectError, Malformed, Parsed, StreamError, StreamReader, Wire
from aigate.probes.dialects.openai_chat import ChatCompletions
from aigate.probes.dialects.responses import Responses

__all__ = [
    "Dialect",
    "DialectError",
    "Malformed",
    "Parsed",
    "StreamError",
    "StreamReader",
    "Wire",
    "dialect_for",
]


def dialect_for(ref: ModelRef) -> Dialect:
    """The wire format of a declared model: Anthropic's Messages, or the OpenAI API it names (`api`)."""
    if ref.provider == "anthropic":
        return Messages(ref)
    if ref.api == "responses":
        return Responses(ref)
    return ChatCompletions(ref)
