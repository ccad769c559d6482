"""Names and labels the operator, the gate Job and the webhooks agree on."""

from __future__ import annotations

import hashlib
import re

from aigate.api.models import API_GROUP, API_VERSION, PLURAL, WORKLOAD_LABEL

__all__ = ["API_GROUP", "API_VERSION", "PLURAL", "WORKLOAD_LABEL"]

GATE_FOR_LABEL = "aigate.dev/gate-for"
"""On the objects the operator makes for a workload (gate Job, its ServiceAccount/Role, result and evidence
ConfigMaps). Not `aigate.dev/workload`: that label is what the rollout webhook selects, and a gate Job must
never be held back by the gate it runs."""
ROLE_LABEL = "aigate.dev/role"
"""gate-job | gate-result | evidence"""
DIGEST_ANNOTATION = "aigate.dev/spec-digest"
RUN_ANNOTATION = "aigate.dev/run-id"

RESULT_KEY = "result.json"
EVIDENCE_KEY = "evidence.json"


def _short(text: str, n: int) -> str:
    """Kubernetes names have length limits; keep them readable and unique with a hash tail."""
    if len(text) <= n:
        return text
    tail = hashlib.sha256(text.encode()).hexdigest()[:6]
    return text[: n - 7].rstrip("-.") + "-" + tail


def evidence_configmap(workload: str) -> str:
    return _short(f"{workload}-aigate-evidence", 253)


def result_configmap(workload: str) -> str:
    return _short(f"{workload}-aigate-result", 253)


def gate_service_account(workload: str) -> str:
    return _short(f"{workload}-aigate-gate", 253)


def gate_job(workload: str, spec_digest: str, attempt: str) -> str:
    """<= 63 characters: the Job controller copies the name into a label value."""
    digest = spec_digest.removeprefix("sha256:")[:8]
    return _short(f"aigate-{_short(workload, 40)}-{digest}-{attempt}", 63)


def secret_env_name(secret: str, key: str) -> str:
    """The env variable a Secret key reaches the gate Job as (secretKeyRef), named from the reference."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", f"{secret}_{key}").upper().strip("_")
    tail = hashlib.sha256(f"{secret}\0{key}".encode()).hexdigest()[:6].upper()
    return f"AIGATE_SECRET_{slug[:60]}_{tail}"
