"""The operator's settings, from its environment (the Helm chart and hack/ set them)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aigate.api.errors import UsageError


@dataclass(frozen=True)
class OperatorConfig:
    signing_key: Path
    """Mounted from a Secret into the operator only; the gate Jobs never see it."""
    public_key: Path | None = None
    namespace: str = "aigate-system"
    gate_image: str = "ghcr.io/aigate/aigate:0.1.0"
    gate_command: list[str] = field(default_factory=lambda: ["aigate"])
    job_deadline_s: int = 1800
    job_ttl_s: int = 3600
    job_backoff_limit: int = 0
    acceptor_groups: frozenset[str] = frozenset({"aigate:risk-acceptors"})
    webhook_addr: str = "127.0.0.1"
    webhook_port: int = 9443
    webhook_host: str | None = None
    webhook_cert: Path | None = None
    webhook_key: Path | None = None
    metrics_addr: str = "127.0.0.1"
    metrics_port: int = 8080
    timer_interval_s: float = 60.0
    watch_namespaces: list[str] = field(default_factory=list)
    """Empty: every namespace."""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise UsageError(f"{name}: must be an integer (got {raw!r})") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise UsageError(f"{name}: must be a number (got {raw!r})") from None


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name)
    return Path(raw) if raw else None


def from_env(env: Mapping[str, str] | None = None) -> OperatorConfig:
    env = os.environ if env is None else env
    key = _path(env, "AIGATE_SIGNING_KEY")
    if key is None:
        raise UsageError("AIGATE_SIGNING_KEY: not set (path to the evidence signing key, from a Secret)")
    groups = frozenset(g.strip() for g in env.get("AIGATE_ACCEPTOR_GROUPS", "aigate:risk-acceptors").split(",") if g)
    return OperatorConfig(
        signing_key=key,
        public_key=_path(env, "AIGATE_PUBLIC_KEY"),
        namespace=env.get("AIGATE_OPERATOR_NAMESPACE", "aigate-system"),
        gate_image=env.get("AIGATE_GATE_IMAGE", "ghcr.io/aigate/aigate:0.1.0"),
        gate_command=(env.get("AIGATE_GATE_COMMAND") or "aigate").split(),
        job_deadline_s=_int(env, "AIGATE_JOB_DEADLINE_SECONDS", 1800),
        job_ttl_s=_int(env, "AIGATE_JOB_TTL_SECONDS", 3600),
        job_backoff_limit=_int(env, "AIGATE_JOB_BACKOFF_LIMIT", 0),
        acceptor_groups=groups,
        webhook_addr=env.get("AIGATE_WEBHOOK_ADDR", "127.0.0.1"),
        webhook_port=_int(env, "AIGATE_WEBHOOK_PORT", 9443),
        webhook_host=env.get("AIGATE_WEBHOOK_HOST") or None,
        webhook_cert=_path(env, "AIGATE_WEBHOOK_CERT"),
        webhook_key=_path(env, "AIGATE_WEBHOOK_KEY"),
        metrics_addr=env.get("AIGATE_METRICS_ADDR", "127.0.0.1"),
        metrics_port=_int(env, "AIGATE_METRICS_PORT", 8080),
        timer_interval_s=_float(env, "AIGATE_TIMER_INTERVAL_SECONDS", 60.0),
        watch_namespaces=[n for n in env.get("AIGATE_WATCH_NAMESPACES", "").split(",") if n],
    )
