"""The operator's settings, from its environment (the Helm chart and hack/ set them)."""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aigate.api.errors import UsageError
from aigate.controller.jobs import DEFAULT_RESOURCES

DEFAULT_GATE_IMAGE = "aigate:dev"


@dataclass(frozen=True)
class OperatorConfig:
    signing_key: Path
    """Mounted from a Secret into the operator only; the gate Jobs never see it."""
    public_key: Path | None = None
    namespace: str = "aigate-system"
    gate_image: str = DEFAULT_GATE_IMAGE
    """`make image` builds aigate:dev for local clusters; the Helm chart sets its release image."""
    gate_command: list[str] = field(default_factory=lambda: ["aigate"])
    job_deadline_s: int = 1800
    job_ttl_s: int = 3600
    job_backoff_limit: int = 0
    job_resources: dict[str, dict[str, str]] = field(default_factory=lambda: copy.deepcopy(DEFAULT_RESOURCES))
    """The gate container's requests and limits; never a CPU limit (throttling would show up as latency)."""
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


_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


def _quantity(env: Mapping[str, str], name: str, default: str) -> str | None:
    """A Kubernetes resource quantity ("500m", "256Mi"); set to "" to leave it out."""
    raw = env.get(name, default).strip()
    if raw == "":
        return None
    if not _QUANTITY.match(raw):
        raise UsageError(f"{name}: not a Kubernetes quantity such as 500m or 256Mi (got {raw!r})")
    return raw


_SUFFIX = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_SUFFIX.update({f"{p}i": 1024 ** (i + 1) for i, p in enumerate("KMGTPE")})


def _bytes(quantity: str) -> float:
    m = _QUANTITY.match(quantity)
    assert m is not None
    return float(quantity[: len(quantity) - len(m.group(2) or "")]) * _SUFFIX[m.group(2) or ""]


def _job_resources(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    requests = {
        k: v
        for k, v in (
            ("cpu", _quantity(env, "AIGATE_JOB_CPU_REQUEST", DEFAULT_RESOURCES["requests"]["cpu"])),
            ("memory", _quantity(env, "AIGATE_JOB_MEMORY_REQUEST", DEFAULT_RESOURCES["requests"]["memory"])),
        )
        if v is not None
    }
    limit = _quantity(env, "AIGATE_JOB_MEMORY_LIMIT", DEFAULT_RESOURCES["limits"]["memory"])
    if limit is not None and "memory" in requests and _bytes(requests["memory"]) > _bytes(limit):
        raise UsageError(
            f"AIGATE_JOB_MEMORY_REQUEST ({requests['memory']}) is above AIGATE_JOB_MEMORY_LIMIT ({limit}); "
            "the API server would refuse every gate Job"
        )
    out: dict[str, dict[str, str]] = {}
    if requests:
        out["requests"] = requests
    if limit is not None:
        out["limits"] = {"memory": limit}
    return out


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
        gate_image=env.get("AIGATE_GATE_IMAGE", DEFAULT_GATE_IMAGE),
        gate_command=(env.get("AIGATE_GATE_COMMAND") or "aigate").split(),
        job_deadline_s=_int(env, "AIGATE_JOB_DEADLINE_SECONDS", 1800),
        job_ttl_s=_int(env, "AIGATE_JOB_TTL_SECONDS", 3600),
        job_backoff_limit=_int(env, "AIGATE_JOB_BACKOFF_LIMIT", 0),
        job_resources=_job_resources(env),
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
