"""The one timestamp format aigate writes: RFC 3339 in UTC, to the second, with a `Z` (status fields, Events,
evidence, messages). Kubernetes writes its own times the same way, so a person comparing them reads like with like."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(t: datetime) -> str:
    """`2026-12-01T00:00:00Z`. A naive time is taken as UTC; sub-second digits are dropped."""
    aware = t if t.tzinfo is not None else t.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str | None) -> datetime | None:
    """The inverse for the times aigate wrote (and any ISO 8601 time with a zone); None for none."""
    if not text:
        return None
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)
