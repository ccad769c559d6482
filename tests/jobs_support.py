"""The gate Job tests' inputs (no tests here): a workload as the operator reads it, with every kind of credential
reference and ConfigMap source, the digest it runs for, and a key that must never show."""

from __future__ import annotations

from typing import Any

from aigate.api.models import AIWorkload

DIGEST = "sha256:" + "ab12" * 16
UID = "0b9f6c5e-1111-2222-3333-444455556666"
CANARY = "sk-canary-jobs-5e1d9a7b3c"
CASES = "cases: [{name: c, messages: [{role: user, content: x}]}]"
"""A suite ConfigMap key: one case."""


def workload(name: str = "fraud-review", **spec: Any) -> AIWorkload:
    doc: dict[str, Any] = {
        "apiVersion": "aigate.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": name, "namespace": "fraud", "uid": UID},
        "spec": {
            "owner": "team",
            "models": [
                {
                    "name": "primary",
                    "provider": "anthropic",
                    "model": "claude-sonnet-4-5",
                    "credentials": {"secretRef": {"name": "anthropic", "key": "api-key"}},
                },
                {
                    "name": "backup",
                    "role": "fallback",
                    "provider": "openai",
                    "model": "gpt-4.1-mini",
                    "credentials": {"secretRef": {"name": "openai", "key": "api-key"}, "env": "OPENAI_API_KEY"},
                },
                {
                    "name": "backup-2",
                    "role": "fallback",
                    "provider": "openai",
                    "model": "gpt-4.1",
                    "credentials": {"secretRef": {"name": "openai", "key": "api-key"}},  # same key: one env var
                },
            ],
            "traffic": {"requestsPerDay": 1000, "peakRequestsPerSecond": 1},
            "budget": {"monthlyUSD": 100},
            "slo": {"p95LatencyMs": 4000, "timeoutMs": 8000},
            "fallback": {"humanRoute": {"url": "https://queue.internal/x", "credentials": {"env": "QUEUE_TOKEN"}}},
            "mcpServers": [
                {
                    "name": "tools",
                    "url": "https://mcp.internal/",
                    "credentials": {"secretRef": {"name": "mcp", "key": "t"}},
                }
            ],
            "tools": [
                {"name": "lookup", "access": "read", "manifest": {"configMapRef": {"name": "tools", "key": "m"}}}
            ],
            "prompts": [
                {"configMapRef": {"name": "prompts", "key": "system.md"}},
                {"inline": "Answer in JSON."},
                {"configMapRef": {"name": "prompts", "key": "style.md"}},
            ],
            "suite": {"configMapRef": {"name": "suite", "key": "cases.yaml"}},
            **spec,
        },
    }
    return AIWorkload.model_validate(doc)
