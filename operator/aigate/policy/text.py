"""How decisions say things: one line, bounded, whatever the input."""

from __future__ import annotations

MAX_REASON = 200
"""Characters of one gate's reason inside a refusal."""
MAX_MESSAGE = 1500
"""Characters of a whole refusal (kubectl prints it on one line)."""


def one_line(text: str, limit: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
