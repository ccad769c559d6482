"""Keeping secrets out of everything aigate prints or stores: every credential aigate reads is registered
here, and every message that may carry one passes through `redact`."""

from __future__ import annotations

import re
import threading

_lock = threading.Lock()
_secrets: set[str] = set()
_PATTERNS = [
    re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"\bsk-(?:ant-)?[A-Za-z0-9_-]{8,}"),
    re.compile(r"(?i)((?:api[-_]?key|x-api-key|authorization|token)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{6,}"),
]
MASK = "[REDACTED]"


def register_secret(value: str | None) -> None:
    """Short values are not registered: masking 'a' everywhere would garble every message."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for s in known:
        if s in text:
            text = text.replace(s, MASK)
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _PATTERNS[1].sub(MASK, text)
    return _PATTERNS[2].sub(lambda m: m.group(1) + MASK, text)


def redacted_line(text: str) -> str:
    """TEXT on one line (whitespace runs as one space), redacted: what a log line or a status field may hold."""
    return redact(" ".join(text.split()))
